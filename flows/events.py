"""Prefect events a campaign emits, so that automations can watch it (``alflow notify``).

Why events and not only the flow run's states: "no new label for N minutes" is the *absence*
of something, which a Prefect automation detects with a proactive trigger on events. A run
that hangs (a simulator stuck, a worker lost without an error) keeps its flow run Running, so
the state triggers alone would say nothing all night.

Every event has the campaign as its resource (``alflow.campaign.<slug>``, named after the
campaign), so one automation per campaign can match it:

* ``alflow.campaign.started`` when the flow starts;
* ``alflow.campaign.label`` when labels arrive (at most one event per
  :data:`LABEL_EVENT_INTERVAL_S`, payload: labels stored since the previous event);
* ``alflow.campaign.finished`` when the flow ends (payload: state text, labels, failures).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from alcore.campaign import Hooks
from flows.artifacts import artifact_key

__all__ = ["STARTED", "LABEL", "FINISHED", "LABEL_EVENT_INTERVAL_S", "campaign_resource_id",
           "emit", "EventHooks"]

STARTED = "alflow.campaign.started"
LABEL = "alflow.campaign.label"
FINISHED = "alflow.campaign.finished"
#: Labels arriving faster than this share one event (a large batch is not thousands of events).
LABEL_EVENT_INTERVAL_S = 10.0

log = logging.getLogger("alflow.events")


def campaign_resource_id(name: str) -> str:
    """``alflow.campaign.<slug>``: the resource every event of campaign ``name`` is about."""
    return "alflow.campaign." + artifact_key(name, "x")[: -len("-x")]


def emit(event: str, name: str, payload: dict[str, Any] | None = None) -> None:
    """Emit one event about campaign ``name``; never raises (monitoring must not stop a run)."""
    try:
        from prefect.events import emit_event

        emit_event(event=event, resource={"prefect.resource.id": campaign_resource_id(name),
                                          "prefect.resource.name": name},
                   payload=payload or {})
    except Exception as exc:  # noqa: BLE001
        log.debug("could not emit %s: %s", event, exc)


class EventHooks(Hooks):
    """Progress hooks that forward to ``inner`` (the terminal's) and emit label events."""

    def __init__(self, inner: Hooks, name: str, interval: float = LABEL_EVENT_INTERVAL_S):
        self.inner, self.name, self.interval = inner, name, interval
        self._last = -float("inf")
        self._ok = self._failed = 0

    def label_result(self, ok: bool) -> None:
        self.inner.label_result(ok)
        if ok:
            self._ok += 1
        else:
            self._failed += 1
        now = time.monotonic()
        if ok and now - self._last >= self.interval:
            emit(LABEL, self.name, {"labelled": self._ok, "failed": self._failed})
            self._last, self._ok, self._failed = now, 0, 0

    # Everything else goes to the terminal unchanged.
    def phase(self, name: str, iteration: int, total: int | None = None) -> None:
        self.inner.phase(name, iteration, total)

    def train_epoch(self, epoch: int, n_epochs: int, train_loss: float, val_loss: float | None) -> None:
        self.inner.train_epoch(epoch, n_epochs, train_loss, val_loss)

    def phase_done(self, name: str, iteration: int, summary: dict[str, Any]) -> None:
        self.inner.phase_done(name, iteration, summary)

    def iteration_done(self, record: dict[str, Any]) -> None:
        self.inner.iteration_done(record)

    def message(self, text: str) -> None:
        self.inner.message(text)
