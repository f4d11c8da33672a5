"""Where a store's files live (issue 16, cases 2 and 3): a symlinked store path keeps its link
and shares one lock with the real path; an export never lands on a store file or a companion,
and never overwrites an existing file without ``--force``."""
from __future__ import annotations

import os

import pytest

from alcore.store import CampaignStore, StoreError, StoreInUseError, export_labelled
from flows.cli import main as cli

from store_helpers import dir_state, make_store, sha


@pytest.fixture()
def linked(tmp_path):
    """real/c.h5 (a store with one label) and link/c.h5 -> ../real/c.h5."""
    real, link = tmp_path / "real", tmp_path / "link"
    real.mkdir()
    link.mkdir()
    with make_store(real / "c.h5") as s:
        s.mark_requested([0, 1], 0)
        s.record_label(0, [1.0, 2.0])
    (link / "c.h5").symlink_to(os.path.relpath(real / "c.h5", link))
    return real / "c.h5", link / "c.h5"


def test_symlinked_store_keeps_its_link_and_companions_sit_by_the_target(linked):
    real, link = linked
    with CampaignStore.open(link, "a") as w:
        assert (real.parent / "c.h5.lock").exists()
        w.record_label(1, [3.0, 4.0])
        w.compact()
        assert link.is_symlink() and os.path.realpath(link) == str(real)
        with CampaignStore.open(real, "r") as r:  # the fold replaced the TARGET
            assert r.n_labelled == 2
        with CampaignStore.open(link, "r") as r:
            r.request_stop("via the link")
        assert w.stop_requested() and (real.parent / "c.h5.stop").exists()
        w.clear_stop()
    assert sorted(os.listdir(link.parent)) == ["c.h5"] and link.is_symlink()


@pytest.mark.parametrize("first, second", [("link", "real"), ("real", "link")])
def test_writers_through_the_link_and_the_real_path_exclude_each_other(linked, first, second):
    paths = dict(zip(("real", "link"), linked))
    with CampaignStore.open(paths[first], "a"):
        with pytest.raises(StoreInUseError):
            CampaignStore.open(paths[second], "a")


def test_symlinked_directory(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    make_store(real / "c.h5").close()
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    with CampaignStore.open(tmp_path / "alias" / "c.h5", "a"):
        with pytest.raises(StoreInUseError):
            CampaignStore.open(real / "c.h5", "a")


def _cli_export(*args: str) -> int:
    return cli(["export", *map(str, args)])


@pytest.mark.parametrize("target", ["c.h5", "c.h5.journal", "c.h5.lock", "c.h5.tmp",
                                    "c.h5.stop", "c.h5.journal.tmp", "link/c.h5",
                                    "link/c.h5.journal"])
@pytest.mark.parametrize("force", [False, True])
def test_export_refuses_store_files_and_companions(tmp_path, capsys, target, force):
    p = tmp_path / "c.h5"
    with make_store(p) as s:
        s.mark_requested([0], 0)
        s.record_label(0, [1.0, 2.0])
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / "c.h5").symlink_to(p)
    before = dir_state(tmp_path)
    capsys.readouterr()
    assert _cli_export(p, "-o", tmp_path / target, *(["--force"] if force else [])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "store" in err
    assert dir_state(tmp_path) == before
    with pytest.raises(StoreError):
        export_labelled(p, tmp_path / target, force=True)
    with pytest.raises(StoreError):  # the store given through its link, the real companion
        export_labelled(tmp_path / "link" / "c.h5", tmp_path / target, force=True)
    assert dir_state(tmp_path) == before


def test_export_never_overwrites_without_force(tmp_path, capsys):
    p = tmp_path / "c.h5"
    with make_store(p) as s:
        s.record_label(0, [1.0, 2.0])
    out = tmp_path / "c.csv"  # the default output name
    out.write_text("precious\n")
    assert _cli_export(p) == 2
    assert "--force" in capsys.readouterr().err and out.read_text() == "precious\n"
    assert _cli_export(p, "-o", out) == 2 and out.read_text() == "precious\n"
    assert _cli_export(p, "--force") == 0
    assert out.read_text().startswith("index,iteration")
    h = sha(p)
    assert _cli_export(p, "-o", tmp_path / "new.npz", "--format", "npz") == 0
    assert sha(p) == h and not list(tmp_path.glob("*.part"))


def test_export_to_a_directory_is_one_line(tmp_path, capsys):
    p = tmp_path / "c.h5"
    make_store(p).close()
    (tmp_path / "d").mkdir()
    assert _cli_export(p, "-o", tmp_path / "d") == 2
    assert capsys.readouterr().err.count("\n") == 1
