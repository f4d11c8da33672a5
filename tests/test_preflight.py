"""``preflight``: a config that passes ``alflow validate`` does not fail at the start of ``alflow run``.

Issue 16, item 7: each case below used to pass ``validate`` and fail only during ``run`` (some
after the initial design was paid for) with exit code 1 and a traceback. Now each is one line,
exit code 2, at ``validate`` and at the start of ``run``, before any simulator call and before
any file is created. The CLI is called in-process (``flows.cli.main``): the same code path as
the ``alflow`` command, without a Python start-up per case.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from campaign_helpers import counting_config, write_toml

ALFLOW = str(Path(sys.executable).parent / "alflow")


def _tree(root: Path) -> set[str]:
    """Every path under ``root`` (bytecode caches of the oracle file aside: Python's, not ours)."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if "__pycache__" not in p.parts}


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    from flows.cli import main

    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def _assert_refused(tmp_path: Path, cfg: Path, fragment: str, capsys, monkeypatch) -> None:
    """``validate`` and ``run`` both: exit 2, one line containing ``fragment``; nothing created, nothing called."""
    calls = tmp_path / "calls.log"
    monkeypatch.setenv("ALFLOW_TEST_CALLS", str(calls))
    before = _tree(tmp_path)
    for command in ("validate", "run"):
        rc, out, err = _cli([command, str(cfg)], capsys)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc == 2, (command, rc, out, err)
        assert len(lines) == 1 and fragment in lines[0], (command, err)
        assert lines[0].startswith(f"alflow: error: {cfg}: "), lines[0]  # names the config file
        assert _tree(tmp_path) == before, f"{command} created {_tree(tmp_path) - before}"
        assert not calls.exists(), f"{command} called the simulator"


def _write_array(path: Path, a: np.ndarray) -> str:
    if path.suffix == ".npy":
        np.save(path, a)
    else:
        np.savetxt(path, a, delimiter=",")
    return str(path)


def _pool_with(value: float) -> Callable[[Path], dict[str, Any]]:
    def make(tmp: Path) -> dict[str, Any]:
        X = np.random.default_rng(0).uniform(-1, 1, size=(20, 2))
        X[2, 1] = value
        return {"pool": {"size": None, "file": _write_array(tmp / "pool.npy", X)}}
    return make


def _test_with(a: np.ndarray) -> Callable[[Path], dict[str, Any]]:
    return lambda tmp: {"test": {"size": None, "file": _write_array(tmp / "test.csv", a)}}


def _missing_cuda_device(tmp: Path) -> dict[str, Any]:
    import torch

    return {"model": {"device": f"cuda:{torch.cuda.device_count()}"}}  # one past the last device


def _refused_port(tmp: Path) -> dict[str, Any]:
    from conftest import free_port

    return {"dask": {"workers": None, "address": f"tcp://127.0.0.1:{free_port()}"}}


GOOD_TEST = np.column_stack([np.zeros((5, 2)), np.ones(5)])
# (id, sections to override (or a function of the test folder returning them), fragment of the one line)
CASES: list[tuple[str, Any, str]] = [
    ("cuda-device-missing", _missing_cuda_device, "model.device = 'cuda:"),
    ("hidden-1e8-ints", {"model": {"hidden": [10**8, 10**8]}},
     "memory: the network (model.hidden = [100000000, 100000000]: 1e+16 parameters) needs about"),
    ("hidden-1e8-floats", {"model": {"hidden": [1e8, 1e8]}}, "model.hidden: must be an integer, got 1e+08 (a float"),
    ("epochs-1e20-int", {"model": {"epochs": 10**20}}, "model.epochs: 100000000000000000000 is too large (at most 1000000000"),
    ("epochs-1e20-float", {"model": {"epochs": 1e20}}, "model.epochs: must be an integer, got 1e+20 (a float"),
    ("pool-1e14-int", {"pool": {"size": 10**14}}, "pool (pool.size: 100000000000000 points x acquisition.samples = 16) about"),
    ("pool-1e14-float", {"pool": {"size": 1e14}}, "pool.size: must be an integer, got 1e+14 (a float"),
    ("seed-20-digits", {"campaign": {"seed": 99999999999999999999}},
     "campaign.seed: 99999999999999999999 is too large (at most 4294967295"),
    ("pool-file-nan", _pool_with(np.nan), "has NaN or inf in 1 row(s) (first: row 3)"),
    ("pool-file-inf", _pool_with(np.inf), "has NaN or inf in 1 row(s) (first: row 3)"),
    ("pool-file-missing", lambda tmp: {"pool": {"size": None, "file": str(tmp / "nope.npy")}}, "pool.file: file not found: "),
    ("pool-file-columns", lambda tmp: {"pool": {"size": None, "file": _write_array(tmp / "p.csv", np.zeros((20, 3)))}},
     "pool.file: " ),
    ("test-file-missing", lambda tmp: {"test": {"size": None, "file": str(tmp / "nope.csv")}}, "test.file: file not found: "),
    ("test-file-columns", _test_with(GOOD_TEST[:, :2]), "has 2 column(s); need 2 input(s) then 1 output(s), 3 columns"),
    ("test-file-nan", _test_with(np.where(GOOD_TEST == 1, np.nan, GOOD_TEST)), "test.file: "),
    ("dask-address-refused", _refused_port, "no Dask scheduler reachable at 127.0.0.1:"),
    ("budget-over-pool", {"budget": {"iterations": 100}},
     "budget: up to 408 labels (budget.initial 8 + budget.iterations 100 x acquisition.batch_size 4) but the pool "
     "holds only 64 points"),
    ("pool-size-true", {"pool": {"size": True}}, "pool.size: must be an integer, got true (a boolean)"),
    ("report-dir-under-a-file", lambda tmp: ((tmp / "notes").write_text("x"), {"campaign": {"report_dir": "notes/rep"}})[1],
     "campaign.report_dir: cannot create "),
]


@pytest.mark.parametrize("override,fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_at_validate_and_at_the_start_of_run(tmp_path: Path, override: Any, fragment: str,
                                                     capsys, monkeypatch) -> None:
    sections = override(tmp_path) if callable(override) else override
    raw = counting_config(tmp_path, campaign={"store": "out/store.h5"})
    for name, values in sections.items():
        raw[name].update(values)
    cfg = write_toml(tmp_path / "c.toml", raw)
    _assert_refused(tmp_path, cfg, fragment, capsys, monkeypatch)


def test_pool_file_column_message(tmp_path: Path) -> None:
    from alcore.config import ConfigError, load_config, preflight

    pool = _write_array(tmp_path / "p.csv", np.zeros((20, 3)))
    cfg = load_config(write_toml(tmp_path / "c.toml", counting_config(tmp_path, pool={"size": None, "file": pool})))
    with pytest.raises(ConfigError, match=r"pool.file: .*p.csv has 3 column\(s\), oracle 'f' takes 2 input\(s\)"):
        preflight(cfg)


def test_table_pool_larger_than_the_table(tmp_path: Path, capsys, monkeypatch) -> None:
    X = np.random.default_rng(0).uniform(size=(40, 2))
    np.savetxt(tmp_path / "table.csv", np.column_stack([X, X.sum(axis=1)]), delimiter=",")
    raw = counting_config(tmp_path, oracle={"name": "table", "bounds": None, "params": {"path": "table.csv"}},
                          pool={"size": 35}, test={"size": 10}, campaign={"store": "out/store.h5"})
    cfg = write_toml(tmp_path / "c.toml", raw)
    _assert_refused(tmp_path, cfg, "pool.size (35) exceeds the 30 table rows left after the test split", capsys,
                    monkeypatch)


def test_a_listener_that_is_not_a_scheduler_is_refused_within_seconds(tmp_path: Path, capsys, monkeypatch) -> None:
    """Something accepts the TCP connection but never speaks Dask (a proxy, another service)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        raw = counting_config(tmp_path, dask={"workers": None, "address": f"tcp://127.0.0.1:{port}"},
                              campaign={"store": "out/store.h5"})
        cfg = write_toml(tmp_path / "c.toml", raw)
        t0 = time.monotonic()
        _assert_refused(tmp_path, cfg, f"no Dask scheduler reachable at 127.0.0.1:{port} (no answer within 3 s)",
                        capsys, monkeypatch)
        assert time.monotonic() - t0 < 2 * 3 + 10  # two commands, each bounded by the 3 s probe


def test_a_live_dask_scheduler_passes(tmp_path: Path) -> None:
    from distributed import LocalCluster

    from alcore.config import load_config, preflight

    with LocalCluster(n_workers=0, processes=False, protocol="tcp", dashboard_address=":0") as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        raw = counting_config(tmp_path, dask={"workers": None, "address": cluster.scheduler_address})
        checked = preflight(load_config(write_toml(tmp_path / "c.toml", raw)))
    assert checked.pool_size == 64 and not checked.resume
    assert not (tmp_path / "store.h5").exists()


def _read_only(folder: Path) -> list[str] | None:
    """A command prefix under which ``folder`` cannot be written (None: no way on this machine).

    Root may write into a mode-555 folder, so as root the folder becomes a read-only bind mount
    in a private mount namespace of the command (``unshare``), invisible to everyone else.
    """
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return []
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "--mount", "true"], capture_output=True).returncode != 0:
        return None
    return [unshare, "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind -o ro "$0" "$0" && exec "$@"', str(folder)]


def test_read_only_store_folder_is_refused(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    cfg = write_toml(tmp_path / "c.toml", counting_config(tmp_path, campaign={"store": "ro/out/store.h5"}))
    prefix = _read_only(ro)
    if prefix is None:
        pytest.skip("running as root without unshare: no folder is read-only for this process")
    env = dict(os.environ, ALFLOW_TEST_CALLS=str(tmp_path / "calls.log"))
    try:
        for command in ("validate", "run"):
            r = subprocess.run([*prefix, ALFLOW, command, str(cfg)], capture_output=True, text=True, timeout=120,
                               env=env)
            assert r.returncode == 2, (command, r.stdout, r.stderr)
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
            assert f"campaign.store: cannot write {ro}/out/store.h5: the folder {ro} is not writable" in lines[0]
            assert list(ro.iterdir()) == [] and not (tmp_path / "calls.log").exists()
    finally:
        ro.chmod(0o755)


def test_every_problem_of_a_config_in_one_line(tmp_path: Path) -> None:
    from alcore.config import ConfigError, load_config, preflight

    raw = counting_config(tmp_path, pool={"size": None, "file": str(tmp_path / "nope.npy")},
                          model={"hidden": [10**8, 10**8]})
    with pytest.raises(ConfigError) as err:
        preflight(load_config(write_toml(tmp_path / "c.toml", raw)))
    assert [p.split(":")[0] for p in err.value.problems] == ["pool.file", "memory"]
    assert "pool.file: file not found" in str(err.value) and "\n" not in str(err.value)


def test_preflight_returns_what_it_built(tmp_path: Path) -> None:
    from alcore.config import load_config, preflight

    X = np.random.default_rng(1).uniform(-1, 1, size=(30, 2))
    test = np.column_stack([X[:5], X[:5].sum(axis=1)])
    raw = counting_config(tmp_path, pool={"size": None, "file": _write_array(tmp_path / "pool.npy", X)},
                          test={"size": None, "file": _write_array(tmp_path / "test.csv", test)},
                          budget={"deadline": "06:30", "timezone": "Europe/Berlin"})
    checked = preflight(load_config(write_toml(tmp_path / "c.toml", raw)))
    assert checked.oracle.name == "f" and (checked.input_dim, checked.output_dim) == (2, 1)
    assert checked.pool_size == 30 and np.array_equal(checked.pool_X, X)
    assert np.array_equal(checked.test_X, test[:, :2]) and np.array_equal(checked.test_y, test[:, 2:])
    assert 0 < checked.memory.total_bytes < checked.ram_bytes
    assert checked.deadline.tzinfo is not None and checked.deadline.strftime("%H:%M") == "06:30"


def test_memory_estimate_counts_the_network_and_the_pool() -> None:
    from alcore.config import ModelSection
    from alcore.config.memory import COPIES_PER_PARAMETER, estimate_memory, network_parameters

    assert network_parameters(3, [10, 5], 2) == (3 * 10 + 10) + (10 * 5 + 5) + (5 * 2 + 2)
    small = estimate_memory(ModelSection(hidden=[10, 5], n_members=1), samples=16, d=3, k=2, pool_size=1000)
    assert small.parameters == 107 and small.network_bytes >= 107 * COPIES_PER_PARAMETER * 4
    wide = estimate_memory(ModelSection(hidden=[10, 5], n_members=4), samples=16, d=3, k=2, pool_size=1000)
    assert wide.network_bytes - small.network_bytes == 3 * 107 * COPIES_PER_PARAMETER * 4  # three more members
    big_pool = estimate_memory(ModelSection(hidden=[10, 5]), samples=16, d=3, k=2, pool_size=10_000)
    assert big_pool.pool_bytes == 10 * small.pool_bytes
    # the pool's MC samples and features grow with T
    assert estimate_memory(ModelSection(hidden=[10, 5]), 160, 3, 2, 1000).pool_bytes > 5 * small.pool_bytes


def test_the_largest_accepted_seed_runs(tmp_path: Path, monkeypatch) -> None:
    """campaign.seed = 2**32 - 1 passes preflight and a whole campaign (every derived seed fits)."""
    from alcore import campaign
    from alcore.config import load_config, preflight
    from alcore.config.sections import SEED_MAX

    monkeypatch.setenv("ALFLOW_TEST_CALLS", str(tmp_path / "calls.log"))
    cfg = load_config(write_toml(tmp_path / "c.toml", counting_config(
        tmp_path, campaign={"seed": SEED_MAX}, budget={"iterations": 1}, test={"size": 4})))
    preflight(cfg)
    out = campaign.run(cfg)
    assert out["labelled"] == 12
