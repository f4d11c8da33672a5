"""CampaignStore behaviour: round trips, journal replay, idempotent labels, resume, export.

Journal corruption lives in test_store_journal.py, paths and export targets in
test_store_paths.py, old stores in test_store_compat.py."""
from __future__ import annotations

import csv
import errno
import json
import threading

import h5py
import numpy as np
import pytest

from alcore.store import (CampaignStore, ReadOnlyStoreError,
                          StoreClosedError, StoreCorruptError, StoreExistsError, StoreStatus,
                          export_labelled)
from alcore.store import campaign_store as cs_mod
from alcore.store import journal as jmod

from store_helpers import CONFIG, dir_state, make_store, sha


def _fill(s: CampaignStore) -> None:
    s.mark_requested([3, 1, 4], iteration=0, scores=[0.9, 0.5, 0.1])
    s.record_label(3, [1.0, 2.0], wall_time=0.5, worker="w1")
    s.record_failure(1, "diverged", wall_time=2.0, worker="w2", attempts=3)
    s.record_iteration(0, {"rmse": [0.1, 0.2], "r2": np.float64(0.9)}, {"train": 1.5})


def test_roundtrip_all_fields(tmp_path):
    p = tmp_path / "c.h5"
    with make_store(p) as s:
        _fill(s)
        s.save_checkpoint(0, {"w": np.arange(6.0).reshape(2, 3), "n": np.array(3),
                              "act": np.array("relu"), "mask": np.array([True, False]),
                              "net/0.weight": np.ones(2, np.float32)})
        s.mark_requested([7], iteration=1)
        X = s.pool_X.copy()
    with CampaignStore.open(p, "r") as r:
        assert np.array_equal(r.pool_X, X)
        assert r.config == json.loads(json.dumps(CONFIG))
        assert r.oracle_info["name"] == "toy" and r.meta["oracle_version"] == "1.2"
        assert r.meta["seeds"] == {"pool": 0, "model": 7}
        assert r.test_X.shape == (5, 3) and r.test_y.shape == (5, 2)
        assert r.status[3] == StoreStatus.LABELLED and r.status[1] == StoreStatus.FAILED
        assert r.status[4] == StoreStatus.REQUESTED and r.status[7] == StoreStatus.REQUESTED
        assert np.array_equal(r.outputs[3], [1.0, 2.0]) and np.isnan(r.outputs[4]).all()
        assert r.failure_reasons[1] == "diverged" and r.attempts[1] == 3
        assert r.workers[3] == "w1" and r.wall_times[3] == 0.5
        assert list(r.pending_indices()) == [4, 7]
        assert r.status_counts() == {"unlabelled": r.n_pool - 4, "requested": 2, "labelled": 1, "failed": 1}
        assert r.finished_iterations() == [0]
        its = r.iterations
        assert [it["iteration"] for it in its] == [0, 1]
        assert list(its[0]["selected"]) == [3, 1, 4] and its[0]["metrics"]["r2"] == 0.9
        assert its[0]["timings"] == {"train": 1.5} and not its[1]["finished"]
        it, state = r.latest_checkpoint()
        assert it == 0 and state["w"].shape == (2, 3) and state["act"] == "relu"
        assert state["mask"].dtype == bool and state["net/0.weight"].dtype == np.float32
        assert int(state["n"]) == 3


def test_reader_replays_journal_without_writing(tmp_path):
    p = tmp_path / "c.h5"
    s = make_store(p)
    _fill(s)  # not folded: lives only in the journal
    assert s.journal_records == 4
    before = dir_state(tmp_path)
    with CampaignStore.open(p, "r") as r:
        assert r.status[3] == StoreStatus.LABELLED and r.finished_iterations() == [0]
        with pytest.raises(ReadOnlyStoreError):
            r.record_label(4, [0, 0])
    assert dir_state(tmp_path) == before
    s.close()
    with h5py.File(p, "r") as f:  # folded on close
        assert f["pool/status"][3] == 2 and f["meta"].attrs["journal_seq"] == 4


