"""Ctrl-C and SIGTERM stop a running campaign like `alflow stop`: labels kept, one line, resumable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from campaign_helpers import calls, counting_config, write_toml

ALFLOW = str(Path(sys.executable).parent / "alflow")


def _wait_for_ends(calls_file: Path, n: int, proc: subprocess.Popen, timeout: float) -> None:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if proc.poll() is not None:
            pytest.fail(f"alflow ended early: {proc.communicate()}")
        if sum(calls(calls_file)[1].values()) >= n:
            return
        time.sleep(0.2)
    pytest.fail(f"fewer than {n} evaluations finished within {timeout} s")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_the_same_command_resumes(tmp_path: Path, signum: int) -> None:
    calls_file = tmp_path / "calls.log"
    env = dict(os.environ, ALFLOW_TEST_CALLS=str(calls_file))
    cfg = write_toml(tmp_path / "c.toml", counting_config(
        tmp_path, oracle={"params": {"sleep": 0.3}}, budget={"initial": 8, "iterations": 4}))
    proc = subprocess.Popen([ALFLOW, "run", str(cfg), "--no-progress"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        _wait_for_ends(calls_file, 10, proc, timeout=240)  # the initial design and two more
        t0 = time.monotonic()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - t0 < 30, "the campaign did not stop promptly"
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, (proc.returncode, out, err)
    assert f"stopped on {name}" in out, (out, err)
    assert "Traceback" not in err, err
    starts, ends = calls(calls_file)
    assert starts == ends, "an evaluation in flight was abandoned"
    done = sum(ends.values())
    assert done < 8 + 4 * 4
    # the same command resumes and never pays for a point twice
    r = subprocess.run([ALFLOW, "run", str(cfg), "--no-progress"], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, (r.stdout, r.stderr)
    starts, ends = calls(calls_file)
    assert sum(starts.values()) == 8 + 4 * 4 and max(starts.values()) == 1
