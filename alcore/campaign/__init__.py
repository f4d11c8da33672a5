"""The campaign: an explicit session opened from the store, and steps that are functions of it.

No Prefect here. :func:`open_campaign` returns a :class:`CampaignSession` (the writable store,
the config and seeds *read from the store*, the oracle, the Dask dispatcher, the newest model,
the stop event); the steps take it as their first argument and write what they make back to
the store, so the store is the only state that matters: a process killed at any moment
resumes from it. The flow (``flows/``) wraps each step in a Prefect task; benchmarks and tests
call them directly. ::

    with open_campaign(load_config("campaign.toml")) as session:
        drive(session)                      # or: select(session, 0); label(session, 0); ...

One iteration ``i`` is ``select(i) → label(i) → train(i) → evaluate(i) → checkpoint(i)``.
Iteration 0's selection is the random initial design; iteration ``i >= 1`` selects a batch with
the model of iteration ``i - 1``. So iteration ``i``'s record in the store holds the batch it
chose, and the metrics of the model trained on every label up to and including that batch: one
point of the learning curve per iteration. ``budget.iterations = N`` gives ``N`` acquisition
batches after the initial design (iterations 0..N).

Resume rules (what the store allows us to know after a ``kill -9``):

* an iteration is *finished* once ``checkpoint`` recorded its metrics; finished iterations are
  never redone;
* an unfinished iteration that already selected its batch does not select again: its
  requested-but-unlabelled points are sent again (labelled points never are);
* ``train`` saves the model checkpoint as soon as it is fitted, so a kill between training and
  ``checkpoint`` does not retrain.

Modules, each one job:

* :mod:`~alcore.campaign.session` — ``CampaignSession``, ``open_campaign`` (create or resume);
* :mod:`~alcore.campaign.seeds` — every seed of a campaign, stored once and read back;
* :mod:`~alcore.campaign.pool` — the pool and test set of a new campaign;
* :mod:`~alcore.campaign.steps` — ``select``, ``label``, ``train``, ``evaluate``, ``checkpoint``;
* :mod:`~alcore.campaign.records` — where the campaign stands (``plan``);
* :mod:`~alcore.campaign.stopping` — ``should_stop``;
* :mod:`~alcore.campaign.loop` — ``Steps``, ``drive``, ``run``;
* :mod:`~alcore.campaign.summary` — ``history``, ``status`` (read-only);
* :mod:`~alcore.campaign.hooks` — progress hooks for a front end;
* :mod:`~alcore.campaign.errors` — ``CampaignSetupError``.
"""

from __future__ import annotations

from alcore.campaign.errors import CampaignSetupError
from alcore.campaign.hooks import Hooks, get_hooks, set_hooks
from alcore.campaign.loop import Steps, drive, run
from alcore.campaign.records import Plan, plan
from alcore.campaign.seeds import Seeds, seeds
from alcore.campaign.session import CampaignSession, open_campaign
from alcore.campaign.steps import checkpoint, evaluate, label, select, train
from alcore.campaign.stopping import should_stop
from alcore.campaign.summary import history, status

__all__ = [
    "CampaignSetupError",
    "CampaignSession",
    "Hooks",
    "Plan",
    "Seeds",
    "Steps",
    "checkpoint",
    "drive",
    "evaluate",
    "get_hooks",
    "history",
    "label",
    "open_campaign",
    "plan",
    "run",
    "seeds",
    "select",
    "set_hooks",
    "should_stop",
    "status",
    "train",
]