def test_duplicate_label_is_ignored_not_overwritten(tmp_path):
    with make_store(tmp_path / "c.h5") as s:
        s.mark_requested([2], 0)
        assert s.record_label(2, [1.0, 1.0]) is True
        assert s.record_label(2, [9.0, 9.0]) is False
        assert s.record_failure(2, "late failure") is False
        assert s.duplicates_ignored == 2 and np.array_equal(s.outputs[2], [1.0, 1.0])
        with pytest.raises(ValueError, match="already labelled"):
            s.mark_requested([2, 5], 1)
        s.mark_requested([5], 1)
        with pytest.raises(ValueError, match="already labelled or requested"):
            s.mark_requested([5], 2)
        assert s.journal_records == 3  # the refused calls wrote nothing
        assert s.record_label(9, [1, 2]) and s.record_failure(10, "x")


def test_bad_arguments_name_the_culprit(tmp_path):
    with make_store(tmp_path / "c.h5") as s:
        with pytest.raises(IndexError, match="40"):
            s.record_label(40, [1, 2])
        with pytest.raises(ValueError, match="3 outputs"):
            s.record_label(0, [1, 2, 3])
        with pytest.raises(ValueError, match="duplicates"):
            s.mark_requested([1, 1], 0)
        with pytest.raises(ValueError, match="2 scores for 1"):
            s.mark_requested([1], 0, [0.1, 0.2])
        with pytest.raises(TypeError, match="unsupported dtype"):
            s.save_checkpoint(0, {"o": np.array([object()])})
        with pytest.raises(TypeError, match="cannot store"):
            s.record_iteration(0, {"bad": object()})
    with pytest.raises(StoreClosedError):
        s.record_label(0, [1, 2])
    with pytest.raises(StoreExistsError):
        make_store(tmp_path / "c.h5")


def test_unknown_output_dim_taken_from_first_label(tmp_path):
    with CampaignStore.create(tmp_path / "c.h5", config={}, oracle_info={"name": "o"},
                              pool_X=np.zeros((4, 2)), seeds={}) as s:
        assert s.n_outputs is None and s.outputs.shape == (4, 0)
        s.record_label(1, [5.0, 6.0, 7.0])
        assert s.n_outputs == 3
    with CampaignStore.open(tmp_path / "c.h5") as r:
        assert np.array_equal(r.outputs[1], [5, 6, 7]) and np.isnan(r.outputs[0]).all()


def test_torn_journal_tail_is_discarded_then_appended_after(tmp_path):
    p = tmp_path / "c.h5"
    s = make_store(p)
    s.mark_requested([0, 1, 2], 0)
    s.record_label(0, [1, 1])
    s._journal.close()  # simulate a kill: no fold, lock left behind
    s._lock.info = None
    j = p.with_name(p.name + ".journal")
    good = j.read_bytes()
    torn = jmod.encode_record({"op": "label", "index": 1, "y": [2, 2], "seq": 99})
    j.write_bytes(good + torn[:-3])  # a record cut short
    with CampaignStore.open(p, "r") as r:  # the reader ignores the tail and writes nothing
        assert r.status[1] == StoreStatus.REQUESTED
    assert j.stat().st_size == len(good) + len(torn) - 3
    (p.with_name(p.name + ".lock")).unlink()
    with CampaignStore.open(p, "a") as w:
        assert w.recovered_torn_bytes == len(torn) - 3
        assert w.status[0] == StoreStatus.LABELLED and w.status[1] == StoreStatus.REQUESTED
        w.record_label(1, [3, 3])
    with CampaignStore.open(p) as r:
        assert np.array_equal(r.outputs[1], [3, 3]) and r.duplicates_ignored == 0


def test_journal_kept_after_fold_replays_idempotently(tmp_path):
    """A kill between the atomic rename and the journal restart leaves an old journal."""
    p = tmp_path / "c.h5"
    j = p.with_name(p.name + ".journal")
    with make_store(p) as s:
        s.mark_requested([0, 1], 0)
        s.record_label(0, [1, 1])
        old_journal = j.read_bytes()
        s.compact()
    j.write_bytes(old_journal)
    with CampaignStore.open(p, "a") as w:
        assert w.duplicates_ignored == 0 and w.journal_records == 0
        assert w.n_labelled == 1 and list(w.pending_indices()) == [1]
        assert w.iterations[0]["selected"].tolist() == [0, 1]  # not doubled by a replay
        w.record_label(1, [2, 2])
    with CampaignStore.open(p) as r:
        assert r.n_labelled == 2 and r.iterations[0]["selected"].tolist() == [0, 1]


