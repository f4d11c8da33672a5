"""`fit_surrogate`: the ONE function that trains the campaign's surrogate (and the study's).

The campaign's ``train`` step and ``benchmarks/study`` both call it, so the study measures
what a user gets.  One call:

1. **decides whether to (re-)tune**: on the first fit with at least ``2 * folds`` labels (no
   ``previous_choice``, or one never cross-validated: ``n_selected`` None), and whenever the
   labelled set has grown by ``retune_factor`` since the last tuning (default 2: n0, 2 n0, 4 n0,
   ...).  ``select="fixed"`` keeps the configured model (as configured *now*: training knobs
   changed on a resume apply), but still cross-validates it on that schedule to fit the
   calibration;
2. **tunes** (:func:`alcore.model.selection.select_model`): K-fold CV over the search space
   within ``tuning_budget_s``; the winner's out-of-fold residuals and raw MC std are kept;
3. **fits the chosen model on all labels**, warm-started from ``previous_state`` when that has
   the same architecture (fewer steps when warm), else from scratch;
4. **calibrates** its std (:mod:`alcore.model.calibration`) on the out-of-fold residuals of this
   tuning; between tunings on the residuals of the rows labelled since the previous fit
   (``new_rows``) under the *previous* model — held-out data that every iteration brings for
   free, and the errors shrink as labels grow, so a calibration carried unchanged for a doubling
   of the data turned over-wide (measured: 90% intervals covering 97-99%); without ``new_rows``
   (or with fewer than ``MIN_CALIBRATION_ROWS``) the previous calibration is carried forward.
   The calibration travels in the model state (``calib_std_scale``, ``calib_std_floor``,
   ``calib_dof``: the Student-t tails of :mod:`alcore.predictive`, chosen with the scale).
   With ``target_X`` (the pool: the inputs the surrogate is for) the held-out residuals are
   weighted by how many target points each row stands for (:mod:`alcore.model.shift_weights`):
   an active-learning campaign's labels sit in the hard regions, and unweighted residuals from
   there made the intervals too wide on the pool.

Everything a store should keep about it is in `SurrogateFit.info()` (JSON-able): the choice,
the CV scores when it re-tuned, the calibration and its held-out diagnostics, timings.  The
next call needs only the model state and ``SurrogateFit.choice`` (``previous_choice``).

How the campaign's train step calls it (``alcore.campaign.training.fit_for_iteration``; the study
runner, ``benchmarks/study/runner.py``, does the same)::

    settings = SurrogateSettings.from_config(cfg.model)     # select, tuning_budget_s, warm_start, device
    fit = fit_surrogate(X_labelled, y_labelled, settings,
                        previous_state=last_checkpoint_state_or_None,      # also when warm_start is off:
                        previous_choice=last_info.get("model_choice"),     # it carries the calibration
                        seed=model_seed_of_this_iteration,                 # (read back from the store)
                        new_rows=positions_in_X_of_labels_added_since_that_checkpoint,
                        target_X=pool_X,                                   # calibrate for the pool
                        progress=hooks.train_epoch)                        # the epoch bar
    store.save_checkpoint(iteration, fit.model.get_state() | {"campaign_fit_info": json(fit.info())})
    # the checkpoint step: record_iteration(..., info={"surrogate": fit.info()}) (read from the checkpoint,
    # so a run killed between train and checkpoint still records it)

and the evaluate step scores ``fit.model.predict_with_std(X_test, T, seed)`` with
:func:`alcore.metrics.regression_metrics` (``nll``, ``coverage90``, ``nll_at_rmse`` per output).
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from alcore.model.calibration import fit_std_calibration
from alcore.model.dropout_mlp import DropoutMLP, FitReport, as_2d
from alcore.model.network import ProgressFn
from alcore.model.selection import DEFAULT_SEARCH_SPACE, FULL_CV_MAX_N, Candidate, select_model
from alcore.model.shift_weights import cell_weights
from alcore.model.state import architecture_of, calibration_dof_of

__all__ = ["SurrogateSettings", "SurrogateFit", "fit_surrogate", "needs_tuning"]

#: fewest held-out rows for a refresh of the calibration between tunings
MIN_CALIBRATION_ROWS = 20


@dataclass(frozen=True)
class SurrogateSettings:
    """How `fit_surrogate` works (the campaign builds it from ``[model]``; see `from_config`).

    ``model``: DropoutMLP keyword arguments — the pinned model for ``select="fixed"``, the base
    that every candidate overrides for ``"auto"``.
    """

    select: Literal["auto", "fixed"] = "auto"
    model: Mapping[str, Any] = field(default_factory=dict)
    search_space: Sequence[Candidate] = DEFAULT_SEARCH_SPACE
    folds: int = 5
    full_cv_max_n: int = FULL_CV_MAX_N       # above it a tuning trains one hold-out fold
    tuning_budget_s: float = 300.0
    retune_factor: float = 2.0
    warm_start: bool = True
    calibrate: bool = True
    calibration_T: int = 50
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.select not in ("auto", "fixed"):
            raise ValueError(f"select must be 'auto' or 'fixed'; got {self.select!r}")
        if not (isinstance(self.folds, int) and self.folds >= 2):
            raise ValueError(f"folds must be an integer >= 2; got {self.folds!r}")
        if not (isinstance(self.full_cv_max_n, int) and self.full_cv_max_n >= 0):
            raise ValueError(f"full_cv_max_n must be an integer >= 0; got {self.full_cv_max_n!r}")
        if not (self.tuning_budget_s > 0):
            raise ValueError(f"tuning_budget_s must be > 0; got {self.tuning_budget_s!r}")
        if not (self.retune_factor > 1):
            raise ValueError(f"retune_factor must be > 1; got {self.retune_factor!r}")

    @classmethod
    def from_config(cls, model_section: Any, **overrides: Any) -> SurrogateSettings:
        """From an ``alcore.config.ModelSection``: its DropoutMLP keys, ``select``, ``tuning_budget_s``."""
        kw = model_section.model_kwargs(seed=0)
        kw.pop("seed", None)
        device = kw.pop("device", "cpu")
        return cls(select=model_section.select, model=kw, tuning_budget_s=float(model_section.tuning_budget_s),
                   warm_start=bool(model_section.warm_start), device=device, **overrides)


@dataclass
class SurrogateFit:
    """What `fit_surrogate` returns; `info()` is the JSON-able record for the store."""

    model: DropoutMLP
    choice: dict[str, Any]              # {"name", "params" (DropoutMLP hyperparameters), "n_selected"
                                        #  (labels at the last CV; None: never), "select"}
    cv: dict[str, Any] | None           # selection record when it re-tuned now, else None
    calibration: dict[str, Any]         # {"std_scale", "std_floor", "source", ...diagnostics}
    retuned: bool
    warm_start: bool
    report: FitReport
    seconds: dict[str, float]

    def info(self) -> dict[str, Any]:
        """JSON-able summary for the store's iteration ``info`` (everything but the weights)."""
        return {"model_choice": self.choice, "retuned": self.retuned, "warm_start": self.warm_start,
                "cv": self.cv, "calibration": self.calibration,
                "fit": {"steps": self.report.steps, "epochs": self.report.epochs_run,
                        "final_train_loss": self.report.final_train_loss, "threads": self.report.threads},
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}


