"""The train step's model work: `fit_surrogate` fed from the store, and its record kept with the model.

Why a module of its own: ``steps.train`` stays a short step (reuse, save, remember), and every
input of the fit is read from the store here, so a resumed run decides exactly what an
uninterrupted one would have:

* the previous model (warm start, carried calibration): the newest checkpoint;
* the previous choice (which candidate, at how many labels it was last cross-validated): the
  ``info["surrogate"]["model_choice"]`` recorded with that checkpoint's iteration — never a
  value held in memory;
* ``new_rows``: the labelled points selected after that checkpoint's iteration (held-out data
  for refreshing the calibration between tunings).

Where the fit's record lives: the iteration record is written by the ``checkpoint`` step, after
``evaluate``; a run killed between ``train`` and ``checkpoint`` reuses the saved model and does
not fit again. So ``SurrogateFit.info()`` is saved *inside* the checkpoint (key
:data:`FIT_INFO_KEY`, a JSON string; model loaders ignore unknown keys) and the ``checkpoint``
step copies it into the iteration's ``info["surrogate"]`` (:func:`saved_fit_info`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from alcore.campaign.hooks import get_hooks, say
from alcore.campaign.records import iteration_records

if TYPE_CHECKING:
    from alcore.campaign.session import CampaignSession
    from alcore.model.fit import SurrogateFit
    from alcore.store import CampaignStore

__all__ = ["FIT_INFO_KEY", "fit_for_iteration", "saved_fit_info", "previous_choice", "rows_added_since"]

#: checkpoint key holding ``SurrogateFit.info()`` as JSON (read back by the checkpoint step)
FIT_INFO_KEY = "campaign_fit_info"


def saved_fit_info(store: CampaignStore, iteration: int) -> dict[str, Any]:
    """The fit record saved with ``iteration``'s checkpoint; ``{}`` when there is none (older stores)."""
    if iteration not in store.checkpoint_iterations():
        return {}
    raw = store.load_checkpoint(iteration).get(FIT_INFO_KEY)
    if raw is None:
        return {}
    try:
        out = json.loads(str(np.asarray(raw)[()]))
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


def previous_choice(store: CampaignStore, iteration: int) -> dict[str, Any] | None:
    """The model choice recorded for ``iteration`` (its iteration info, else its checkpoint)."""
    info = (iteration_records(store).get(iteration, {}).get("info") or {}).get("surrogate")
    if not isinstance(info, dict):
        info = saved_fit_info(store, iteration)
    choice = info.get("model_choice")
    return dict(choice) if isinstance(choice, dict) else None


def rows_added_since(store: CampaignStore, labelled: np.ndarray, iteration: int) -> np.ndarray:
    """Positions in ``labelled`` (sorted pool indices) of points selected after ``iteration``.

    Iteration ``i`` labels its own batch before it trains, so the model of ``iteration`` saw
    every point selected up to it; the later ones are new to it.
    """
    later = {p for i, rec in iteration_records(store).items() if i > iteration for p in rec["selected"]}
    return np.flatnonzero(np.isin(labelled, np.fromiter(later, dtype=np.int64, count=len(later))))


def fit_for_iteration(session: CampaignSession, iteration: int, labelled: np.ndarray) -> SurrogateFit:
    """Fit iteration ``iteration``'s surrogate on the ``labelled`` pool points (see the module doc)."""
    from alcore.model.fit import SurrogateSettings, fit_surrogate  # noqa: PLC0415

    store, cfg = session.store, session.config
    ckpts = [c for c in store.checkpoint_iterations() if c < iteration]
    prev_it = ckpts[-1] if ckpts else None
    prev_state = session.model_for(prev_it).get_state() if prev_it is not None else None
    choice = previous_choice(store, prev_it) if prev_it is not None else None
    new_rows = rows_added_since(store, labelled, prev_it) if prev_it is not None else None
    settings = SurrogateSettings.from_config(cfg.model)
    pool_X = np.asarray(store.pool_X)
    fit = fit_surrogate(pool_X[labelled], np.asarray(store.outputs)[labelled], settings,
                        previous_state=prev_state, previous_choice=choice,
                        seed=session.seeds.model_seed(iteration), new_rows=new_rows,
                        target_X=pool_X, progress=get_hooks().train_epoch)
    if fit.retuned and fit.cv is not None and settings.select == "auto":
        say(f"iteration {iteration}: {tuning_line(fit.cv, fit.choice)}")
    return fit


def tuning_line(cv: dict[str, Any], choice: dict[str, Any]) -> str:
    """One line about a tuning: the winner and every candidate's CV score."""
    from alcore.surrogate.selection_record import candidates_text  # noqa: PLC0415

    return (f"model {choice.get('name')} chosen by {cv.get('folds')}-fold CV on {choice.get('n_selected')} "
            f"labels in {float(cv.get('seconds') or 0):.1f}s (CV nRMSE: {candidates_text(cv)})")