def test_journal_newer_than_file_is_refused(tmp_path):
    p = tmp_path / "c.h5"
    with make_store(p) as s:
        s.mark_requested([0], 0)
        s.compact()
        old = p.read_bytes()
        s.record_label(0, [1, 1])
        s.compact()  # journal now starts after the label
    p.write_bytes(old)  # an old copy of the store restored next to the new journal
    with pytest.raises(StoreCorruptError, match="journal newer"):
        CampaignStore.open(p, "a")


def test_leftover_tmp_of_killed_fold_is_ignored_and_removed(tmp_path):
    p = tmp_path / "c.h5"
    make_store(p).close()
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_bytes(b"half a file")
    with CampaignStore.open(p, "r") as r:
        assert r.n_pool == 40
    assert tmp.exists()  # readers never delete
    CampaignStore.open(p, "a").close()
    assert not tmp.exists()


def test_resume_semantics(tmp_path):
    p = tmp_path / "c.h5"
    with make_store(p) as s:
        s.mark_requested([0, 1, 2], 0)
        s.record_label(0, [1, 1])
        s.record_iteration(0, {"rmse": 0.3}, {})
        s.save_checkpoint(0, {"w": np.ones(3)})
        s.mark_requested([5, 6], 1)
        s.record_label(5, [2, 2])
    with CampaignStore.open(p, "a") as s:
        assert s.finished_iterations() == [0]
        assert list(s.pending_indices()) == [1, 2, 6]
        assert list(s.labelled_indices()) == [0, 5]
        assert s.latest_checkpoint()[0] == 0
        assert 0 not in s.unlabelled_indices() and 1 not in s.unlabelled_indices()


def test_update_config_persists(tmp_path):
    """The store records the config it is given (the resume rules are the config's)."""
    p = tmp_path / "c.h5"
    with make_store(p) as s:
        s.update_config(dict(CONFIG, budget={"max_labels": 99}))
    with CampaignStore.open(p) as r:
        assert r.config["budget"]["max_labels"] == 99
    with CampaignStore.open(p, "a") as s:
        s.update_config(dict(CONFIG, budget={"max_labels": 99}, model={"hidden": [4]}))
    with CampaignStore.open(p) as r:
        assert r.config["model"] == {"hidden": [4]}


def test_stop_flag_reaches_the_writer_from_a_reader(tmp_path):
    p = tmp_path / "c.h5"
    with make_store(p) as w:
        assert not w.stop_requested()
        with CampaignStore.open(p, "r") as r:
            r.request_stop("user asked")
        assert w.stop_requested()
        assert json.loads(p.with_name("c.h5.stop").read_text())["reason"] == "user asked"
        w.clear_stop()
        assert not w.stop_requested()
    assert not list(tmp_path.glob("*.tmp"))


def test_auto_compaction(tmp_path, monkeypatch):
    monkeypatch.setattr(cs_mod, "AUTO_COMPACT_RECORDS", 5)
    p = tmp_path / "c.h5"
    with make_store(p) as s:
        s.mark_requested(range(10), 0)
        for i in range(6):
            s.record_label(i, [i, i])
        assert s.journal_records < 5
        with h5py.File(p, "r") as f:
            assert (f["pool/status"][()] == 2).sum() >= 4


def test_full_compaction_keeps_checkpoints_and_drops_garbage(tmp_path):
    p = tmp_path / "c.h5"
    with make_store(p, P=2000) as s:
        s.mark_requested(range(2000), 0)
        for k in range(10):
            rows = list(range(k * 200, k * 200 + 200))
            s.record_labels(rows, [[i, i] for i in rows],
                            workers=[f"worker-with-a-long-name-{i}" for i in rows])
            s.save_checkpoint(k, {"w": np.full(50, float(k))})
        size = p.stat().st_size
        s.compact(full=True)
        assert p.stat().st_size <= size
        assert s.checkpoint_iterations() == list(range(10))
        assert s.load_checkpoint(3)["w"][0] == 3.0
    with CampaignStore.open(p) as r:
        assert r.n_labelled == 2000 and r.workers[1999] == "worker-with-a-long-name-1999"