def needs_tuning(n: int, settings: SurrogateSettings, previous_choice: Mapping[str, Any] | None) -> bool:
    """True on the first fit and once ``n >= retune_factor * n_selected`` of the last tuning."""
    if previous_choice is None or previous_choice.get("n_selected") is None:
        return True
    return n >= settings.retune_factor * int(previous_choice["n_selected"])


def _same_architecture(state: Mapping[str, np.ndarray], model: DropoutMLP, d: int, k: int) -> bool:
    try:
        arch = architecture_of(state)
    except ValueError:
        return False
    return (arch.hidden == model.hidden and arch.activation == model.activation
            and arch.n_members == model.n_members and arch.input_dim == d and arch.output_dim == k
            and arch.per_output == model.splits_outputs(k)
            and np.allclose(arch.dropout_layers, model.dropout_rates))


def _carried_calibration(state: Mapping[str, np.ndarray] | None, k: int) -> dict[str, Any]:
    if state is not None and "calib_std_scale" in state:
        dof = calibration_dof_of(state)
        return {"std_scale": [float(v) for v in np.broadcast_to(state["calib_std_scale"], (k,))],
                "std_floor": [float(v) for v in np.broadcast_to(state.get("calib_std_floor", 0.0), (k,))],
                "dof": None if math.isinf(dof) else dof, "source": "previous"}
    return {"std_scale": [1.0] * k, "std_floor": [0.0] * k, "dof": None, "source": "none"}


