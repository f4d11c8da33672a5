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
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import numpy as np

from alcore.campaign.errors import CampaignSetupError
from alcore.campaign.hooks import get_hooks
from alcore.campaign.records import iteration_records, labels_spent, plan
from alcore.campaign.session import CampaignSession

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
        if iteration == 0:
            strategy = "initial"
            rng = np.random.default_rng(session.seeds.initial)
            picks = rng.choice(unlabelled, size=want, replace=False)
            scores = np.full(want, np.nan)
        else:
            strategy = cfg.acquisition.strategy
            picks, scores = _acquire(session, iteration, unlabelled, want)
        store.mark_requested(np.asarray(picks, dtype=np.int64), iteration, scores)
    return {"selected": int(len(picks)), "strategy": strategy, "resumed": False}


def _acquire(session: CampaignSession, iteration: int, unlabelled: np.ndarray,
             want: int) -> tuple[np.ndarray, np.ndarray]:
    """Pool positions and scores of ``want`` picks by the configured strategy."""
    from alcore import strategies  # noqa: PLC0415

    cfg, store = session.config, session.store
    pool_X = np.asarray(store.pool_X)
    ctx = strategies.AcquisitionContext(
        model=session.model_for(iteration - 1),
        X_train=pool_X[store.labelled_indices()],
        X_pool=pool_X[unlabelled],
        batch_size=want,
        n_samples=cfg.acquisition.samples,
        reg=cfg.acquisition.reg,
        seed=session.seeds.acquisition_seed(iteration),
        # No X_target: the held-out test inputs must not steer what gets labelled;
        # nngp_ivr then integrates the variance over the pool.
        X_target=None,
    )
    sel = strategies.select(cfg.acquisition.strategy, ctx, **cfg.acquisition.params)
    return unlabelled[np.asarray(sel.indices, dtype=np.int64)], np.asarray(sel.scores, dtype=float)


# -------------------------------------------------------------------------------- label
@step("label", total=lambda session, iteration: int(len(session.store.requested_indices())))
def label(session: CampaignSession, iteration: int) -> dict[str, Any]:
    """Send every requested-but-unlabelled point to the oracle; store each result on arrival.

    Points requested by a killed run are sent again; labelled points never are (the store's
    status is the truth). A stop request (``alflow stop``, a cancelled flow run) ends the
    batch early: every result that arrived is stored, the rest stay requested for the resume.
    An oracle error that is the same for every point (kind ``setup``) ends the campaign with
    one line telling the user what to fix; the point stays requested.
    """
    store = session.store
    pending = np.asarray(store.requested_indices(), dtype=np.int64)
    ok = failed = 0
    stopped = False
    t0 = time.perf_counter()
    if pending.size:
        X = np.asarray(store.pool_X)[pending]
        for r in session.dispatcher.evaluate(session.oracle, X, pending):
            if getattr(r, "kind", "error") == "setup":
                raise CampaignSetupError(_setup_error_message(session, r.reason))
            times = {"submitted": r.submitted, "started": r.started, "finished": r.finished}
            with session.lock:
                if r.ok:
                    store.record_label(int(r.index), np.asarray(r.y, float), r.wall_time, r.worker,
                                       attempts=int(r.attempts), **times)
                    ok += 1
                else:
                    store.record_failure(int(r.index), r.reason or "failed", r.wall_time, r.worker,
                                         int(r.attempts), **times)
                    failed += 1
                    log.warning("point %d failed after %d attempt(s): %s", r.index, r.attempts, r.reason)
            get_hooks().label_result(bool(r.ok))
            if session.halted():
                stopped = True  # leaving the loop cancels the evaluations still in flight
                break
    if pending.size and not stopped and iteration >= 1:
        session.label_seconds.append(time.perf_counter() - t0)
    return {"sent": int(pending.size), "labelled": ok, "failed": failed, "stopped": stopped}


def _setup_error_message(session: CampaignSession, reason: str | None) -> str:
    """One line for an oracle that fails the same way for every point."""
    msg = f"oracle '{session.config.oracle.name}': {reason or 'failed'}"
    if len(session.store.labelled_indices()) == 0:
        msg += (f" (no label was stored yet: after fixing [oracle], delete {session.store_path} "
                "and run again)")
    return msg


# -------------------------------------------------------------------------------- train
@step("train")
def train(session: CampaignSession, iteration: int) -> dict[str, Any]:
    """Fit the surrogate on every labelled point and save the checkpoint of ``iteration``.

    Warm-starts from the newest model when ``model.warm_start`` (also across a resume). A
    checkpoint already saved for this iteration (a run killed before ``checkpoint``) is reused.
    """
    from alcore.model import DropoutMLP  # noqa: PLC0415

    store, cfg = session.store, session.config
    labelled = np.asarray(store.labelled_indices(), dtype=np.int64)
    if plan(store).trained:
        session.model_for(iteration)
        return {"n_train": int(labelled.size), "reused": True}
    if labelled.size < 2:
        raise CampaignSetupError(
            f"iteration {iteration}: only {labelled.size} labelled point(s) to train on "
            "(did every oracle evaluation fail? see `alflow status`)")
    model = DropoutMLP(**cfg.model.model_kwargs(seed=session.seeds.model_seed(iteration)))
    previous = session.latest_model() if cfg.model.warm_start else None
    if previous is not None:
        model.load_state(previous.get_state())
    report = model.fit(np.asarray(store.pool_X)[labelled], np.asarray(store.outputs)[labelled],
                       warm_start=previous is not None, progress=get_hooks().train_epoch)
    store.save_checkpoint(iteration, model.get_state())
    session.remember_model(model, iteration)
    out: dict[str, Any] = {"n_train": int(labelled.size), "warm_start": previous is not None,
                           "reused": False}
    for k in ("epochs_run", "best_epoch", "final_train_loss", "best_val_loss", "stopped_early"):
        v = getattr(report, k)
        out[k] = v.item() if hasattr(v, "item") else v
    return out


# ----------------------------------------------------------------------------- evaluate
@step("evaluate")
def evaluate(session: CampaignSession, iteration: int) -> dict[str, Any]:
    """Metrics of the model of ``iteration`` on the test set (else on the training set).

    Returns ``{"metrics": {...}}``: scalar ``rmse``, ``mae``, ``r2``, ``nll`` (means over
    outputs), their per-output lists, label counts, and which set (``on``) was used.
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
    pred = np.asarray(model.predict(X)).reshape(len(X), -1)
    T = min(cfg.acquisition.samples, 50)
    samples = np.asarray(model.sample(X, T, seed=session.seeds.evaluation_seed(iteration)))
    std = samples.reshape(len(X), T, -1).std(axis=1)
    names = list(store.oracle_info.get("output_names") or []) or None
    raw = regression_metrics(y, pred, std, output_names=names)
    metrics: dict[str, Any] = {"on": on, "n_test": int(len(X))}
    for k in ("rmse", "mae", "r2", "nll"):
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
    """Record the iteration (metrics + step timings) and fold the journal into the HDF5 file.

    From here on the iteration is finished: a resumed run starts with the next one.
    """
    store = session.store
    recorded = dict(metrics) | {"at": datetime.now().isoformat(timespec="seconds")}
    with session.lock:
        store.record_iteration(iteration, recorded, dict(timings))
        store.compact()
    out = {"metrics": recorded, "timings": dict(timings),
           "labelled": int(len(store.labelled_indices())), "failed": int(len(store.failed_indices())),
           "budget": session.config.label_budget}
    get_hooks().iteration_done(out | {"iteration": iteration})
    return out