def test_readers_during_writer_folds_see_every_acknowledged_label(tmp_path):
    p = tmp_path / "c.h5"
    w = make_store(p, P=300)
    w.mark_requested(range(300), 0)
    acked = [0]
    stop = threading.Event()

    def writer() -> None:
        for i in range(300):
            w.record_label(i, [i, i])
            acked[0] = i + 1
            if i % 15 == 0:
                w.compact()
        stop.set()

    th = threading.Thread(target=writer)
    th.start()
    reads = 0
    while not stop.is_set() or reads < 3:
        floor = acked[0]
        with CampaignStore.open(p, "r") as r:
            assert r.n_labelled >= floor
            lab = r.labelled_indices()
            assert np.array_equal(lab, np.arange(lab.size))
        reads += 1
    th.join()
    w.close()
    assert reads >= 3


def test_export_csv_and_npz(tmp_path):
    p = tmp_path / "c.h5"
    with make_store(p) as s:
        s.mark_requested([4, 2, 9], 3)
        s.record_label(4, [0.1, 0.2], 1.0, "w")
        s.record_label(9, [1 / 3, -2.5], 2.5, "w,2", attempts=2, submitted=1000.0,
                       started=1001.5, finished=1004.0)
        s.record_failure(2, "x")
        X = s.pool_X.copy()
    res = export_labelled(p, tmp_path / "out.csv", "csv")
    assert res["rows"] == 2
    with open(tmp_path / "out.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["index", "iteration", "a", "b", "c", "u", "v", "wall_time", "worker",
                       "attempts", "submitted", "started", "finished"]
    row = dict(zip(rows[0], rows[2]))
    assert row["index"] == "9" and row["iteration"] == "3" and float(row["a"]) == X[9, 0]
    assert float(row["u"]) == 1 / 3 and float(row["wall_time"]) == 2.5 and row["worker"] == "w,2"
    assert row["attempts"] == "2" and float(row["submitted"]) == 1000.0
    assert float(row["started"]) == 1001.5 and float(row["finished"]) == 1004.0
    first = dict(zip(rows[0], rows[1]))
    assert float(first["wall_time"]) == 1.0 and first["attempts"] == "1"
    assert first["submitted"] == "nan"
    export_labelled(p, tmp_path / "out.npz", "npz")
    z = np.load(tmp_path / "out.npz")
    assert z["index"].tolist() == [4, 9] and np.array_equal(z["X"], X[[4, 9]])
    assert z["iteration"].tolist() == [3, 3] and z["wall_time"].tolist() == [1.0, 2.5]
    assert np.array_equal(z["y"], [[0.1, 0.2], [1 / 3, -2.5]])
    assert z["attempts"].tolist() == [1, 2] and z["started"][1] == 1001.5
    assert z["output_names"].tolist() == ["u", "v"] and z["worker"].tolist() == ["w", "w,2"]
    with pytest.raises(ValueError, match="csv, npz"):
        export_labelled(p, tmp_path / "o.x", "xlsx")


def test_export_include_failed(tmp_path):
    p = tmp_path / "c.h5"
    reason = "simulator exited 3\nstderr tail: a, b\nline 3"
    with make_store(p) as s:
        s.mark_requested([4, 2, 9], 1)
        s.record_label(4, [0.1, 0.2], 1.0, "w")
        s.record_failure(2, reason, 3.0, "w-2", attempts=3, kind="timeout", submitted=5.0,
                         started=6.0, finished=9.0)
    res = export_labelled(p, tmp_path / "all.csv", include_failed=True)
    assert res["rows"] == 2
    with open(tmp_path / "all.csv", newline="") as fh:
        rows = [dict(r) for r in csv.DictReader(fh)]
    assert [r["index"] for r in rows] == ["2", "4"]
    bad, ok = rows
    assert bad["status"] == "failed" and bad["kind"] == "timeout" and bad["reason"] == reason
    assert bad["attempts"] == "3" and bad["worker"] == "w-2" and bad["u"] == "nan"
    assert bad["iteration"] == "1" and float(bad["finished"]) == 9.0
    assert ok["status"] == "labelled" and ok["kind"] == "" and ok["reason"] == ""
    export_labelled(p, tmp_path / "all.npz", "npz", include_failed=True)
    z = np.load(tmp_path / "all.npz")
    assert z["status"].tolist() == ["failed", "labelled"] and z["reason"][0] == reason
    assert z["kind"].tolist() == ["timeout", ""]


