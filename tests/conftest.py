"""Test isolation for everything that touches Prefect.

Why at import time: Prefect reads its settings (home folder, API URL) when it is first
imported, so the environment must be hermetic before any test module imports it. Every test
session gets its own PREFECT_HOME (no sharing of ~/.prefect/prefect.db with other processes,
which otherwise fails with "database is locked"), no telemetry, and no inherited API URL.

``prefect_server`` starts ONE real ``prefect server start`` on 127.0.0.1 per session (the only
kind with a scheduler and the one a deployment needs); flow tests in this process and
``alflow`` subprocesses both talk to it, which saves the ~10 s ephemeral-server start per run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="alflow-test-prefect-"))
os.environ["PREFECT_HOME"] = str(_SESSION_HOME)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_API_KEY", None)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"prefect server at {url} not healthy after {timeout:.0f}s")


class PrefectServer:
    """A real Prefect server subprocess with its own PREFECT_HOME (SQLite)."""

    def __init__(self, home: Path):
        self.home = home
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.log = home / "server.log"
        self.proc: subprocess.Popen | None = None

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(PREFECT_HOME=str(self.home), PREFECT_API_URL=self.api_url, **extra)
        return env

    def start(self) -> "PrefectServer":
        prefect = VENV_BIN / "prefect"
        cmd = [str(prefect) if prefect.exists() else "prefect", "server", "start",
               "--host", "127.0.0.1", "--port", str(self.port)]
        env = dict(os.environ, PREFECT_HOME=str(self.home), PREFECT_UI_ENABLED="false")
        env.pop("PREFECT_API_URL", None)
        self.proc = subprocess.Popen(cmd, env=env, stdout=open(self.log, "wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_healthy(self.api_url, self.proc)
        except Exception:
            self.stop()
            raise RuntimeError(f"{self.log}: {self.log.read_text()[-2000:]}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            import signal

            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.proc = None


@pytest.fixture()
def calls_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the counting oracle (tests/campaign_helpers.py) logs every call of this test."""
    p = tmp_path / "calls.log"
    monkeypatch.setenv("ALFLOW_TEST_CALLS", str(p))
    return p


@pytest.fixture(scope="session")
def prefect_server():
    """One real Prefect server for the session; yields a :class:`PrefectServer`."""
    home = Path(tempfile.mkdtemp(prefix="alflow-test-server-"))
    server = PrefectServer(home).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture()
def prefect_api(prefect_server):
    """Point Prefect in this process at the session server (flows run through it)."""
    import inspect

    import prefect.context
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.utilities.asyncutils import run_coro_as_sync

    with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
        with prefect.context._temporary_global_settings_context(prefect.context.get_settings_context()):
            yield prefect_server

            # Drain queued logs and events while the server is still up: otherwise they are
            # flushed at exit with no API URL, which starts an ephemeral server (slow, noisy).
            async def drain() -> None:
                try:
                    r = APILogWorker.instance().drain()
                    if inspect.isawaitable(r):
                        await r
                except RuntimeError:
                    pass
                r = EventsWorker.drain_all()
                if inspect.isawaitable(r):
                    await r

            run_coro_as_sync(drain())


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)
