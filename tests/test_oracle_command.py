"""command oracle: JSON protocol, inert shell metacharacters, process-group timeouts, errors."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from oracles import resolve
from oracles.command import CommandError, CommandOracle, CommandTimeout

ROOT = Path(__file__).resolve().parent.parent
PROJECTILE = str(ROOT / "examples" / "simulators" / "projectile.py")
PY = sys.executable
BOUNDS = [[5, 50], [10, 80], [0, 0.5]]


def test_example_simulator_stdin_stdout():
    o = resolve("command", argv=[PY, PROJECTILE], bounds=BOUNDS, output_names=["range", "hmax", "t"])
    y = o([20.0, 45.0, 0.0])
    # no drag: range v^2/g, height v^2/(4g), time sqrt(2) v/g
    np.testing.assert_allclose(y, [400 / 9.81, 100 / 9.81, np.sqrt(2) * 20 / 9.81], rtol=1e-4)
    assert o([20.0, 45.0, 0.1])[0] < y[0]  # drag shortens the range


def test_example_simulator_files_and_per_evaluation_workdir(tmp_path):
    o = CommandOracle([PY, PROJECTILE, "{input_file}", "{output_file}"], bounds=BOUNDS,
                      output_names=["range", "hmax", "t"], workdir=tmp_path, keep_workdirs=True)
    assert o.input_mode == "file" and o.output_mode == "file"
    o([20.0, 45.0, 0.0])
    o([30.0, 30.0, 0.0])
    dirs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(dirs) == 2  # one fresh directory per evaluation
    for d in dirs:
        assert json.loads((d / "input.json").read_text())["inputs"].keys() == {"x0", "x1", "x2"}
        assert "y" in json.loads((d / "output.json").read_text())


def test_workdirs_removed_by_default(tmp_path):
    o = CommandOracle([PY, PROJECTILE], bounds=BOUNDS, output_names=["a", "b", "c"], workdir=tmp_path)
    o([10.0, 45.0, 0.0])
    assert list(tmp_path.iterdir()) == []


ECHO_ARGS = (
    "import json, os, sys; json.load(sys.stdin); "
    "print(json.dumps({'y': [len(sys.argv) - 1], 'argv': sys.argv[1:], 'files': sorted(os.listdir('.'))}))"
)


def test_shell_metacharacters_are_passed_inertly(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("still here")
    marker = tmp_path / "pwned"
    nasty = [f"; rm -rf {victim}", f"$(touch {marker})", f"`touch {marker}`", f"| touch {marker}",
             f"&& touch {marker}", "> out.txt", "*", "$HOME", "'\"", "{not_a_placeholder}"]
    script = tmp_path / "echo.py"
    script.write_text(
        "import json, os, sys\njson.load(sys.stdin)\n"
        "json.dump({'args': sys.argv[1:]}, open(os.environ['ARGS_OUT'], 'w'))\nprint(json.dumps({'y': len(sys.argv) - 1}))\n"
    )
    args_out = tmp_path / "args.json"
    o = CommandOracle([PY, str(script), *nasty], bounds=[[0, 1]], env={"ARGS_OUT": str(args_out)})
    assert o([0.5])[0] == len(nasty)
    assert json.loads(args_out.read_text())["args"] == nasty  # byte for byte, unexpanded
    assert (victim / "keep.txt").read_text() == "still here"
    assert not marker.exists()
    assert not (tmp_path / "out.txt").exists()


def test_argv_must_be_a_list_not_a_shell_string():
    with pytest.raises(ValueError, match="argv must be a non-empty list"):
        CommandOracle("python sim.py; rm -rf /", bounds=[[0, 1]])


def test_nonzero_exit_carries_stderr_tail():
    o = CommandOracle([PY, PROJECTILE, "--fail"], bounds=BOUNDS, output_names=["a", "b", "c"])
    with pytest.raises(CommandError, match="exited with status 3") as ei:
        o([10.0, 45.0, 0.0])
    assert "asked to fail" in ei.value.stderr_tail and ei.value.returncode == 3
    assert "asked to fail" in str(ei.value)


def test_unparsable_and_incomplete_output_are_failures():
    bad = CommandOracle([PY, "-c", "import sys; print('hello'); print('oops', file=sys.stderr)"], bounds=[[0, 1]])
    with pytest.raises(CommandError, match="not valid JSON") as ei:
        bad([0.5])
    assert "oops" in ei.value.stderr_tail
    keys = CommandOracle([PY, "-c", "print('{\"a\": 1}')"], bounds=[[0, 1]], output_names=["a", "b"])
    with pytest.raises(CommandError, match="every output name"):
        keys([0.5])
    named = CommandOracle([PY, "-c", "print('{\"b\": 2, \"a\": 1}')"], bounds=[[0, 1]], output_names=["a", "b"])
    np.testing.assert_array_equal(named([0.5]), [1, 2])
    with pytest.raises(CommandError, match="cannot start"):
        CommandOracle(["/nonexistent/simulator"], bounds=[[0, 1]])([0.5])


def test_timeout_kills_the_whole_process_group(tmp_path):
    """The program starts a grandchild; on timeout both must be dead."""
    pidfile = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    o = CommandOracle([PY, "-c", code], bounds=[[0, 1]], timeout=1.5)
    t = time.perf_counter()
    with pytest.raises(CommandTimeout, match="timed out after 1.5 s"):
        o([0.5])
    assert time.perf_counter() - t < 10
    pid = int(pidfile.read_text())
    for _ in range(50):  # the grandchild is reparented to init; wait for it to be reaped
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"grandchild {pid} survived the timeout")


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="timeout must be a positive"):
        CommandOracle([PY], bounds=[[0, 1]], timeout=-1)
    with pytest.raises(ValueError, match="input_mode"):
        CommandOracle([PY], bounds=[[0, 1]], input_mode="socket")
    with pytest.raises(ValueError, match="missing required parameter.*bounds"):
        resolve("command", argv=[PY])


LEAKY = str(ROOT / "examples" / "simulators" / "leaky.py")


def gone(pid: int, wait: float = 5.0) -> bool:
    """The process is dead (or a zombie nobody reaped: it holds nothing but a table slot)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat")
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except FileNotFoundError:
            return True
        except IndexError:
            pass
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("setsid", [False, True], ids=["same-group", "setsid"])
def test_background_child_holding_stdout_neither_hides_the_result_nor_survives(tmp_path, setsid):
    """Issue 16 item 5: the child keeps stdout open; the result is read when the main process
    exits (not as a timeout after the child's 120 s), and the child is killed then."""
    pidfile = tmp_path / "child.pid"
    argv = [PY, LEAKY, "--pidfile", str(pidfile)] + (["--setsid"] if setsid else [])
    o = CommandOracle(argv, bounds=[[0, 1], [0, 1]], timeout=60)
    t = time.perf_counter()
    assert o([0.25, 0.5])[0] == 0.75
    assert time.perf_counter() - t < 30
    (pid,) = map(int, pidfile.read_text().split())
    assert gone(pid), f"the background child {pid} survived the evaluation"


