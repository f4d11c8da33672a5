"""Old stores stay readable and resumable: tests/data/store_v1 was written by alflow before the
per-evaluation times, failure kinds, iteration info and the v2 journal header
(tests/data/make_store_v1.py), and left as a kill leaves it (two events only in its journal)."""
from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from alcore.store import CampaignStore, StoreStatus

FIXTURE = Path(__file__).resolve().parent / "data" / "store_v1"


@pytest.fixture()
def old_store(tmp_path) -> Path:
    for f in FIXTURE.iterdir():
        shutil.copy2(f, tmp_path / f.name)
    return tmp_path / "c.h5"


def _check_old_contents(s: CampaignStore) -> None:
    assert s.status.tolist() == [StoreStatus.LABELLED, StoreStatus.FAILED, StoreStatus.LABELLED,
                                 StoreStatus.REQUESTED, StoreStatus.REQUESTED,
                                 StoreStatus.UNLABELLED]
    assert s.outputs[0].tolist() == [0.0, 0.5] and s.outputs[2].tolist() == [2.0, 2.5]
    assert s.wall_times[0] == 1.5 and s.workers[2] == "w2"
    assert s.failure_reasons[1] == "boom: exit 3" and s.attempts[1] == 3
    its = s.iterations
    assert its[0]["metrics"] == {"rmse": 0.5} and its[0]["info"] == {}
    assert its[1]["selected"].tolist() == [4] and its[1]["info"] == {}
    assert s.latest_checkpoint()[0] == 0


def test_old_store_reads_with_nan_and_empty_for_the_new_fields(old_store):
    with CampaignStore.open(old_store, "r") as r:
        _check_old_contents(r)
        for times in (r.submitted_times, r.started_times, r.finished_times):
            assert times.shape == (6,) and times.dtype == np.float64 and np.isnan(times).all()
        assert r.failure_kinds.tolist() == [""] * 6


def test_old_store_resumes_and_gains_the_new_datasets(old_store):
    with CampaignStore.open(old_store, "a") as w:
        _check_old_contents(w)  # the v1 journal was replayed
        w.record_label(3, [3.0, 3.5], 0.25, "w3", attempts=2, submitted=100.0, started=101.0,
                       finished=101.25)
        w.record_failure(4, "killed by SIGSEGV", 1.0, "w4", 2, kind="worker_died",
                         submitted=102.0, started=103.0, finished=104.0)
        w.record_iteration(1, {"rmse": 0.25}, {"train_s": 2.0}, info={"model": "mlp"})
    with h5py.File(old_store, "r") as f:
        assert f["pool/submitted"].shape == (6,) and f["pool/failure_kind"].asstr()[4] == "worker_died"
    with CampaignStore.open(old_store, "r") as r:
        assert r.status[3] == StoreStatus.LABELLED and r.attempts[3] == 2
        assert r.started_times[3] == 101.0 and np.isnan(r.started_times[0])
        assert r.failure_kinds.tolist() == ["", "", "", "", "worker_died", ""]
        assert r.iterations[1]["info"] == {"model": "mlp"}
        assert r.outputs[0].tolist() == [0.0, 0.5] and r.failure_reasons[1] == "boom: exit 3"
