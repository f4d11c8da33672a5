"""The five steps of an iteration, each a function of the campaign session.

One iteration ``i`` is ``select → label → train → evaluate → checkpoint``:

* :func:`select` chooses the batch (iteration 0: the random initial design; later: the
  acquisition strategy with the model of iteration ``i - 1``) and marks it requested;
* :func:`label` sends every requested-but-unlabelled point to the oracle and stores each
  result the moment it arrives;
* :func:`train` fits the surrogate on every label and saves its checkpoint;
* :func:`evaluate` computes the test metrics (training-set metrics without a test set);
* :func:`checkpoint` records the iteration, which makes it finished, and folds the journal.

Every step is idempotent on the store, so a resumed run may call it again: a batch already
selected is kept, labelled points are never sent again, a checkpoint already saved is reused.
Each step returns a small JSON-safe dict with at least ``iteration`` and ``seconds`` (the
:func:`step` decorator adds them and reports the step to the progress hooks).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import numpy as np

from alcore.campaign.errors import CampaignSetupError
from alcore.campaign.hooks import get_hooks
from alcore.campaign.results import store_result
from alcore.campaign.records import iteration_records, labels_spent, plan
from alcore.campaign.session import CampaignSession
from alcore.failures import headline

__all__ = ["step", "select", "label", "train", "evaluate", "checkpoint"]

log = logging.getLogger("alcore.campaign")

StepFn = TypeVar("StepFn", bound=Callable[..., dict[str, Any]])


def step(name: str, total: Callable[[CampaignSession, int], int] | None = None
         ) -> Callable[[StepFn], StepFn]:
    """Time a step and report it: ``hooks.phase(name, i, total)`` before, ``phase_done`` after.

    The step's result gets ``iteration`` and ``seconds`` (wall time of the whole step).
    ``total(session, i)`` is the number of work units when it is known up front (points to
    label), for a progress bar.
    """

    def decorate(fn: StepFn) -> StepFn:
        @functools.wraps(fn)
        def run_step(session: CampaignSession, iteration: int, *args: Any, **kwargs: Any) -> dict[str, Any]:
            hooks = get_hooks()
            t0 = time.perf_counter()
            hooks.phase(name, iteration, total(session, iteration) if total is not None else None)
            out = fn(session, iteration, *args, **kwargs)
            out["iteration"] = iteration
            out["seconds"] = time.perf_counter() - t0
            hooks.phase_done(name, iteration, out)
            return out

        return run_step  # type: ignore[return-value]

    return decorate


# ------------------------------------------------------------------------------- select
@step("select")
def select(session: CampaignSession, iteration: int) -> dict[str, Any]:
    """Choose iteration ``iteration``'s batch and mark it requested (durably) in the store.

    A batch already selected for this iteration (a resumed run) is kept as it is. The batch
    is cut to the label budget that is left and to the unlabelled points.
    """
    store, cfg = session.store, session.config
    with session.lock:
        record = iteration_records(store).get(iteration, {})
        if record.get("selected"):
            return {"selected": len(record["selected"]), "resumed": True}
        unlabelled = store.unlabelled_indices()
        want = cfg.budget.initial if iteration == 0 else cfg.acquisition.batch_size
        if cfg.budget.max_labels is not None:
            want = min(want, cfg.budget.max_labels - labels_spent(store))
        want = min(want, int(unlabelled.size))
        if want <= 0:
            return {"selected": 0, "resumed": False}
        avoiding: dict[str, Any] = {}
        if iteration == 0:
            strategy = "initial"
            rng = np.random.default_rng(session.seeds.initial)
            picks = rng.choice(unlabelled, size=want, replace=False)
            scores = np.full(want, np.nan)
        else:
            strategy = cfg.acquisition.strategy
            picks, scores, avoiding = _acquire(session, iteration, unlabelled, want)
        store.mark_requested(np.asarray(picks, dtype=np.int64), iteration, scores)
    return {"selected": int(len(picks)), "strategy": strategy, "resumed": False} | avoiding


def _acquire(session: CampaignSession, iteration: int, unlabelled: np.ndarray,
             want: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Pool positions and scores of ``want`` picks by the configured strategy, and
    ``{"avoiding": {"failed_points", "visited", "skipped"}}`` while failures are avoided."""
    from alcore import strategies  # noqa: PLC0415

    cfg, store = session.config, session.store
    pool_X = np.asarray(store.pool_X)
    visited, success_prob = store.labelled_indices(), None
    if cfg.acquisition.avoid_failures:
        from alcore.feasibility import avoidance  # noqa: PLC0415

        visited, success_prob = avoidance(store, unlabelled, seed=cfg.campaign.seed)
    ctx = strategies.AcquisitionContext(
        model=session.model_for(iteration - 1),
        X_train=pool_X[visited],
        X_pool=pool_X[unlabelled],
        batch_size=want,
        n_samples=cfg.acquisition.samples,
        reg=cfg.acquisition.reg,
        seed=session.seeds.acquisition_seed(iteration),
        # No X_target: the held-out test inputs must not steer what gets labelled;
        # nngp_ivr then integrates the variance over the pool.
        X_target=None,
        success_prob=success_prob,
    )
    sel = strategies.select(cfg.acquisition.strategy, ctx, **cfg.acquisition.params)
    info: dict[str, Any] = {}
    if success_prob is not None:
        from alcore.feasibility import learned_failures  # noqa: PLC0415
        from alcore.strategies.base import MIN_SUCCESS_PROB  # noqa: PLC0415

        info["avoiding"] = {"failed_points": int(learned_failures(store).size),
                            "visited": int(visited.size - store.labelled_indices().size),
                            "skipped": int((success_prob < MIN_SUCCESS_PROB).sum())}
    return unlabelled[np.asarray(sel.indices, dtype=np.int64)], np.asarray(sel.scores, dtype=float), info


