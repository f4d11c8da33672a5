"""Asynchronous mode survives ``kill -9``: many random kills of ``alflow run``, then the same
command; the labels, the oracle call log and ``alflow status --json`` agree (slow: ~3 minutes)."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from campaign_helpers import calls, counting_config, write_counting_oracle, write_toml

ALFLOW = str(Path(sys.executable).parent / "alflow")
KILLS = 10
BUDGET = 8 + 8 * 4


def _key(x: np.ndarray) -> str:
    return " ".join(repr(float(v)) for v in x)  # as the counting oracle logs a point


def _labelled(store_path: Path) -> set[str]:
    from alcore.store import CampaignStore

    if not store_path.exists():
        return set()
    with CampaignStore.open(store_path, "r") as st:
        return {_key(x) for x in np.asarray(st.pool_X)[st.labelled_indices()]}


@pytest.mark.slow
def test_async_campaign_survives_random_kill_9(tmp_path: Path, prefect_server) -> None:
    mods = tmp_path / "mods"
    mods.mkdir()
    write_counting_oracle(mods)  # importable by the Dask worker processes
    cfg = write_toml(tmp_path / "c.toml", counting_config(
        tmp_path, campaign={"name": "async-kill", "store": "store.h5", "seed": 3, "mode": "async"},
        oracle={"name": "counting_oracle:f", "params": {"sleep": 0.8}},
        model={"select": "fixed", "hidden": [16, 16], "epochs": 30, "min_steps": 200, "device": "cpu"},
        acquisition={"strategy": "nngp", "samples": 16, "batch_size": 4},
        budget={"initial": 8, "iterations": 8}, dask={"workers": 2, "retries": 1}))
    store = tmp_path / "store.h5"
    log = tmp_path / "calls.log"
    env = prefect_server.env(ALFLOW_TEST_CALLS=str(log),
                             PYTHONPATH=os.pathsep.join([str(mods), os.environ.get("PYTHONPATH", "")]))
    rng = random.Random(14)
    in_flight_at_kills: Counter = Counter()  # point -> kills that cut an evaluation of it off
    kills = []
    while len(kills) < KILLS:
        starts_before, ends_before = calls(log)
        before = sum(ends_before.values())
        proc = subprocess.Popen([ALFLOW, "run", str(cfg)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        # random moments: every third kill at a random time (often in start-up), the others
        # after 1-4 new evaluations plus up to 1 s (labelling, training, recording a version)
        if len(kills) % 3 == 0:
            t_kill, need = time.monotonic() + rng.uniform(1.0, 8.0), 0
        else:
            t_kill, need = math.inf, rng.randint(1, 4)
        while time.monotonic() < t_kill:
            if proc.poll() is not None:
                break
            if need and sum(calls(log)[1].values()) >= before + need:
                t_kill, need = time.monotonic() + rng.uniform(0.0, 1.0), 0
            time.sleep(0.05)
        finished = proc.poll() is not None
        if not finished:
            os.kill(proc.pid, signal.SIGKILL)  # kill -9 of `alflow run`
        proc.wait(timeout=30)
        time.sleep(0.5)
        try:  # then its orphans (Dask workers, the training process) so none writes after the resume
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if finished:
            out = proc.stdout.read().decode()
            assert proc.returncode == 0, out[-3000:]
            break  # the campaign ended before all kills: fewer kills, still a valid run
        starts, _ = calls(log)
        labelled = _labelled(store)
        cut_off = {p for p in starts if starts[p] > starts_before[p] and p not in labelled}
        in_flight_at_kills.update(cut_off)
        kills.append({"labelled": len(labelled), "calls": sum(starts.values()), "in_flight": len(cut_off)})

    r = subprocess.run([ALFLOW, "run", str(cfg)], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    st = subprocess.run([ALFLOW, "status", str(store), "--json"], env=env, capture_output=True, text=True,
                        timeout=120)
    assert st.returncode == 0, st.stderr
    status = json.loads(st.stdout)

    from alcore.store import CampaignStore

    starts, ends = calls(log)
    with CampaignStore.open(store, "r") as s:
        labelled = [_key(x) for x in np.asarray(s.pool_X)[s.labelled_indices()]]
        assert s.duplicates_ignored == 0
        assert len(s.requested_indices()) == 0 and len(s.failed_indices()) == 0
        versions = s.finished_iterations()
        n_train = [r["metrics"]["labelled"] for r in s.iterations if r["metrics"]]
    print(json.dumps({"async_kill_resume": {
        "kills": len(kills), "labels": len(labelled), "oracle_calls": sum(starts.values()),
        "evaluations_cut_off_by_kills": sum(in_flight_at_kills.values()),
        "points_called_twice": sum(1 for n in starts.values() if n > 1), "model_versions": len(versions),
        "per_kill": kills}}))
    assert len(kills) >= KILLS
    assert len(labelled) == BUDGET == status["labelled"]
    assert status["requested"] == 0 and status["failed"] == 0
    assert [m["iteration"] for m in status["metrics"]] == versions and n_train[-1] == BUDGET
    assert set(starts) == set(labelled)  # every evaluated point ended up labelled, no other
    # a point is evaluated again only after a kill cut its evaluation off, once per such kill
    for p, n in starts.items():
        assert n <= 1 + in_flight_at_kills[p], (p, n, in_flight_at_kills[p])
    assert sum(starts.values()) <= BUDGET + sum(in_flight_at_kills.values())