def test_timeout_kills_a_child_that_left_the_process_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    o = CommandOracle([PY, LEAKY, "--pidfile", str(pidfile), "--setsid", "--hang", "60"],
                      bounds=[[0, 1]], timeout=2.0)
    t = time.perf_counter()
    with pytest.raises(CommandTimeout, match="timed out after 2.0 s"):
        o([0.5])
    assert time.perf_counter() - t < 20
    (pid,) = map(int, pidfile.read_text().split())
    assert gone(pid)


def test_abort_kills_a_running_program_so_the_dispatcher_timeout_needs_no_restart(tmp_path):
    """The dispatcher's own timeout (no command timeout) asks the oracle to abort: the program
    and its setsid child die, and the evaluation ends as a timeout that stopped cleanly."""
    from oracles import Dispatcher

    pidfile = tmp_path / "child.pid"
    o = CommandOracle([PY, LEAKY, "--pidfile", str(pidfile), "--setsid", "--hang", "60"], bounds=[[0, 1]])
    with Dispatcher(workers=0, retries=0, timeout=3.0) as d:
        t = time.perf_counter()
        (r,) = list(d.evaluate(o, [[0.5]]))
    assert time.perf_counter() - t < 30
    assert r.kind == "timeout" and r.reason.endswith("(stopped)"), r.reason
    (pid,) = map(int, pidfile.read_text().split())
    assert gone(pid)


def test_failure_reason_carries_the_stderr_tail_and_kinds_are_right():
    from oracles import Dispatcher

    err = CommandOracle([PY, LEAKY, "--stderr", "solver diverged at step 17"], bounds=[[0, 1]])
    missing = CommandOracle(["/nonexistent/simulator"], bounds=[[0, 1]])
    three = CommandOracle([PY, "-c", "print('[1, 2, 3]')"], bounds=[[0, 1]])
    with Dispatcher(workers=0, retries=1) as d:
        (r_err,) = list(d.evaluate(err, [[0.5]]))
        (r_missing,) = list(d.evaluate(missing, [[0.5]]))
        (r_three,) = list(d.evaluate(three, [[0.5]]))
    assert r_err.kind == "error" and r_err.attempts == 2
    assert "exited with status 4" in r_err.reason and "solver diverged at step 17" in r_err.reason
    assert r_missing.kind == "setup" and r_missing.attempts == 1 and "cannot start" in r_missing.reason
    assert r_three.kind == "setup" and r_three.attempts == 1
    assert "returned 3 output(s)" in r_three.reason and "output_names = ['y0', 'y1', 'y2']" in r_three.reason
