"""``alflow notify``: Prefect automations that call a webhook when a campaign needs a person.

Two automations per campaign, both calling one ``Webhook`` block (``CallWebhook`` action):

* **run ended**: a reactive trigger on the campaign's flow runs entering Completed, Failed or
  Crashed (Prefect's own ``prefect.flow-run.<State>`` events; the runs are matched by name,
  ``<campaign> it *``, so every nightly run of the campaign is covered, whoever starts it);
* **stalled**: a proactive trigger that fires when no ``alflow.campaign.label`` event (see
  :mod:`flows.events`) arrived for N minutes after one did, unless the campaign ended
  (``alflow.campaign.finished``). This is Prefect's heartbeat pattern: each label event starts
  a new N-minute window.

Creating them again replaces them (same names), so the command is safe to rerun with a new URL
or N. Automations are evaluated by the Prefect *server*: they need ``PREFECT_API_URL`` pointing
at a ``prefect server start`` (the ephemeral API stops with the run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from flows.artifacts import artifact_key
from flows.events import FINISHED, LABEL, campaign_resource_id

__all__ = ["Notification", "build_automations", "install", "FLOW_RUN_END_STATES"]

FLOW_RUN_END_STATES = ("Completed", "Failed", "Crashed")


@dataclass(frozen=True)
class Notification:
    """What ``alflow notify`` sets up for one campaign."""

    campaign: str
    webhook_url: str
    stale_minutes: float = 60.0

    @property
    def slug(self) -> str:
        return artifact_key(self.campaign, "x")[: -len("-x")]

    @property
    def block_name(self) -> str:
        return f"alflow-{self.slug}-webhook"[:100]

    @property
    def names(self) -> tuple[str, str]:
        return (f"alflow {self.slug}: run ended", f"alflow {self.slug}: no new label")


def _payload(kind: str, campaign: str) -> str:
    """The webhook's JSON body, a Jinja template the server fills in (``tojson`` escapes)."""
    import json

    head = json.dumps({"source": "alflow", "campaign": campaign, "kind": kind})[:-1]
    return (head + ', "automation": {{ automation.name | tojson }}'
            ', "event": {{ event.event | tojson }}'
            ', "resource": {{ event.resource.get("prefect.resource.name", "") | tojson }}'
            ', "occurred": {{ event.occurred | string | tojson }}}')


def build_automations(n: Notification, block_document_id: UUID) -> list[Any]:
    """The two :class:`prefect.automations.Automation` objects (not yet created)."""
    from prefect.automations import Automation, CallWebhook, EventTrigger, Posture

    ended = Automation(
        name=n.names[0],
        description=f"alflow notify: a flow run of campaign '{n.campaign}' ended "
                    f"({', '.join(FLOW_RUN_END_STATES)})",
        trigger=EventTrigger(
            expect={f"prefect.flow-run.{s}" for s in FLOW_RUN_END_STATES},
            match={"prefect.resource.id": "prefect.flow-run.*",
                   "prefect.resource.name": f"{n.campaign} it *"},
            posture=Posture.Reactive, threshold=1, within=timedelta(0),
        ),
        actions=[CallWebhook(block_document_id=block_document_id, payload=_payload("run ended", n.campaign))],
    )
    stalled = Automation(
        name=n.names[1],
        description=f"alflow notify: campaign '{n.campaign}' stored no new label for "
                    f"{n.stale_minutes:g} minutes",
        trigger=EventTrigger(
            after={LABEL}, expect={LABEL, FINISHED},
            match={"prefect.resource.id": campaign_resource_id(n.campaign)},
            posture=Posture.Proactive, threshold=1,
            within=timedelta(minutes=n.stale_minutes),
        ),
        actions=[CallWebhook(block_document_id=block_document_id,
                             payload=_payload(f"no new label for {n.stale_minutes:g} minutes", n.campaign))],
    )
    return [ended, stalled]


def install(n: Notification) -> list[UUID]:
    """Save the webhook block and (re)create both automations; returns their ids."""
    from prefect.automations import Automation
    from prefect.blocks.webhook import Webhook

    block_id = Webhook(method="POST", url=n.webhook_url,
                       headers={"Content-Type": "application/json"}).save(n.block_name, overwrite=True)
    for name in n.names:
        while True:  # names are not unique in Prefect: remove every earlier copy
            try:
                old = Automation.read(name=name)
            except ValueError:
                break
            old.delete()
    return [a.create().id for a in build_automations(n, block_id)]
