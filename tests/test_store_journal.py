"""Journal integrity (issue 16, case 1): only a torn tail may be discarded; anything else is
corruption that readers and writers refuse without touching a file, and ``alflow repair``
salvages every record that verifies, keeping a backup of the original journal."""
from __future__ import annotations

import errno
import json
import os
import struct

import numpy as np
import pytest

from alcore.store import CampaignStore, StoreCorruptError, StoreExistsError, StoreStatus
from alcore.store import journal as jmod
from flows.cli import main as cli

from store_helpers import (abandon, dir_state, journal_path, labelled_unfolded_store,
                           make_store, record_offsets)


def _flip(path, offset: int, mask: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


def _replace_once(path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert data.count(old) == 1 and len(old) == len(new)
    path.write_bytes(data.replace(old, new))


def _assert_refused_untouched(p, tmp_path, match: str) -> None:
    """Reader and writer both refuse with StoreCorruptError; no file changes, none appears."""
    before = dir_state(tmp_path)
    with pytest.raises(StoreCorruptError, match=match) as ei:
        CampaignStore.open(p, "r")
    assert "alflow repair" in str(ei.value) and "\n" not in str(ei.value)
    with pytest.raises(StoreCorruptError, match=match):
        CampaignStore.open(p, "a")
    assert dir_state(tmp_path) == before


def test_flipped_byte_in_record_3_of_8_labels_is_refused_then_repaired(tmp_path, capsys):
    p = tmp_path / "c.h5"
    labelled_unfolded_store(p)
    j = journal_path(p)
    recs = record_offsets(j, jmod.HEADER_SIZE)
    assert len(recs) == 9  # the request, then one record per label
    start, end = recs[3]  # the third label (point 2)
    _flip(j, (start + 8 + end) // 2)
    original = j.read_bytes()
    _assert_refused_untouched(p, tmp_path, "journal")

    # `alflow status` must not show fewer labels: one line, exit 2.
    capsys.readouterr()
    assert cli(["status", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "corrupt" in err and "alflow repair" in err

    assert cli(["repair", str(p)]) == 0
    out = capsys.readouterr().out
    assert "dropped 1 record" in out and f"offset {start}" in out and "seq 4" in out
    backups = sorted(tmp_path.glob("c.h5.journal.corrupt-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == original
    assert str(backups[0]) in out
    with CampaignStore.open(p, "r") as r:
        assert r.n_labelled == 7 and r.status[2] == StoreStatus.REQUESTED
        for i in (0, 1, 3, 4, 5, 6, 7):
            assert r.outputs[i].tolist() == [float(i), i + 0.25] and r.workers[i] == f"w{i}"
    with CampaignStore.open(p, "a") as w:  # a normal writer again; point 2 is pending
        assert list(w.pending_indices()) == [2] and w.journal_records == 0
    assert cli(["repair", str(p)]) == 0  # a second repair finds nothing to do
    assert "nothing to repair" in capsys.readouterr().out


def test_flipped_first_byte_of_the_journal_is_refused_then_repaired(tmp_path, capsys):
    p = tmp_path / "c.h5"
    labelled_unfolded_store(p)
    _flip(journal_path(p), 0)
    _assert_refused_untouched(p, tmp_path, "header")
    assert cli(["repair", str(p)]) == 0
    out = capsys.readouterr().out
    assert "header" in out and "kept 9 record" in out
    with CampaignStore.open(p, "r") as r:
        assert r.n_labelled == 8


def test_crc_decides_even_when_the_payload_still_parses(tmp_path):
    """A changed digit keeps the JSON valid: only the CRC can tell (issue 16 mutation)."""
    p = tmp_path / "c.h5"
    labelled_unfolded_store(p)
    j = journal_path(p)
    start, end = record_offsets(j, jmod.HEADER_SIZE)[3]
    _replace_once(j, b"2.25", b"2.75")
    json.loads(j.read_bytes()[start + 8:end])  # still a valid JSON object
    _assert_refused_untouched(p, tmp_path, "checksum")


def test_bad_checksum_in_the_last_complete_record_is_corruption_not_a_torn_tail(tmp_path):
    p = tmp_path / "c.h5"
    labelled_unfolded_store(p)
    _replace_once(journal_path(p), b"7.25", b"7.75")  # the last label, acknowledged
    _assert_refused_untouched(p, tmp_path, "checksum")


def test_corrupted_length_field_with_records_after_it_is_refused(tmp_path):
    p = tmp_path / "c.h5"
    labelled_unfolded_store(p)
    j = journal_path(p)
    start, _ = record_offsets(j, jmod.HEADER_SIZE)[3]
    _flip(j, start + 3, 0x40)  # length becomes ~1 GiB: "runs past the end" like a torn tail
    _assert_refused_untouched(p, tmp_path, "journal")


def test_corrupted_length_of_the_last_record_is_not_taken_for_a_torn_tail(tmp_path):
    p = tmp_path / "c.h5"
    labelled_unfolded_store(p)
    j = journal_path(p)
    start, _ = record_offsets(j, jmod.HEADER_SIZE)[-1]
    _flip(j, start, 0x10)  # claims more bytes than the file has, but the payload is whole
    _assert_refused_untouched(p, tmp_path, "journal")


def test_a_missing_record_is_refused(tmp_path):
    p = tmp_path / "c.h5"
    labelled_unfolded_store(p)
    j = journal_path(p)
    start, end = record_offsets(j, jmod.HEADER_SIZE)[3]
    data = j.read_bytes()
    j.write_bytes(data[:start] + data[end:])  # every remaining record verifies
    _assert_refused_untouched(p, tmp_path, "missing")


@pytest.mark.parametrize("tail", ["cut", "zeros", "short_frame"])
def test_torn_tails_are_the_only_thing_discarded(tmp_path, tail):
    p = tmp_path / "c.h5"
    labelled_unfolded_store(p)
    j = journal_path(p)
    extra = jmod.encode_record({"op": "label", "index": 9, "y": [2, 2], "seq": 10,
                                "wall_time": None, "worker": ""})
    junk = {"cut": extra[:-3], "zeros": bytes(300), "short_frame": extra[:5]}[tail]
    j.write_bytes(j.read_bytes() + junk)
    before = dir_state(tmp_path)
    with CampaignStore.open(p, "r") as r:  # readers ignore it and write nothing
        assert r.n_labelled == 8
    assert dir_state(tmp_path) == before
    with CampaignStore.open(p, "a") as w:
        assert w.recovered_torn_bytes == len(junk) and w.n_labelled == 8
        w.record_label(9, [3, 3])
    with CampaignStore.open(p, "r") as r:
        assert r.n_labelled == 9 and r.outputs[9].tolist() == [3, 3]


def test_journal_of_another_store_is_refused_and_repair_sets_it_aside(tmp_path, capsys):
    p, q = tmp_path / "c.h5", tmp_path / "other" / "d.h5"
    labelled_unfolded_store(p)
    labelled_unfolded_store(q)
    theirs = journal_path(q).read_bytes()
    journal_path(p).write_bytes(theirs)
    _assert_refused_untouched(p, tmp_path, "another store")
    assert cli(["repair", str(p)]) == 0
    out = capsys.readouterr().out
    assert "another store" in out
    aside = sorted(tmp_path.glob("c.h5.journal.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == theirs
    with CampaignStore.open(p, "r") as r:
        assert r.n_labelled == 0  # its records were not applied to this store


def test_repair_dry_run_changes_nothing(tmp_path, capsys):
    p = tmp_path / "c.h5"
    labelled_unfolded_store(p)
    j = journal_path(p)
    start, end = record_offsets(j, jmod.HEADER_SIZE)[5]
    _flip(j, start + 12)
    before = dir_state(tmp_path)
    assert cli(["repair", str(p), "--dry-run"]) == 0
    assert "would drop 1 record" in capsys.readouterr().out
    assert dir_state(tmp_path) == before


def test_repair_refuses_a_store_in_use(tmp_path, capsys):
    p = tmp_path / "c.h5"
    with make_store(p):
        assert cli(["repair", str(p)]) == 2
    assert "in use" in capsys.readouterr().err


def test_every_acknowledged_record_is_datasynced(tmp_path, monkeypatch):
    """Skipping the journal's fdatasync must fail a test (a kill -9 test cannot see it)."""
    p = tmp_path / "c.h5"
    s = make_store(p)
    j = journal_path(p)
    synced: list[int] = []  # journal size at each sync of the journal's descriptor
    real_fdatasync, real_fsync = os.fdatasync, os.fsync

    def spy(real):
        def sync(fd):
            st = os.fstat(fd)
            if j.exists() and (st.st_dev, st.st_ino) == (j.stat().st_dev, j.stat().st_ino):
                synced.append(st.st_size)
            return real(fd)
        return sync

    monkeypatch.setattr(os, "fdatasync", spy(real_fdatasync))
    monkeypatch.setattr(os, "fsync", spy(real_fsync))
    s.mark_requested([0, 1, 2], 0)
    assert synced and synced[-1] == j.stat().st_size
    for i in range(3):
        n = len(synced)
        s.record_label(i, [i, i])
        assert len(synced) > n and synced[-1] == j.stat().st_size
    n = len(synced)
    s.record_failure(1, "x") is False  # already labelled: nothing written, nothing synced
    s.record_iteration(0, {"rmse": 1.0})
    assert len(synced) == n + 1 and synced[-1] == j.stat().st_size
    s.close()


def test_failed_append_leaves_no_garbage_in_the_journal(tmp_path, monkeypatch):
    """A full disk in the middle of an append: the call fails (not acknowledged), the journal
    is cut back, and later records do not follow a bad record."""
    from alcore.store import fsutil

    p = tmp_path / "c.h5"
    s = make_store(p)
    s.mark_requested([0, 1, 2], 0)
    s.record_label(0, [0, 0])
    real_write = os.write

    def half_then_enospc(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsutil.os, "write", half_then_enospc)
    with pytest.raises(OSError, match="No space"):
        s.record_label(1, [1, 1])
    monkeypatch.undo()
    assert s.status[1] == StoreStatus.REQUESTED
    s.record_label(2, [2, 2])
    abandon(s)
    with CampaignStore.open(p, "r") as r:
        assert r.labelled_indices().tolist() == [0, 2]


def test_create_refuses_to_overwrite_an_orphaned_journal_with_records(tmp_path):
    p = tmp_path / "c.h5"
    labelled_unfolded_store(p)
    p.unlink()  # the store file deleted, its unfolded labels still in the journal
    j = journal_path(p)
    kept = j.read_bytes()
    with pytest.raises(StoreExistsError, match="journal"):
        make_store(p)
    assert j.read_bytes() == kept and not p.exists()
    j.write_bytes(kept[: jmod.HEADER_SIZE])  # a journal holding no record is no loss
    with make_store(p) as s:
        assert s.n_labelled == 0


def test_record_crc_is_a_crc32_of_the_payload():
    rec = jmod.encode_record({"op": "label", "seq": 1, "index": 0})
    length, crc = struct.unpack_from("<II", rec, 0)
    import zlib

    assert length == len(rec) - 8 and crc == zlib.crc32(rec[8:])
    assert np.frombuffer(rec[8:9], np.uint8)[0] == ord("{")
