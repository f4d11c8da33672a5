"""SIGKILL a labelling writer at random moments; no acknowledged label may be lost.

The logic lives in benchmarks/store_killtest.py (also the acceptance run with 40 kills).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "store_killtest.py")


def _run(tmp_path, *args: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, SCRIPT, "--workdir", str(tmp_path), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert proc.stdout, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _check(res: dict, kills: int) -> None:
    assert res["kills"] == kills
    assert res["lost_total"] == 0 and res["wrong_value_total"] == 0
    assert res["unopenable_total"] == 0 and res["duplicates_total"] == 0
    assert res["writer_errors_total"] == 0
    assert res["acknowledged_labels"] > 0 and res["stale_lock_takeovers"] >= kills // 2
    assert res["ok"] is True


def test_kill_writer_10_times(tmp_path):
    _check(_run(tmp_path, "--kills", "10", "--quick", "--seed", "7"), 10)


@pytest.mark.slow
def test_kill_writer_40_times_full_pool(tmp_path):
    res = _run(tmp_path, "--kills", "40")
    _check(res, 40)
    assert res["kills_during_compaction"] >= 1