# -------------------------------------------------------------------------------- label
@step("label", total=lambda session, iteration: int(len(session.store.requested_indices())))
def label(session: CampaignSession, iteration: int) -> dict[str, Any]:
    """Send every requested-but-unlabelled point to the oracle; store each result on arrival.

    Points requested by a killed run are sent again; labelled points never are (the store's
    status is the truth). A stop request (``alflow stop``, a cancelled flow run) ends the
    batch early: the points not started yet stay requested for the resume, the evaluations
    already running finish and are stored (cancelling them would pay for them twice).
    An oracle error that is the same for every point (kind ``setup``) ends the campaign with
    one line telling the user what to fix; the point stays requested. So does an external
    cluster left with no worker (resumable once workers are back).
    """
    store = session.store
    pending = np.asarray(store.requested_indices(), dtype=np.int64)
    ok = failed = 0
    reasons: dict[str, int] = {}  # headline of each failure reason of this batch -> count
    stopped = False
    t0 = time.perf_counter()
    if pending.size:
        from oracles import NoWorkersLeft  # noqa: PLC0415

        try:
            ok, failed, stopped = _label_points(session, pending, reasons)
        except NoWorkersLeft as exc:  # an external cluster emptied: what arrived is stored
            raise CampaignSetupError(str(exc)) from None
    if pending.size and not stopped and iteration >= 1:
        session.label_seconds.append(time.perf_counter() - t0)
    return {"sent": int(pending.size), "labelled": ok, "failed": failed, "stopped": stopped,
            "failure_reasons": reasons}


def _label_points(session: CampaignSession, pending: np.ndarray,
                  reasons: dict[str, int]) -> tuple[int, int, bool]:
    """Evaluate and store the points ``pending``: (labelled, failed, stopped early).

    ``reasons`` gathers the headline of each failure (-> count) for the step's log line.
    """
    store = session.store
    ok = failed = 0
    stopped = False
    with session.dispatcher.stream(session.oracle) as evaluations:
        for i, x in zip(pending, np.asarray(store.pool_X)[pending]):
            evaluations.submit(int(i), x)
        for r in evaluations.results():
            outcome = store_result(session, r)
            if outcome == "labelled":
                ok += 1
            elif outcome == "failed":
                failed += 1
                head = headline(r.reason or "failed")
                reasons[head] = reasons.get(head, 0) + 1
            if not stopped and session.halted():
                stopped = True
                evaluations.cancel_pending()  # the running ones are still yielded and stored
    return ok, failed, stopped


# -------------------------------------------------------------------------------- train
@step("train")
def train(session: CampaignSession, iteration: int) -> dict[str, Any]:
    """Fit the surrogate on every labelled point and save the checkpoint of ``iteration``.

    ``fit_surrogate`` (``alcore.campaign.training``): model selection by K-fold CV on the
    initial design and whenever the labels have doubled (``model.select``), a warm start from
    the newest model when ``model.warm_start`` (also across a resume), the std calibration. A
    checkpoint already saved for this iteration (a run killed before ``checkpoint``) is reused.
    """
    from alcore.campaign.training import FIT_INFO_KEY, fit_for_iteration  # noqa: PLC0415

    store = session.store
    labelled = np.asarray(store.labelled_indices(), dtype=np.int64)
    if plan(store).trained:
        session.model_for(iteration)
        return {"n_train": int(labelled.size), "reused": True}
    if labelled.size < 2:
        raise CampaignSetupError(
            f"iteration {iteration}: only {labelled.size} labelled point(s) to train on "
            "(did every oracle evaluation fail? see `alflow status`)")
    fit = fit_for_iteration(session, iteration, labelled)
    info = fit.info()
    store.save_checkpoint(iteration, fit.model.get_state() | {FIT_INFO_KEY: np.array(json.dumps(info))})
    session.remember_model(fit.model, iteration)
    report = fit.report
    out: dict[str, Any] = {"n_train": int(labelled.size), "warm_start": fit.warm_start, "reused": False,
                           "model": fit.choice.get("name"), "retuned": fit.retuned}
    for k in ("epochs_run", "best_epoch", "final_train_loss", "best_val_loss", "stopped_early"):
        v = getattr(report, k)
        out[k] = v.item() if hasattr(v, "item") else v
    return out