def test_store_file_unchanged_by_read_only_use(tmp_path):
    p = tmp_path / "c.h5"
    make_store(p).close()
    h = sha(p)
    with CampaignStore.open(p) as r:
        r.iterations, r.latest_checkpoint(), r.status, r.submitted_times, r.failure_kinds
    assert sha(p) == h


def test_record_labels_group_commit(tmp_path):
    p = tmp_path / "c.h5"
    with make_store(p) as s:
        s.mark_requested([1, 2, 3, 4], 0)
        s.record_label(2, [0, 0])
        ok = s.record_labels([1, 2, 3], [[1, 1], [2, 2], [3, 3]], [0.1, 0.2, 0.3],
                             ["a", "b", "c"])
        assert ok.tolist() == [True, False, True] and s.duplicates_ignored == 1
        assert s.journal_records == 3  # request, label, ONE batch record
        with pytest.raises(ValueError, match="3 outputs"):
            s.record_labels([4], [[1, 2, 3]])
        with pytest.raises(ValueError, match="same index twice"):
            s.record_labels([4, 4], [[1, 2], [1, 2]])
        assert s.record_labels([], []).size == 0 and s.journal_records == 3
    with CampaignStore.open(p) as r:  # folded on close; also replayed correctly before
        assert np.array_equal(r.outputs[[1, 2, 3]], [[1, 1], [0, 0], [3, 3]])
        assert r.workers[3] == "c" and r.wall_times[1] == 0.1
        assert list(r.pending_indices()) == [4]


def test_reader_that_raced_a_fold_reads_again(tmp_path, monkeypatch):
    """The file a reader loaded was replaced and the journal restarted before it read the
    journal: it must notice (journal base_seq > file's seq) and read again, not lose labels."""
    from alcore.store import hdf5io

    p = tmp_path / "c.h5"
    w = make_store(p)
    w.mark_requested([0, 1], 0)
    w.record_label(0, [1, 1])  # only in the journal
    real = hdf5io.read_state
    calls = []

    def racing_read_state(path):
        st = real(path)
        calls.append(st.folded_seq)
        if len(calls) == 1:
            w.compact()  # the writer folds right after the reader loaded the old file
        return st

    monkeypatch.setattr(hdf5io, "read_state", racing_read_state)
    with CampaignStore.open(p, "r") as r:
        assert r.status[0] == StoreStatus.LABELLED
    assert len(calls) == 2 and calls[1] > calls[0]
    w.close()


def test_failed_creation_leaves_no_store_and_can_be_retried(tmp_path, monkeypatch):
    from alcore.store import hdf5io

    p = tmp_path / "c.h5"
    real_write_all = hdf5io._write_all

    def crash(*a, **k):
        real_write_all(*a, **k)
        raise KeyboardInterrupt("interrupted before the rename")

    monkeypatch.setattr(hdf5io, "_write_all", crash)  # tmp written, not yet renamed
    with pytest.raises(KeyboardInterrupt):
        make_store(p)
    monkeypatch.undo()
    assert not p.exists() and not p.with_name("c.h5.lock").exists()
    assert not p.with_name("c.h5.tmp").exists()  # the half-made file was removed, not renamed
    with make_store(p) as s:
        assert s.n_pool == 40
    assert not p.with_name("c.h5.tmp").exists()


