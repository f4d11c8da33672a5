"""Client-side last resort for evaluations whose worker stops answering.

The in-worker timeout (a watchdog thread in :func:`oracles.evaluation.run_point`) cannot fire
while C code holds the GIL (a hung solver, a runaway regex): then the worker's own event loop is
frozen too and no result ever comes. This thread, in the caller's process, cancels any task with
no result ``2 * timeout + grace`` seconds after it was sent (one task per worker thread is in
flight, so it starts at once) and asks the dispatcher to restart the worker processing it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("oracles.dispatch")


class Watchdog(threading.Thread):
    def __init__(self, client: Any, timeout: float, grace: float,
                 restart: Callable[[str], None], restarting: Callable[[], set[str]]) -> None:
        super().__init__(daemon=True, name="alflow-watchdog")
        self.client, self.restart, self.restarting = client, restart, restarting
        self.limit = 2.0 * timeout + grace
        self.lock = threading.Lock()
        self.deadlines: dict[str, tuple[float, Any]] = {}  # key -> (deadline, future)
        self.fired: dict[str, str] = {}                      # key -> worker address
        self.halt = threading.Event()

    def track(self, fut: Any) -> None:
        with self.lock:
            self.deadlines[fut.key] = (time.monotonic() + self.limit, fut)

    def untrack(self, fut: Any) -> str | None:
        """Stop watching ``fut``; the address of its worker if the watchdog cancelled it."""
        with self.lock:
            self.deadlines.pop(fut.key, None)
            return self.fired.pop(fut.key, None)

    def run(self) -> None:
        while not self.halt.wait(0.5):
            now = time.monotonic()
            with self.lock:
                overdue = {k: f for k, (d, f) in self.deadlines.items() if d < now}
            if not overdue:
                continue
            try:
                processing = self.client.processing()
            except Exception:  # noqa: BLE001 - the scheduler may be busy; try again next round
                continue
            restarting = self.restarting()
            for addr, keys in processing.items():
                hit = [k for k in keys if k in overdue]
                if not hit:
                    continue
                if addr in restarting:
                    # Its worker is going down already: the scheduler will run the task
                    # elsewhere. Give it a fresh deadline rather than charge it an attempt.
                    with self.lock:
                        for k in hit:
                            if k in self.deadlines:
                                self.deadlines[k] = (time.monotonic() + self.limit, overdue[k])
                    continue
                with self.lock:
                    for k in hit:
                        self.deadlines.pop(k, None)
                        self.fired[k] = addr
                self.client.cancel([overdue[k] for k in hit], force=True)
                log.warning("no result from %s for %s after %.0f s: restarting it", addr, hit, self.limit)
                self.restart(addr)
