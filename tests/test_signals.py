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


def test_ctrl_c_on_a_terminal_reaches_only_alflow(tmp_path: Path) -> None:
    """A terminal sends Ctrl-C's SIGINT to the whole foreground process group: the local Dask
    workers and Prefect's ephemeral API server too. They died of it (a KeyboardInterrupt
    traceback per worker; the flow, its API gone, failed minutes later with a traceback). Now
    they leave it to alflow, which stops cleanly and leaves no process of the group behind."""
    calls_file = tmp_path / "calls.log"
    env = dict(os.environ, ALFLOW_TEST_CALLS=str(calls_file), PREFECT_HOME=str(tmp_path / "prefect"))
    env.pop("PREFECT_API_URL", None)  # the ephemeral API, as a first-time user runs it
    cfg = write_toml(tmp_path / "c.toml", counting_config(
        tmp_path, oracle={"params": {"sleep": 0.3}}, budget={"initial": 8, "iterations": 4},
        dask={"workers": 2, "retries": 0}))
    proc = subprocess.Popen([ALFLOW, "run", str(cfg), "--no-progress"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        _wait_for_ends(calls_file, 10, proc, timeout=300)
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, (proc.returncode, out, err[-3000:])
    assert "stopped on SIGINT" in out, (out, err[-3000:])
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    starts, ends = calls(calls_file)
    assert starts == ends, "an evaluation in flight was abandoned"
    t_end = time.monotonic() + 30
    while time.monotonic() < t_end:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        pytest.fail("processes of the run outlived it")
