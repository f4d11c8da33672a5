"""What Prefect prints on the terminal while a campaign runs: warnings, but no user-error tracebacks.

Why: a mistake the user can fix (a missing file, a store in use, every evaluation failing)
ends the run with one line from the CLI (exit code 2). Prefect logs the same exception first, with
its traceback, once per task run and once for the flow run: 70-90 lines above the one that
matters. The console handler drops those records; the API handler still sends them, so the
Prefect UI shows the full story. ``alflow run -v`` shows everything.
"""

from __future__ import annotations

import logging
import os

__all__ = ["quiet_prefect", "hide_user_error_tracebacks"]


def quiet_prefect(verbose: bool) -> None:
    """Keep Prefect's console to warnings unless --verbose; logs still reach the API/UI.

    Must run before Prefect is imported (it reads these settings at import).
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # offline-friendly
    if verbose:
        return
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL", "WARNING")
    for name in ("distributed", "tornado"):
        logging.getLogger(name).setLevel(logging.ERROR)


class _UserErrorFilter(logging.Filter):
    """Drops log records about an exception of one of ``names`` (user-error classes)."""

    def __init__(self, names: frozenset[str]) -> None:
        super().__init__("alflow-user-errors")
        self.names = names

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            return type(record.exc_info[1]).__name__ not in self.names
        message = record.getMessage()
        return not any(f"{name}(" in message or f"{name}:" in message for name in self.names)


def _all_subclasses(types: tuple[type[BaseException], ...]) -> frozenset[str]:
    out: set[str] = set()
    todo = list(types)
    while todo:
        t = todo.pop()
        if t.__name__ not in out:
            out.add(t.__name__)
            todo.extend(t.__subclasses__())
    return frozenset(out)


def hide_user_error_tracebacks() -> None:
    """Attach the user-error filter to Prefect's console handlers (after Prefect is imported)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    from flows.cli.errors import user_error_types

    filt = _UserErrorFilter(_all_subclasses(user_error_types()))
    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not any(
                isinstance(f, _UserErrorFilter) for f in handler.filters):
            handler.addFilter(filt)
