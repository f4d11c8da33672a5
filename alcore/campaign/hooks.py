"""Progress hooks: how the steps tell a front end (the CLI's Rich bars) what they are doing.

One process-wide ``Hooks`` object; every step looks it up when it reports (``get_hooks()``),
so ``set_hooks`` takes effect for steps already imported elsewhere. Why process-wide and not
part of the session: the front end (the CLI's terminal) belongs to the process, and the
session is opened inside the Prefect flow, where the CLI cannot reach it.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["Hooks", "set_hooks", "get_hooks", "say"]

log = logging.getLogger("alcore.campaign")


class Hooks:
    """Progress callbacks for a front end (the CLI's Rich bars). Every method is a no-op here.

    Why a plain object rather than Prefect events: the steps must report progress when called
    without Prefect (benchmarks, tests), and the CLI runs the flow in its own process.
    """

    def phase(self, name: str, iteration: int, total: int | None = None) -> None:
        """A step started; ``total`` is the number of work units when known."""

    def train_epoch(self, epoch: int, n_epochs: int, train_loss: float, val_loss: float | None) -> None:
        """One training epoch finished."""

    def label_result(self, ok: bool) -> None:
        """One oracle evaluation came back (stored) or failed."""

    def phase_done(self, name: str, iteration: int, summary: dict[str, Any]) -> None:
        """A step ended with this summary."""

    def iteration_done(self, record: dict[str, Any]) -> None:
        """An iteration was checkpointed (``record``: iteration, metrics, timings, labels)."""

    def message(self, text: str) -> None:
        """A line worth showing to a person (stop reasons, resume notes)."""


_hooks: Hooks = Hooks()


def set_hooks(hooks: Hooks | None) -> Hooks:
    """Install progress hooks for this process; returns the previous ones."""
    global _hooks
    old = _hooks
    _hooks = hooks or Hooks()
    return old


def get_hooks() -> Hooks:
    """The hooks installed for this process (no-op hooks unless a front end set some)."""
    return _hooks


def say(text: str) -> None:
    """Log a line and show it to a person through the hooks."""
    log.info(text)
    _hooks.message(text)
