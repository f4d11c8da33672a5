"""User errors that only show once ``alflow run`` has started its flow: one line, exit code 2.

Issue 16, items 6 and 9: a plain function with undeclared outputs burnt every retry on every
point (76 simulator calls) and ended with a traceback; an exit-2 error raised inside the flow
(e.g. "0 labelled points") printed its line after 70-90 lines of Prefect tracebacks. Now the
first set-up failure ends the batch, and the line is the only thing on stderr. These run the
real ``alflow`` command against the session's Prefect server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from campaign_helpers import counting_config, write_toml

ALFLOW = str(Path(sys.executable).parent / "alflow")

ORACLES = '''
import os


def _count():
    with open(os.environ["ALFLOW_TEST_CALLS"], "a") as fh:
        fh.write("call\\n")


def three_outputs(x):
    """Returns 3 values but the config declares none (k = 1)."""
    _count()
    return [x[0], x[1], x[0] * x[1]]


def always_fails(x):
    """Fails for every point (an error of the point, not of the set-up)."""
    _count()
    raise RuntimeError("solver diverged")
'''


def _run(tmp_path: Path, oracle: str, prefect_server, **sections) -> tuple[subprocess.CompletedProcess, int]:
    (tmp_path / "oracles.py").write_text(ORACLES)
    calls = tmp_path / "calls.log"
    cfg = counting_config(tmp_path, **sections)
    cfg["oracle"].update(name=f"oracles.py:{oracle}", params={})
    path = write_toml(tmp_path / "c.toml", cfg)
    env = prefect_server.env(ALFLOW_TEST_CALLS=str(calls))
    r = subprocess.run([ALFLOW, "run", str(path), "--no-progress"], capture_output=True, text=True,
                       env=env, timeout=600)
    n = len(calls.read_text().split()) if calls.exists() else 0
    return r, n


def _one_line(r: subprocess.CompletedProcess, fragment: str, allowed: str | None = None) -> str:
    """The error is one line, the last on stderr; the only other lines allowed contain
    ``allowed`` (the failure warnings of a run whose points fail)."""
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-4000:])
    assert "Traceback" not in r.stderr, r.stderr[-4000:]
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    others = [ln for ln in lines[:-1] if allowed is None or allowed not in ln]
    assert lines and not others, r.stderr[-4000:]
    assert lines[-1].startswith("alflow: error: ") and fragment in lines[-1], lines[-1]
    return lines[-1]


@pytest.mark.parametrize("test_size", [0, 5], ids=["in-the-initial-design", "labelling-the-test-set"])
def test_undeclared_outputs_stop_at_the_first_call_with_one_line(tmp_path: Path, prefect_server,
                                                                 test_size: int) -> None:
    r, n_calls = _run(tmp_path, "three_outputs", prefect_server, test={"size": test_size},
                      dask={"workers": 0, "retries": 2})
    line = _one_line(r, "returned 3 output(s) but the oracle declares 1")
    assert "set oracle.params output_names = ['y0', 'y1', 'y2']" in line
    assert n_calls == 1  # not every point of the batch, not every retry
    store = tmp_path / "store.h5"
    if test_size:
        assert not store.exists()  # the test set is labelled before the store is created
    else:
        assert f"delete {store} and run again" in line


def test_a_campaign_left_with_no_label_is_one_line(tmp_path: Path, prefect_server) -> None:
    r, n_calls = _run(tmp_path, "always_fails", prefect_server, dask={"workers": 0, "retries": 0})
    _one_line(r, "iteration 0: only 0 labelled point(s) to train on",
              allowed=" | WARNING | ")
    assert r.stderr.count("failed after 1 attempt(s): exception: RuntimeError: solver diverged") == 8
    assert n_calls == 8  # the initial design, once each; errors of the point are not set-up errors