# ----------------------------------------------------------------------------- evaluate
@step("evaluate")
def evaluate(session: CampaignSession, iteration: int) -> dict[str, Any]:
    """Metrics of the model of ``iteration`` on the test set (else on the training set).

    Returns ``{"metrics": {...}}``: scalar ``rmse``, ``mae``, ``r2`` and, with the model's
    calibrated std (and its Student-t tails, ``calibration_dof``), ``nll``, ``coverage90``
    (share inside the central 90% interval) and
    ``nll_at_rmse`` (the NLL of a Gaussian whose std is the observed RMSE), each a mean over
    outputs with its per-output list; label counts, and which set (``on``) was used.
    """
    from alcore.metrics import regression_metrics  # noqa: PLC0415

    store, cfg = session.store, session.config
    model = session.model_for(iteration)
    if store.test_X is not None and len(store.test_X):
        X, y, on = np.asarray(store.test_X), np.asarray(store.test_y), "test"
    else:
        lab = store.labelled_indices()
        X, y, on = np.asarray(store.pool_X)[lab], np.asarray(store.outputs)[lab], "train"
    y = y.reshape(len(X), -1)
    T = min(cfg.acquisition.samples, 50)
    pred, std = model.predict_with_std(X, T, seed=session.seeds.evaluation_seed(iteration))
    pred, std = np.asarray(pred).reshape(y.shape), np.asarray(std).reshape(y.shape)
    if not (np.all(np.isfinite(std)) and np.all(std > 0)):
        std = None  # e.g. dropout 0 and no calibration floor: no predictive distribution to score
    names = list(store.oracle_info.get("output_names") or []) or None
    raw = regression_metrics(y, pred, std, output_names=names, dof=model.calibration_dof)
    metrics: dict[str, Any] = {"on": on, "n_test": int(len(X))}
    for k in ("rmse", "mae", "r2", "nll", "coverage90", "nll_at_rmse"):
        if k in raw:
            metrics[k] = _mean_or_none(raw[k])
            per = raw.get(f"{k}_per_output")
            if per is not None:
                metrics[f"{k}_per_output"] = [float(x) for x in np.asarray(per, float).reshape(-1)]
    metrics["labelled"] = int(len(store.labelled_indices()))
    metrics["failed"] = int(len(store.failed_indices()))
    return {"metrics": metrics}


def _mean_or_none(v: Any) -> float | None:
    """The mean of a metric given as a number or a per-output list; None when not finite."""
    arr = np.asarray(v, dtype=float)
    if arr.size == 0:
        return None
    val = float(arr.mean())
    return val if math.isfinite(val) else None


# --------------------------------------------------------------------------- checkpoint
@step("checkpoint")
def checkpoint(session: CampaignSession, iteration: int, metrics: dict[str, Any],
               timings: dict[str, float]) -> dict[str, Any]:
    """Record the iteration (metrics, step timings, the surrogate's fit record as ``info``) and
    fold the journal into the HDF5 file.

    From here on the iteration is finished: a resumed run starts with the next one.
    """
    from alcore.campaign.training import saved_fit_info  # noqa: PLC0415

    store = session.store
    recorded = dict(metrics) | {"at": datetime.now().isoformat(timespec="seconds")}
    if session.deadline is not None:  # for `alflow status` (alcore.campaign.progress)
        recorded["deadline"] = session.deadline.isoformat(timespec="minutes")
        recorded["deadline_zone"] = getattr(session.deadline.tzinfo, "key", None) or session.deadline.tzname()
    info: dict[str, Any] = {}
    fit_info = saved_fit_info(store, iteration)  # saved by train with the model (survives a resume)
    if fit_info:
        info["surrogate"] = fit_info
    with session.lock:
        store.record_iteration(iteration, recorded, dict(timings), info=info or None)
        store.compact()
    out = {"metrics": recorded, "timings": dict(timings),
           "labelled": int(len(store.labelled_indices())), "failed": int(len(store.failed_indices())),
           "budget": session.config.label_budget}
    get_hooks().iteration_done(out | {"iteration": iteration})
    return out