def test_per_evaluation_times_attempts_and_kinds_round_trip(tmp_path):
    """INTERFACES.md section 2: replayed from the journal and read back after a fold alike."""
    p = tmp_path / "c.h5"
    s = make_store(p)
    s.mark_requested([0, 1, 2, 3, 4], 0)
    assert s.record_label(0, [1, 1], 0.5, "alpha", attempts=2, submitted=10.0, started=11.0,
                          finished=11.5)
    assert s.record_failure(1, "worker died: SIGSEGV (signal 11)", 2.0, "beta", 3,
                            kind="worker_died", submitted=12.0, started=13.0, finished=15.0)
    ok = s.record_labels([2, 3], [[2, 2], [3, 3]], [0.1, 0.2], ["g", "h"], attempts=[1, 4],
                         submitted=[20.0, 21.0], started=[None, 22.0], finished=[23.0, 24.0])
    assert ok.tolist() == [True, True]
    assert s.record_label(4, [4, 4])  # nothing known: NaN times, one attempt
    with pytest.raises(ValueError, match="kind"):
        s.record_failure(4, "x", kind="weird")

    def check(r: CampaignStore) -> None:
        assert r.attempts.tolist()[:5] == [2, 3, 1, 4, 1]
        assert r.submitted_times[:4].tolist() == [10.0, 12.0, 20.0, 21.0]
        assert r.started_times[0] == 11.0 and np.isnan(r.started_times[2])
        assert r.finished_times[1] == 15.0 and r.finished_times[3] == 24.0
        assert np.isnan(r.submitted_times[4]) and np.isnan(r.submitted_times[5:]).all()
        assert r.failure_kinds.tolist()[:5] == ["", "worker_died", "", "", ""]
        assert r.failure_reasons[1] == "worker died: SIGSEGV (signal 11)"
        assert r.workers.tolist()[:4] == ["alpha", "beta", "g", "h"]

    with CampaignStore.open(p, "r") as r:  # journal replay
        check(r)
    s.close()
    with CampaignStore.open(p, "r") as r:  # folded into the HDF5 file
        check(r)
    with h5py.File(p, "r") as f:
        assert f["pool/started"][0] == 11.0 and f["pool/failure_kind"].asstr()[1] == "worker_died"


def test_late_success_clears_the_failure_kind_and_reason(tmp_path):
    with make_store(tmp_path / "c.h5") as s:
        s.mark_requested([0], 0)
        s.record_failure(0, "timeout after 5 s", kind="timeout", attempts=2)
        s.record_label(0, [1, 1], attempts=3)
        assert s.failure_kinds[0] == "" and s.failure_reasons[0] == "" and s.attempts[0] == 3


def test_iteration_info_round_trips(tmp_path):
    p = tmp_path / "c.h5"
    s = make_store(p)
    info = {"model": {"hidden": [64, 64], "lr": 1e-3}, "cv_rmse": [0.5, 0.25], "retuned": True}
    s.record_iteration(0, {"rmse": 0.3}, {"train": 1.0}, info=info)
    s.record_iteration(1, {"rmse": 0.2})
    with CampaignStore.open(p, "r") as r:
        assert r.iterations[0]["info"] == info and r.iterations[1]["info"] == {}
    s.close()
    with CampaignStore.open(p, "r") as r:
        assert r.iterations[0]["info"] == info and r.iterations[1]["info"] == {}
        assert r.iterations[1]["timings"] == {}
    with pytest.raises(TypeError, match="info"):
        with CampaignStore.open(p, "a") as w:
            w.record_iteration(2, {}, info=[1, 2])


def test_failed_fold_on_a_full_disk_leaves_no_tmp_and_loses_nothing(tmp_path, monkeypatch):
    from alcore.store import hdf5io

    p = tmp_path / "c.h5"
    s = make_store(p)
    s.mark_requested([0, 1], 0)
    s.record_label(0, [1, 1])

    def copy_half_then_enospc(src, dst, *a, **k):
        with open(src, "rb") as fi, open(dst, "wb") as fo:
            fo.write(fi.read()[:1000])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(hdf5io.shutil, "copyfile", copy_half_then_enospc)
    with pytest.raises(OSError, match="No space"):
        s.compact()
    with pytest.raises(OSError, match="No space"):
        s.save_checkpoint(0, {"w": np.ones(2)})
    assert not p.with_name("c.h5.tmp").exists()
    s.record_label(1, [2, 2])  # still acknowledged through the journal
    with CampaignStore.open(p, "r") as r:
        assert r.n_labelled == 2
    monkeypatch.undo()
    s.close()
    with CampaignStore.open(p, "r") as r:
        assert r.n_labelled == 2 and r.journal_records == 0
        assert r.checkpoint_iterations() == [0]  # the checkpoint that waited is written now


def test_failed_writer_open_keeps_the_tmp_of_a_bad_store(tmp_path):
    p = tmp_path / "c.h5"
    make_store(p).close()
    with h5py.File(p, "r+") as f:
        del f["pool/status"]
    p.with_name("c.h5.tmp").write_bytes(b"maybe the last good copy")
    before = dir_state(tmp_path)
    with pytest.raises(StoreCorruptError, match="pool/status"):
        CampaignStore.open(p, "a")
    assert dir_state(tmp_path) == before
