"""The campaign steps as plain functions on a store path (no Prefect here).

Every step reads what it needs from the campaign store and writes what it made back, so the
store is the only state that matters: a process killed at any moment resumes from it. The flow
(``flows/``) wraps each step in a Prefect task; benchmarks and tests call them directly. Tasks
pass the store path and small JSON summaries, never arrays.

One iteration ``i`` is::

    select(i) -> label(i) -> train(i) -> evaluate(i) -> checkpoint(i)

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

Within one process the open store, the oracle, the Dask dispatcher and the current model are
kept in a small per-store-path runtime cache (:func:`open_campaign` / :func:`close`), so the
steps cost no re-opening and the Dask cluster stays alive across iterations.

Modules (each one job; the names below are re-exported here, import them from
``alcore.campaign``):

* :mod:`~alcore.campaign.errors` — ``CampaignSetupError``;
* :mod:`~alcore.campaign.hooks` — progress hooks for a front end;
* :mod:`~alcore.campaign.runtime` — the per-store runtime cache, oracle, dispatcher, ``close``;
* :mod:`~alcore.campaign.pool` — the pool and test set of a new campaign;
* :mod:`~alcore.campaign.opening` — ``open_campaign`` (create or resume), ``MUTABLE_KEYS``;
* :mod:`~alcore.campaign.records` — ``plan`` (where the campaign stands) and ``checkpoint``;
* :mod:`~alcore.campaign.selection`, :mod:`~alcore.campaign.labelling`,
  :mod:`~alcore.campaign.training`, :mod:`~alcore.campaign.evaluation` — the other steps;
* :mod:`~alcore.campaign.stopping` — ``should_stop``, ``request_stop``;
* :mod:`~alcore.campaign.loop` — ``Steps``, ``drive``, ``run``;
* :mod:`~alcore.campaign.summary` — ``history``, ``status``.
"""

from __future__ import annotations

from alcore.campaign.errors import CampaignSetupError
from alcore.campaign.evaluation import evaluate
from alcore.campaign.hooks import Hooks, get_hooks, set_hooks
from alcore.campaign.labelling import label
from alcore.campaign.loop import Steps, drive, run
from alcore.campaign.opening import MUTABLE_KEYS, initialise, open_campaign
from alcore.campaign.records import checkpoint, plan
from alcore.campaign.runtime import _get_dispatcher, _get_oracle, _rt, close, resolve_oracle
from alcore.campaign.selection import select
from alcore.campaign.stopping import request_stop, should_stop
from alcore.campaign.summary import history, status
from alcore.campaign.training import train

__all__ = [
    "CampaignSetupError",
    "Hooks",
    "Steps",
    "open_campaign",
    "initialise",
    "plan",
    "select",
    "label",
    "train",
    "evaluate",
    "checkpoint",
    "should_stop",
    "request_stop",
    "close",
    "run",
    "drive",
    "status",
    "history",
    "MUTABLE_KEYS",
]

# Not in __all__ but imported by name elsewhere (the CLI, tests that reach into the runtime).
_reexported = (set_hooks, get_hooks, resolve_oracle, _rt, _get_oracle, _get_dispatcher)
