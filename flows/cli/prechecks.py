"""What ``alflow run`` checks and starts before its flow run, so that failures are one line.

* :func:`resume_changes` / :func:`precheck_store`: an existing store must be an alflow store
  whose campaign this config may resume (:func:`alcore.config.check_resume`), not held by
  another run;
* :func:`precheck_api`: with ``PREFECT_API_URL`` set, the server must answer;
* :func:`start_ephemeral_api`: without it, Prefect's ephemeral API server is started here,
  with a start-up timeout a loaded machine survives and one retry, instead of inside the flow
  call where a timeout surfaced as a 20 s wait and a traceback. It runs in a session of its
  own (:func:`own_session`): a terminal's Ctrl-C, sent to the whole foreground process group,
  killed it under the running flow (the campaign then failed minutes later with a traceback
  instead of stopping cleanly); now only alflow gets it, and stops the server at exit.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flows.cli.errors import UserError

__all__ = ["resume_changes", "precheck_store", "precheck_api", "start_ephemeral_api", "PrefectStartError",
           "STARTUP_SETTING", "DEFAULT_STARTUP_TIMEOUT_S", "STARTUP_ATTEMPTS"]

#: The Prefect 3 setting that bounds the ephemeral server's start-up (Prefect's default: 20 s).
STARTUP_SETTING = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
#: alflow's default when the user did not set it: Prefect's 20 s timed out on a loaded 2-core
#: machine (6 runs of one afternoon); the server needs its imports and database migrations.
DEFAULT_STARTUP_TIMEOUT_S = 120
STARTUP_ATTEMPTS = 2


class PrefectStartError(Exception):
    """Prefect's API could not be started (not a user mistake: exit code 1, one line)."""


def resume_changes(cfg: Any) -> list[str] | None:
    """``None`` for a new campaign; else the mutable keys a resume changes (read-only).

    Raises ``ConfigMismatchError`` (one line, exit 2) when it changes keys that define the campaign.
    """
    from alcore.config import check_resume
    from alcore.store import CampaignStore

    path = cfg.store_path
    if not path.exists():
        return None
    with CampaignStore.open(path, mode="r") as st:
        return check_resume(st.config, cfg.to_dict(), source=str(path))


def precheck_store(cfg: Any) -> None:
    """Fail fast (exit 2, no flow run) on a foreign, mismatched or busy store."""
    from alcore.store import CampaignStore

    if resume_changes(cfg) is not None:
        CampaignStore.open(cfg.store_path, mode="a").close()  # StoreInUseError while another run holds it


def precheck_api() -> None:
    """With PREFECT_API_URL set, the server must answer (else one line, not a traceback)."""
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        return
    problem = _health_problem(url, timeout=10)
    if problem:
        raise UserError(
            f"cannot reach the Prefect API at {url} (PREFECT_API_URL): {problem}; start "
            "`prefect server start` or unset PREFECT_API_URL to use the ephemeral API"
        )


def _health_problem(api_url: str, timeout: float) -> str | None:
    """``None`` when ``api_url``/health answers 200 within ``timeout`` s, else why not."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(api_url.rstrip("/") + "/health", timeout=timeout) as r:
            return None if r.status == 200 else f"HTTP {r.status}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))


def startup_timeout() -> int:
    """Seconds per start-up attempt: the user's ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``
    (environment or Prefect profile) when set, else :data:`DEFAULT_STARTUP_TIMEOUT_S`."""
    from prefect.settings import get_current_settings

    ephemeral = get_current_settings().server.ephemeral
    if "startup_timeout_seconds" in ephemeral.model_fields_set:
        return int(ephemeral.startup_timeout_seconds)
    return max(DEFAULT_STARTUP_TIMEOUT_S, int(ephemeral.startup_timeout_seconds))


def start_ephemeral_api(attempts: int = STARTUP_ATTEMPTS) -> str | None:
    """Start Prefect's ephemeral API server unless ``PREFECT_API_URL`` names a real one.

    Returns its URL (``None`` with ``PREFECT_API_URL``). The server is Prefect's own
    ``SubprocessASGIServer`` singleton, so the flow run that follows uses it instead of starting
    another. Prefect's own wait gives up at the first health request that is slow to answer
    (an httpx read timeout while the loaded server is still migrating its database), so a
    server process that is still alive is waited for until the attempt's timeout; one that died
    is stopped and started again. After the last attempt, raises :class:`PrefectStartError`
    naming the setting that controls the wait.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value():
        return None
    if not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        raise UserError("PREFECT_API_URL is not set and Prefect's ephemeral mode is off "
                        "(PREFECT_SERVER_ALLOW_EPHEMERAL_MODE): set PREFECT_API_URL to a running "
                        "`prefect server start`, or allow the ephemeral mode")
    from prefect.server.api.server import SubprocessASGIServer

    timeout = startup_timeout()
    reason = ""
    for _ in range(attempts):
        server = SubprocessASGIServer()
        give_up = time.monotonic() + timeout
        try:
            with own_session():
                server.start(timeout=timeout)
            return server.api_url
        except Exception as exc:  # noqa: BLE001 - reported below in one line
            text = str(exc).strip()
            reason = text.splitlines()[0][:200] if text else type(exc).__name__
        process = server.server_process
        if process is not None and process.poll() is None and _healthy_by(server.api_url, give_up):
            server.running = True  # what start() sets on success: get_client() reuses this server
            return server.api_url
        server.stop()  # the next attempt starts a fresh process on a fresh port
    raise PrefectStartError(
        f"Prefect's ephemeral API did not start ({attempts} attempts of {timeout} s: {reason}); "
        f"raise {STARTUP_SETTING} (now {timeout}) on a loaded machine, or run `prefect server start` "
        "and set PREFECT_API_URL"
    )


@contextmanager
def own_session() -> Iterator[None]:
    """Processes that Prefect's server module starts inside the block get a session of their own.

    Prefect starts the server with a plain ``subprocess.Popen`` and no option to detach it;
    the module's ``subprocess`` is swapped for one whose ``Popen`` sets ``start_new_session``.
    """
    import prefect.server.api.server as server_module

    class _Detached:
        def __getattr__(self, name: str) -> Any:
            return getattr(subprocess, name)

        @staticmethod
        def Popen(*args: Any, **kwargs: Any) -> subprocess.Popen:  # noqa: N802 - the name it replaces
            kwargs.setdefault("start_new_session", True)
            return subprocess.Popen(*args, **kwargs)

    real = server_module.subprocess
    server_module.subprocess = _Detached()
    try:
        yield
    finally:
        server_module.subprocess = real


def _healthy_by(api_url: str, give_up: float) -> bool:
    """Poll ``api_url``/health until it answers 200 or ``time.monotonic()`` passes ``give_up``."""
    while time.monotonic() < give_up:
        if _health_problem(api_url, timeout=max(1.0, give_up - time.monotonic())) is None:
            return True
        time.sleep(0.5)
    return False