def _weights(X: np.ndarray, target_X: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    """Density-ratio weights of the held-out ``rows`` of X towards ``target_X`` (None: unweighted)."""
    return None if target_X is None else cell_weights(X, as_2d("target_X", target_X), rows)


def fit_surrogate(X: np.ndarray, y: np.ndarray, settings: SurrogateSettings, *,
                  previous_state: Mapping[str, np.ndarray] | None = None,
                  previous_choice: Mapping[str, Any] | None = None, seed: int = 0,
                  new_rows: Sequence[int] | np.ndarray | None = None,
                  target_X: np.ndarray | None = None,
                  progress: ProgressFn | None = None) -> SurrogateFit:
    """Train the surrogate on all labels (X (n, d), y (n, k)); see the module docstring.

    ``previous_state``: the last model's `get_state()` (warm start, calibration);
    ``previous_choice``: the last `SurrogateFit.choice` (what was chosen, at how many labels);
    ``seed``: the model seed of this fit (the campaign's ``seed * 1000 + iteration``);
    ``new_rows``: positions in X of the rows labelled since ``previous_state`` was fitted;
    ``target_X``: (P, d) inputs the surrogate is for (the pool); weights the calibration's
    held-out residuals by the density ratio to them (None: unweighted);
    ``progress``: `DropoutMLP.fit`'s epoch callback, for the final fit on all labels (the CV
    fits of a tuning train all folds at once and report nothing).
    """
    t0 = time.perf_counter()
    X = as_2d("X", X)
    y = as_2d("y", y)
    n, d = X.shape
    k = y.shape[1]
    retune = needs_tuning(n, settings, previous_choice) and (
        settings.select == "auto" or settings.calibrate) and n >= 2 * settings.folds
    cv = None
    calibration: dict[str, Any]
    if retune:
        space = settings.search_space if settings.select == "auto" else (Candidate("fixed", {}),)
        sel = select_model(X, y, settings.model, space, folds=settings.folds, budget_s=settings.tuning_budget_s,
                           seed=seed, T=settings.calibration_T, device=settings.device,
                           full_cv_max_n=settings.full_cv_max_n)
        cv = sel.to_json()
        params = sel.chosen_params
        choice = {"name": sel.chosen.name, "params": params, "n_selected": int(n), "select": settings.select}
        calibration = ({**fit_std_calibration(sel.oof.pred - y[sel.oof.rows], sel.oof.mc_std,
                                              _weights(X, target_X, sel.oof.rows)),
                        "source": "cv", "weighted": target_X is not None}
                       if settings.calibrate else _carried_calibration(None, k))
    else:
        if settings.select == "auto" and previous_choice is not None and "params" in previous_choice:
            choice = dict(previous_choice)
        else:
            # "fixed": the pinned model as configured now (a resume may change its training
            # knobs); "auto" before its first tuning (too few labels to cross-validate): the base.
            # ``n_selected`` None = never cross-validated, so the next fit with enough labels does.
            probe = DropoutMLP(**{**settings.model, "device": settings.device})
            n_sel = (previous_choice or {}).get("n_selected")
            choice = {"name": "fixed" if settings.select == "fixed" else "default",
                      "params": probe.hyperparameters(), "n_selected": n_sel, "select": settings.select}
        params = dict(choice["params"])
        calibration = _carried_calibration(previous_state, k)
        rows = np.asarray([] if new_rows is None else new_rows, dtype=np.int64)
        if settings.calibrate and previous_state is not None and rows.size >= MIN_CALIBRATION_ROWS:
            prev = DropoutMLP.from_state(previous_state, device=settings.device)
            raw = prev.sample(X[rows], settings.calibration_T, seed=seed).std(axis=1)
            calibration = {**fit_std_calibration(prev.predict(X[rows]) - y[rows], raw, _weights(X, target_X, rows)),
                           "source": "new_rows", "weighted": target_X is not None}
    t_sel = time.perf_counter() - t0
    model = DropoutMLP(**{**params, "seed": int(seed), "device": settings.device})
    warm = (settings.warm_start and previous_state is not None
            and _same_architecture(previous_state, model, d, k))
    if warm:
        model.load_state(previous_state)
    report = model.fit(X, y, warm_start=warm, progress=progress)
    if calibration["source"] != "none":
        model.set_calibration(calibration["std_scale"], calibration["std_floor"], calibration.get("dof"))
    total = time.perf_counter() - t0
    return SurrogateFit(model=model, choice=choice, cv=cv, calibration=calibration, retuned=retune,
                        warm_start=warm, report=report,
                        seconds={"select": t_sel, "fit": report.train_time_s, "total": total})
