"""How a worker process ended, reported by its nanny, so that a failure can name the signal.

When an oracle kills its worker (``os._exit(3)``, a segfault), the scheduler only learns that the
worker went away (``KilledWorker`` names the worker and its pid, not why). The exit status is
known to one process: the worker's *nanny*, its parent, which reaps it. :class:`ExitReporter` is
a nanny plugin that, on every worker exit, logs an event ``{"nanny", "pid", "name", "exitcode"}``
under the topic :data:`TOPIC` on the scheduler; the dispatcher subscribes to it and looks up the
dead worker by :func:`exit_key` (its nanny's address and its pid: the worker's own address, as
the nanny knows it, can lag behind a restart).

Dask offers no public hook for a worker's exit, so the plugin wraps the nanny's exit callback
(``Nanny._on_worker_exit_sync``, also held by the running ``WorkerProcess.on_exit``) and always
calls the original; the pid is sampled while the process runs (it is released before the
callback). Where those attributes are missing (another version of ``distributed``), it does
nothing, and failures say the exit status is unknown. Workers started without a nanny have
nobody to report their exit.
"""

from __future__ import annotations

import signal
from typing import Any

from distributed.diagnostics.plugin import NannyPlugin

TOPIC = "alflow-worker-exit"
PID_SAMPLE_MS = 50  # a worker boots for far longer than this before it can run a task


def exit_key(nanny_address: str | None, pid: int | None) -> str:
    """How an exit event and a dead worker are matched."""
    return f"{nanny_address}/{pid}"


def describe_exit(exitcode: int | None) -> str:
    """``"exited with status 3"`` / ``"was killed by signal 11 (SIGSEGV)"``; ``exitcode`` as
    multiprocessing reports it (negative: the signal)."""
    if exitcode is None:
        return "ended with an unknown status (no nanny reported it)"
    if exitcode == 255:  # how multiprocessing reports a signal it could not decode
        return "was killed by an unknown signal (exit status 255)"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "unknown"
        return f"was killed by signal {-exitcode} ({name})"
    return f"exited with status {exitcode}"


class ExitReporter(NannyPlugin):
    """Nanny plugin: log each worker exit (address, name, exit code) as a scheduler event."""

    name = "alflow-exit-reporter"
    idempotent = True

    def setup(self, nanny: Any) -> None:
        from tornado.ioloop import PeriodicCallback  # noqa: PLC0415

        original = getattr(nanny, "_on_worker_exit_sync", None)
        if original is None or getattr(original, "_alflow_wrapped", False):
            return
        seen = {"pid": getattr(nanny, "pid", None)}

        def sample() -> None:
            pid = getattr(nanny, "pid", None)
            if pid:
                seen["pid"] = pid

        def on_exit(exitcode: int) -> None:
            try:
                nanny.log_event(TOPIC, {"nanny": nanny.address, "pid": seen["pid"], "name": nanny.name,
                                        "exitcode": exitcode})
            except Exception:  # noqa: BLE001 - reporting must never break the nanny's restart
                pass
            original(exitcode)

        sampler = PeriodicCallback(sample, PID_SAMPLE_MS)
        nanny.periodic_callbacks[self.name] = sampler  # stopped with the nanny
        sampler.start()

        on_exit._alflow_wrapped = True  # type: ignore[attr-defined]
        on_exit._alflow_original = original  # type: ignore[attr-defined]
        nanny._on_worker_exit_sync = on_exit  # used by the next WorkerProcess (after a restart)
        process = getattr(nanny, "process", None)
        if process is not None and getattr(process, "on_exit", None) is not None:
            process.on_exit = on_exit  # the one running now

    def teardown(self, nanny: Any) -> None:
        sampler = getattr(nanny, "periodic_callbacks", {}).pop(self.name, None)
        if sampler is not None:
            sampler.stop()
        current = getattr(nanny, "_on_worker_exit_sync", None)
        original = getattr(current, "_alflow_original", None)
        if original is None:
            return
        nanny._on_worker_exit_sync = original
        process = getattr(nanny, "process", None)
        if process is not None and getattr(process, "on_exit", None) is current:
            process.on_exit = original
