"""The ``alflow`` command line as a user runs it: subprocesses, exit codes, kill -9 and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from campaign_helpers import calls, counting_config, toml_value, write_counting_oracle, write_toml

ALFLOW = str(Path(sys.executable).parent / "alflow")


def alflow(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([ALFLOW, *args], capture_output=True, text=True, timeout=timeout,
                          env=env or dict(os.environ))


def _assert_user_error(r: subprocess.CompletedProcess, fragment: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert fragment in lines[0], lines[0]


# ------------------------------------------------------------------------------ e2e
HEAT2D = """
[campaign]
name = "cli-heat2d"
store = "out/heat.h5"
seed = 0

[oracle]
name = "heat2d"
params = {{ n = 12 }}

[pool]
size = 128

[test]
size = 24

[model]
select = "fixed"
hidden = [16, 16]
epochs = 20
min_steps = 0
batch_size = 16
device = "cpu"

[acquisition]
strategy = "{strategy}"
samples = 16
batch_size = 6

[budget]
initial = 10
iterations = 2

[dask]
workers = {workers}
"""


def test_run_status_report_export_end_to_end(tmp_path: Path, prefect_server) -> None:
    cfg = tmp_path / "heat.toml"
    cfg.write_text(HEAT2D.format(strategy="nngp", workers=1))
    env = prefect_server.env()
    r = alflow("run", str(cfg), env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    store = tmp_path / "out" / "heat.h5"
    assert f"store:  {store}" in r.stdout
    assert "report: " in r.stdout
    assert "iteration 2:" in r.stdout  # one line per iteration when not a terminal
    assert "\x1b[" not in r.stdout  # no progress bars / colours in a pipe

    s = alflow("status", str(store), "--json")
    assert s.returncode == 0, s.stderr
    st = json.loads(s.stdout)
    assert st["labelled"] == 10 + 2 * 6 and st["failed"] == 0 and st["iteration"] == 2
    assert [m["iteration"] for m in st["metrics"]] == [0, 1, 2]
    assert all(np.isfinite(m["rmse"]) and m["on"] == "test" for m in st["metrics"])
    assert [m["labelled"] for m in st["metrics"]] == [10, 16, 22]

    human = alflow("status", str(store))
    assert human.returncode == 0 and "iterations finished: 3 of 3" in human.stdout

    rep = alflow("report", str(store), "-o", str(tmp_path / "rep"))
    assert rep.returncode == 0, rep.stderr
    pngs = list((tmp_path / "rep").glob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)

    for fmt in ("csv", "npz"):
        out = tmp_path / f"labels.{fmt}"
        e = alflow("export", str(store), "--format", fmt, "-o", str(out))
        assert e.returncode == 0, e.stderr
        assert out.exists()
    with np.load(tmp_path / "labels.npz") as z:
        assert z["X"].shape == (22, 9) and z["y"].shape == (22, 2)
    assert len((tmp_path / "labels.csv").read_text().strip().splitlines()) == 23

    # the same command again: resumes, finds nothing left to do, spends nothing
    again = alflow("run", str(cfg), env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(alflow("status", str(store), "--json").stdout)["labelled"] == 22


def test_custom_oracle_from_a_file_on_the_embedded_defaults(tmp_path: Path) -> None:
    """``oracle.name = "path/file.py:attr"``: a plain function with bounds, on Dask workers,
    with no PREFECT_API_URL (Prefect's ephemeral API, as in the README's main command)."""
    sub = tmp_path / "sims"
    sub.mkdir()
    write_counting_oracle(sub)
    from datetime import datetime, timedelta

    from alcore.config import describe_deadline, load_config, resolve_deadline

    # A deadline one minute ago (machine time) resolves to tomorrow: shown, with a warning (issue 13).
    just_passed = (datetime.now() - timedelta(minutes=1)).strftime("%H:%M")
    raw = counting_config(tmp_path, oracle={"name": "sims/counting_oracle.py:f"},
                          dask={"workers": 1, "retries": 0}, budget={"iterations": 1, "deadline": just_passed})
    cfg = write_toml(tmp_path / "c.toml", raw)
    env = dict(os.environ, ALFLOW_TEST_CALLS=str(tmp_path / "calls.log"),
               PREFECT_HOME=str(tmp_path / "prefect-home"))
    env.pop("PREFECT_API_URL", None)
    r = alflow("run", str(cfg), env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Prefect API: ephemeral" in r.stdout
    start = r.stdout.splitlines()[0]
    tomorrow = describe_deadline(resolve_deadline(load_config(cfg).budget))
    assert start.startswith(f"starting campaign 'tiny' (store {tmp_path / 'store.h5'}, deadline {tomorrow}); "), start
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("alflow: warning: ")]
    assert len(warnings) == 1 and f'budget.deadline "{just_passed}" is 23 h' in warnings[0], r.stderr[-2000:]
    starts, ends = calls(tmp_path / "calls.log")
    assert sum(ends.values()) == 8 + 4 and max(starts.values()) == 1
    st = json.loads(alflow("status", str(tmp_path / "store.h5"), "--json").stdout)
    assert st["oracle"] == "f" and st["labelled"] == 12


# ------------------------------------------------------------------------- exit codes
def test_user_mistakes_exit_2_with_one_line(tmp_path: Path) -> None:
    _assert_user_error(alflow("run", str(tmp_path / "missing.toml")), "config not found")
    _assert_user_error(alflow("validate", str(tmp_path)), "is a directory")
    bad = tmp_path / "bad.toml"
    bad.write_text(HEAT2D.format(strategy="nggp", workers=1))
    _assert_user_error(alflow("run", str(bad)), "acquisition.strategy: 'nggp' is not one of")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text(HEAT2D.format(strategy="nngp", workers=1).replace('"heat2d"\nparams', '"heat3d"\nparams'))
    _assert_user_error(alflow("run", str(unknown)), "heat3d")
    _assert_user_error(alflow("status", str(tmp_path / "nope.h5")), "store not found")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file at all")
    _assert_user_error(alflow("status", str(junk)), "junk.h5")
    _assert_user_error(alflow("export", str(junk), "--format", "csv"), "junk.h5")
    _assert_user_error(alflow("stop", str(tmp_path / "nope.h5")), "store not found")
    good = tmp_path / "good.toml"
    good.write_text(HEAT2D.format(strategy="nngp", workers=1))
    from conftest import free_port

    dead_api = dict(os.environ, PREFECT_API_URL=f"http://127.0.0.1:{free_port()}/api")
    _assert_user_error(alflow("run", str(good), env=dead_api), "cannot reach the Prefect API")
    r = alflow("export", str(junk), "--format", "xlsx")
    assert r.returncode == 2 and "invalid choice" in r.stderr  # argparse usage error
    assert alflow().returncode == 2


def test_config_not_utf8_and_bad_schedules_are_one_line(tmp_path: Path) -> None:
    """Issue 16 item 8: these were a traceback and exit code 1."""
    latin = tmp_path / "latin1.toml"
    latin.write_bytes(("# Temp\u00e9rature de consigne\n" + HEAT2D.format(strategy="nngp", workers=1)).encode("latin-1"))
    for args in (["validate"], ["run"], ["serve", "--cron", "0 22 * * *"]):
        _assert_user_error(alflow(args[0], str(latin), *args[1:]),
                           f"{latin}: not UTF-8 text (byte 0xe9 on line 1); save the file as UTF-8")
    good = tmp_path / "good.toml"
    good.write_text(HEAT2D.format(strategy="nngp", workers=1))
    _assert_user_error(alflow("serve", str(good), "--cron", "not a cron"),
                       "--cron 'not a cron' is not a cron expression: five fields")
    _assert_user_error(alflow("serve", str(good), "--cron", "0 22 * * *", "--timezone", "Mars/Olympus"),
                       "--timezone 'Mars/Olympus' is not an IANA time zone name")
    assert not (tmp_path / "out").exists()


def test_validate_shows_the_resolved_deadline_and_warns_when_it_is_tomorrow(tmp_path: Path) -> None:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    just_passed = (datetime.now(ZoneInfo("Europe/Berlin")) - timedelta(minutes=1)).strftime("%H:%M")
    cfg = write_toml(tmp_path / "c.toml", counting_config(
        tmp_path, budget={"deadline": just_passed, "timezone": "Europe/Berlin"}))
    r = alflow("validate", str(cfg))
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("deadline:"))
    assert f" {just_passed} CE" in line and line.endswith("(Europe/Berlin) if started now"), line
    assert r.stderr.startswith(f'alflow: warning: budget.deadline "{just_passed}" is 23 h '), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------ Prefect start-up (issue 16 item 10)
def test_ephemeral_api_that_does_not_start_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    from flows.cli.prechecks import STARTUP_SETTING

    cfg = write_toml(tmp_path / "c.toml", counting_config(tmp_path))
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect-home"), **{STARTUP_SETTING: "1"})
    env.pop("PREFECT_API_URL", None)
    r = alflow("run", str(cfg), env=env)
    assert r.returncode == 1, (r.stdout, r.stderr)  # not a user mistake, but no traceback
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("alflow: error: Prefect's ephemeral API did not start (2 attempts of 1 s: ")
    assert f"raise {STARTUP_SETTING} (now 1)" in lines[0]
    assert not (tmp_path / "store.h5").exists()


def test_ephemeral_start_up_timeout_default_survives_a_loaded_machine() -> None:
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings

    from flows.cli.prechecks import DEFAULT_STARTUP_TIMEOUT_S, startup_timeout

    assert PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value() == 20  # Prefect's, too short under load
    assert startup_timeout() == DEFAULT_STARTUP_TIMEOUT_S >= 120
    with temporary_settings({PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 7}):
        assert startup_timeout() == 7  # the user's setting wins, also when shorter


def test_a_slow_health_answer_does_not_fail_the_ephemeral_start(monkeypatch) -> None:
    """Prefect's own wait raises at the first health request that times out, while the server is
    still starting; alflow keeps waiting for the live process (a real server, started here)."""
    import urllib.request

    import httpx
    from prefect.server.api.server import SubprocessASGIServer

    from flows.cli.prechecks import start_ephemeral_api

    real_get = httpx.Client.get
    slow: list[str] = []

    def first_health_check_times_out(self, url, *args, **kwargs):
        if str(url).endswith("/health") and not slow:
            slow.append(str(url))
            raise httpx.ReadTimeout("simulated: the loaded server did not answer within 5 s")
        return real_get(self, url, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "get", first_health_check_times_out)
    try:
        url = start_ephemeral_api(attempts=1)
        assert slow and url == SubprocessASGIServer().api_url and SubprocessASGIServer().running
        with urllib.request.urlopen(f"{url}/health", timeout=10) as r:
            assert r.status == 200
    finally:
        SubprocessASGIServer().stop()


def test_store_in_use_is_refused(tmp_path: Path) -> None:
    from alcore import campaign
    from alcore.config import load_config

    cfg_path = write_toml(tmp_path / "c.toml", counting_config(tmp_path))
    session = campaign.open_campaign(load_config(cfg_path))  # this process now holds the writer lock
    try:
        _assert_user_error(alflow("run", str(cfg_path)), "in use")
        assert json.loads(alflow("status", str(tmp_path / "store.h5"), "--json").stdout)["labelled"] == 0
        stop = alflow("stop", str(tmp_path / "store.h5"))
        assert stop.returncode == 0 and "stop requested" in stop.stdout
    finally:
        session.close()


def test_help_on_every_command() -> None:
    for cmd in ("run", "status", "report", "stop", "validate", "oracles", "export", "serve"):
        r = alflow(cmd, "--help")
        assert r.returncode == 0 and "usage: alflow " + cmd in r.stdout, cmd


def test_oracles_lists_builtins() -> None:
    r = alflow("oracles", "--json")
    assert r.returncode == 0
    names = json.loads(r.stdout)
    for n in ("heat2d", "burgers1d", "table", "california"):
        assert n in names


# ----------------------------------------------------------------------- kill -9 + resume
def test_kill_during_labelling_then_resume(tmp_path: Path, prefect_server) -> None:
    """SIGKILL `alflow run` mid-batch, rerun the same command: same labels as an uninterrupted
    run, no point labelled twice, no more oracle calls than uninterrupted + in flight."""
    from alcore import campaign
    from alcore.config import load_config
    from alcore.store import CampaignStore

    # The oracle as an importable module on PYTHONPATH, so the Dask worker processes load it.
    mods = tmp_path / "mods"
    mods.mkdir()
    write_counting_oracle(mods)
    sections = dict(oracle={"name": "counting_oracle:f", "params": {"sleep": 0.4}},
                    dask={"workers": 2, "retries": 1}, budget={"iterations": 2},
                    acquisition={"batch_size": 6})
    expected_labels = 8 + 2 * 6

    # Uninterrupted reference: the same campaign, steps called directly, in-process oracle.
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    ref_cfg = write_toml(ref_dir / "c.toml", counting_config(
        ref_dir, **{**sections, "dask": {"workers": 0, "retries": 0},
                    "oracle": {"name": "counting_oracle.py:f", "params": {"sleep": 0.0}}}))
    os.environ["ALFLOW_TEST_CALLS"] = str(ref_dir / "calls.log")
    try:
        ref = campaign.run(load_config(ref_cfg))
    finally:
        del os.environ["ALFLOW_TEST_CALLS"]
    ref_calls = sum(calls(ref_dir / "calls.log")[0].values())
    assert ref["labelled"] == expected_labels and ref_calls == expected_labels

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cfg = write_toml(run_dir / "c.toml", counting_config(run_dir, **sections))
    log = run_dir / "calls.log"
    env = prefect_server.env(ALFLOW_TEST_CALLS=str(log),
                             PYTHONPATH=os.pathsep.join([str(mods), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([ALFLOW, "run", str(cfg)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        # wait until the first acquisition batch (after the 8 initial points) is being labelled
        while time.monotonic() < deadline:
            starts, _ = calls(log)
            if sum(starts.values()) >= 8 + 3:
                break
            if proc.poll() is not None:
                pytest.fail(f"alflow run ended before the kill: {proc.stdout.read().decode()[-2000:]}")
            time.sleep(0.05)
        else:
            pytest.fail("labelling of the first batch never started")
        os.kill(proc.pid, signal.SIGKILL)  # kill -9 of `alflow run`
        proc.wait(timeout=30)
    finally:
        time.sleep(1.0)
        try:  # then its orphans (Dask nannies/workers) so they cannot write after the resume
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    starts_at_kill, ends_at_kill = calls(log)
    with CampaignStore.open(run_dir / "store.h5", "r") as st:  # readable after the kill
        labelled_at_kill = {tuple(x) for x in np.asarray(st.pool_X)[st.labelled_indices()]}
        assert len(labelled_at_kill) < expected_labels
    key = lambda x: " ".join(repr(float(v)) for v in x)  # noqa: E731 - matches the call log
    in_flight = {p for p in starts_at_kill if p not in {key(x) for x in labelled_at_kill}}

    r = subprocess.run([ALFLOW, "run", str(cfg)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming at iteration 1" in r.stdout

    starts, ends = calls(log)
    with CampaignStore.open(run_dir / "store.h5", "r") as st:
        assert st.n_labelled == expected_labels == ref["labelled"]
        assert st.duplicates_ignored == 0
        assert len(st.requested_indices()) == 0 and len(st.failed_indices()) == 0
        labelled = [key(x) for x in np.asarray(st.pool_X)[st.labelled_indices()]]
    print(json.dumps({"kill_resume": {
        "labels": len(labelled), "uninterrupted_labels": ref["labelled"],
        "labelled_before_kill": len(labelled_at_kill), "in_flight_at_kill": len(in_flight),
        "oracle_calls": sum(starts.values()), "uninterrupted_calls": ref_calls,
        "points_called_twice": sum(1 for n in starts.values() if n > 1)}}))
    assert set(starts) == set(labelled)  # every evaluated point ended up labelled
    twice = {p for p, n in starts.items() if n > 1}
    assert twice <= in_flight, "a point labelled before the kill was evaluated again"
    assert max(starts.values()) <= 2
    assert sum(starts.values()) <= ref_calls + len(in_flight)
