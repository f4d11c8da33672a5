"""The asynchronous campaign (``[campaign] mode = "async"``): every worker stays busy.

In batch mode each iteration waits for the slowest evaluation of its batch, then for training
and selection, while the workers idle. Here, whenever an evaluation ends, its label is stored at
once and the next point is chosen and submitted, conditioned on every labelled *and every
pending* point (:mod:`alcore.campaign.async_select`); the surrogate retrains in the background,
in a process of its own (:mod:`alcore.campaign.async_train`), once ``campaign.retrain_every`` new labels have
arrived (default ``acquisition.batch_size``), and selection always uses the newest finished
model.

**Model versions are the iterations of the store.** Version ``v`` is recorded as iteration
``v``: its metrics (with ``labelled`` = the labels it was trained on), its timings and the
fit's info; iteration ``v``'s ``selected`` lists the points picked while version ``v - 1`` was
the newest model (iteration 0: the random initial design, plus the points handed out before
the first model existed, spread out by :func:`~alcore.campaign.async_select.space_filling_picks`).
So ``alflow status``, ``report`` and ``export`` read an async store
as they read a batch one.

**The run, as steps** (so that the flow can show them as Prefect task runs):
``label(run, v)`` streams evaluations until model version ``v`` is ready (or the campaign has
nothing left to do); ``train(run, v)`` runs in a background thread (the fit itself in the
training process); then ``evaluate(session, v)`` (the batch step) and ``checkpoint(run, v,
metrics, timings)`` (saves the model, records the version). The first model trains once
``max(initial/2, initial - workers)`` labels are in. Points are chosen off the loop
(:mod:`alcore.campaign.async_selector`: a thread that waits for a selection process), and as
many points as there are workers are kept waiting in the stream beyond the running ones
(:attr:`AsyncRun.lookahead`): the stream hands one to the next free worker the moment a result
arrives, so neither storing a label nor choosing a point is worker idle time.

**Stopping and resuming, as in batch mode.** A stop request (``alflow stop``, a signal, a
cancelled flow run) or a passed deadline stop at once: nothing new starts, the points waiting in
the stream stay requested, and the evaluations already running finish and are stored
(cancelling them would pay for them twice on the resume). The label budget, ``target_rmse``, an
empty pool, or a deadline the mean evaluation time says cannot be met stop new submissions:
the evaluations in flight finish and are stored, and a last model version is trained on every
label. A resume (the same command) sends every requested-but-unlabelled point again before
choosing new ones, continues from the newest recorded version (a checkpoint saved without its
record is trained again) and never sends a labelled point again.
"""

from __future__ import annotations

import contextvars
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from alcore.campaign import steps as batch_steps
from alcore.campaign.async_avoid import FailureAvoidance
from alcore.campaign.async_select import conditioning_sets, random_picks, space_filling_picks
from alcore.campaign.async_selector import SelectionProcess, Selector
from alcore.campaign.async_train import TrainingAbandoned, TrainingProcess, TrainJob, TrainResult, Trainer
from alcore.campaign.hooks import get_hooks, say
from alcore.campaign.records import finished_iterations, iteration_records, labels_spent
from alcore.campaign.results import Outcome, store_result
from alcore.campaign.session import CampaignSession, open_campaign
from alcore.campaign.utilisation import utilisation_of_store
from alcore.config import CampaignConfig

__all__ = ["AsyncRun", "AsyncSteps", "drive_async", "run_async"]

log = logging.getLogger("alcore.campaign")

#: seconds the loop waits for results before it looks at the selector, the trainer and the
#: stop flags again
POLL_S = 0.05


def label_step(run: AsyncRun, version: int) -> dict[str, Any]:
    return run.label_segment(version)


def train_step(run: AsyncRun, version: int) -> dict[str, Any]:
    return run.train_version(version)


def checkpoint_step(run: AsyncRun, version: int, metrics: dict[str, Any],
                    timings: dict[str, float]) -> dict[str, Any]:
    return run.record_version(version, metrics, timings)


@dataclass
class AsyncSteps:
    """The step callables of an async run: the plain ones, or Prefect tasks around them.

    ``label(run, v)``, ``train(run, v)`` (called in the training thread), ``evaluate(session,
    v)`` (the batch step) and ``checkpoint(run, v, metrics, timings)``; each returns its summary.
    """

    label: Callable[..., dict[str, Any]] = label_step
    train: Callable[..., dict[str, Any]] = train_step
    evaluate: Callable[..., dict[str, Any]] = batch_steps.evaluate
    checkpoint: Callable[..., dict[str, Any]] = checkpoint_step


class AsyncRun:
    """The state of one asynchronous run: the open evaluation stream, the trainer, the newest
    model version. Everything that must survive a kill is in the store; this is only the run's
    working state."""

    def __init__(self, session: CampaignSession, steps: AsyncSteps | None = None) -> None:
        self.session = session
        self.steps = steps or AsyncSteps()
        cfg = session.config
        self.budget = int(cfg.label_budget)
        self.retrain_every = int(cfg.campaign.retrain_every or cfg.acquisition.batch_size)
        # the caller's context (e.g. Prefect's flow run), for the training thread
        self.trainer = Trainer(run=lambda v: self.steps.train(self, v), context=contextvars.copy_context())
        self.jobs: dict[int, TrainJob] = {}
        self.results: dict[int, TrainResult] = {}
        self.latest: int | None = None        # newest recorded model version
        self.latest_rmse: float | None = None
        self.n_train_latest = 0
        self.trained_on: np.ndarray | None = None
        self.no_more: str | None = None       # why no new point is submitted any more
        self.hard_stop: str | None = None     # why the run ends now, in-flight work cancelled
        self.started_at = time.time()
        self.recorded: list[int] = []
        # per result: seconds from its end on the worker to the loop storing it, and the points
        # waiting in the stream then (0: a worker that frees up now has nothing to do)
        self._lags: list[float] = []
        self._waiting: list[int] = []
        self.stream: Any = None
        self.training: TrainingProcess | None = None
        self.selector: Selector | None = None
        self.selection: SelectionProcess | None = None
        # called with each EvalResult after it is stored (e.g. to log it in a Prefect task run)
        self.on_result: Callable[[Any], None] | None = None
        self._stream_cm: Any = None
        self._X = np.asarray(session.store.pool_X)
        # the failure estimate that weights the picks (None: avoid_failures = false)
        self.avoidance = FailureAvoidance(cfg.campaign.seed) if cfg.acquisition.avoid_failures else None

    # ------------------------------------------------------------------------- lifecycle
    def open(self) -> AsyncRun:
        """Pick up the store's state, open the evaluation stream, send the pending points again
        and, for a new campaign, the initial design."""
        store, session = self.session.store, self.session
        recs = iteration_records(store)
        done = finished_iterations(recs)
        if done:
            from alcore.model import DropoutMLP  # noqa: PLC0415

            self.latest = done[-1]
            metrics = recs[self.latest].get("metrics") or {}
            self.n_train_latest = int(metrics.get("labelled") or 0)
            rmse = metrics.get("rmse")
            self.latest_rmse = float(rmse) if isinstance(rmse, (int, float)) else None
            session.remember_model(DropoutMLP.from_state(store.load_checkpoint(self.latest)), self.latest)
        self.training = TrainingProcess()
        self._stream_cm = session.dispatcher.stream(session.oracle)
        self.stream = self._stream_cm.__enter__()
        self.selection = SelectionProcess(self._X)
        self.selector = Selector(self._choose)
        if self._check_hard_stop():
            return self  # a stop request or a passed deadline: send nothing
        pending = np.asarray(store.requested_indices(), dtype=np.int64)
        if done or pending.size or labels_spent(store):
            say(f"resuming at model version {self.next_version} (recorded: {len(done)}, "
                f"labelled {store.n_labelled}, sent again: {pending.size})")
        for i in pending:
            self.stream.submit(int(i), self._X[i])
        if not recs.get(0, {}).get("selected"):
            self._initial_design()
        return self

    def close(self) -> None:
        """Close the stream (cancels what is still in flight: it stays requested in the store)."""
        cm, self._stream_cm, self.stream = self._stream_cm, None, None
        training, self.training = self.training, None
        selector, self.selector = self.selector, None
        selection, self.selection = self.selection, None
        try:
            if selection is not None:  # first: a pick it runs ends at once, and so the thread
                selection.close()
            if selector is not None:
                selector.close()
            if cm is not None:
                cm.__exit__(None, None, None)
        finally:
            if training is not None:
                training.close()

    def __enter__(self) -> AsyncRun:
        try:
            return self.open()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def next_version(self) -> int:
        return 0 if self.latest is None else self.latest + 1

    @property
    def lookahead(self) -> int:
        """Points kept waiting in the stream beyond the workers: one per worker (at least 2),
        so that a selection may take as long as an evaluation before a worker waits for it
        (with half as many, 9-17% of the results found no point waiting on the loaded 2-core
        development machine). The points waiting are conditioned on like the running ones;
        they only miss a model version that arrives while they wait."""
        return max(2, self.stream.capacity)

    @property
    def first_train_at(self) -> int:
        """Labels before the first model trains: the initial design minus what the workers
        still run of it (at least half of it), so the first model is ready about when the
        initial design runs out."""
        initial = int(self.session.config.budget.initial)
        return max(2, math.ceil(initial / 2), initial - self.stream.capacity)

    # ------------------------------------------------------------------------ selection
    def _initial_design(self) -> None:
        store, cfg = self.session.store, self.session.config
        want = min(cfg.budget.initial, self.budget - labels_spent(store), store.unlabelled_indices().size)
        if want <= 0:
            return
        picks = random_picks(store, want, self.session.seeds.initial)
        self._request(picks, 0, np.full(picks.size, np.nan))

    def _request(self, picks: np.ndarray, iteration: int, scores: np.ndarray) -> None:
        with self.session.lock:
            self.session.store.mark_requested(picks, iteration, scores)
        for i in picks:
            self.stream.submit(int(i), self._X[i])

    def _top_up(self) -> None:
        """Submit what the selector chose; ask it for more while a worker (or a lookahead slot)
        is free and the campaign may go on."""
        if self.hard_stop:
            return
        for i in self.selector.take():
            if self.no_more in (None, "budget spent"):
                self.stream.submit(i, self._X[i])
            # else: requested, never sent; the resume sends it
        if self.no_more:
            return
        reason = self._why_no_more()
        if reason is not None:
            self.no_more = reason
            self.selector.cancel()
            if reason != "budget spent":
                self.stream.cancel_pending()  # not started: they stay requested for a resume
            log.info("no new evaluations: %s", reason)
            return
        store = self.session.store
        outstanding = self.selector.outstanding
        want = self.stream.capacity + self.lookahead - self.stream.in_flight - outstanding
        room = self.budget - labels_spent(store) - int(store.requested_indices().size) - outstanding
        self.selector.request(min(want, room))

    def _choose(self, n: int) -> np.ndarray:
        """Choose ``n`` points with the newest model and mark them requested (selector thread)."""
        store = self.session.store
        with self.session.lock:
            seed = self.session.seeds.acquisition_seed(int(np.count_nonzero(store.iteration_requested >= 0)))
        latest = self.latest
        model = self.session.latest_model() if latest is not None else None
        failed, success_prob = None, None
        with self.session.lock:
            known, candidates = conditioning_sets(store)
            if self.avoidance is not None:  # failed points count as visited, as in batch mode
                failed, success_prob = self.avoidance.current(store, candidates, latest)
                known = np.union1d(known, failed)
        if model is None or latest is None:
            picks, scores, it = space_filling_picks(store, n, failed=failed, success_prob=success_prob), None, 0
        else:
            acq = self.session.config.acquisition
            it = latest + 1
            picks, scores = self.selection.pick(latest, model, known, candidates, n, strategy=acq.strategy,
                                                params=dict(acq.params), samples=acq.samples, reg=acq.reg,
                                                seed=seed, success_prob=success_prob)
        if picks.size:
            with self.session.lock:
                store.mark_requested(picks, it, np.full(picks.size, np.nan) if scores is None else scores)
        return picks

    def _why_no_more(self) -> str | None:
        store, cfg = self.session.store, self.session.config
        if labels_spent(store) + store.requested_indices().size >= self.budget:
            return "budget spent"
        if store.unlabelled_indices().size == 0:
            return "pool exhausted"
        target = cfg.budget.target_rmse
        if target is not None and self.latest_rmse is not None and self.latest_rmse <= target:
            return "target_rmse"
        deadline = self.session.deadline
        if deadline is not None:
            est = self._evaluation_estimate()
            if est is not None and (deadline - datetime.now(timezone.utc)).total_seconds() < est:
                return "deadline"
        return None

    def _evaluation_estimate(self) -> float | None:
        """Mean evaluation time (s) of the labels so far."""
        store = self.session.store
        w = np.asarray(store.wall_times)[store.labelled_indices()]
        w = w[np.isfinite(w)]
        return float(w.mean()) if w.size else None

    def _check_hard_stop(self) -> str | None:
        if self.hard_stop is None:
            if self.session.halted():
                self.hard_stop = "stop requested"
            elif self.session.deadline is not None and datetime.now(timezone.utc) >= self.session.deadline:
                self.hard_stop = "deadline"
        return self.hard_stop

    # -------------------------------------------------------------------------- results
    def _record(self, r: Any) -> Outcome:
        """Store one result the moment it arrives (:func:`alcore.campaign.results.store_result`)."""
        outcome = store_result(self.session, r)
        if self.on_result is not None:
            self.on_result(r)
        return outcome

    # ------------------------------------------------------------------------- training
    def _maybe_train(self) -> None:
        """Start the next model version in the background when enough new labels arrived (or,
        once nothing more is submitted and nothing runs, on whatever labels are left)."""
        if self.trainer.busy or self.hard_stop:
            return
        store = self.session.store
        n = store.n_labelled
        drained = self.no_more is not None and self.stream.in_flight == 0 and self.selector.idle
        if self.latest is None:
            due = n >= self.first_train_at or (drained and n >= 2)
        else:
            due = n - self.n_train_latest >= self.retrain_every or (drained and n > self.n_train_latest)
        if due:
            self._start_training(self.next_version)

    def _start_training(self, version: int) -> None:
        from alcore.model.fit import SurrogateSettings  # noqa: PLC0415

        store, cfg = self.session.store, self.session.config
        with self.session.lock:
            idx = np.asarray(store.labelled_indices(), dtype=np.int64)
            X, y = self._X[idx].copy(), np.asarray(store.outputs)[idx].copy()
        previous = self.results.get(self.latest) if self.latest is not None else None
        prev_state = previous.state if previous is not None else None
        prev_choice = (previous.info.get("model_choice") if previous is not None else None)
        if previous is None and self.latest is not None:
            model = self.session.latest_model()
            prev_state = model.get_state() if model is not None else None
            prev_choice = (iteration_records(store).get(self.latest, {}).get("info") or {}).get(
                "surrogate", {}).get("model_choice")
        new_rows = (np.flatnonzero(~np.isin(idx, self.trained_on)) if self.trained_on is not None else None)
        self.jobs[version] = TrainJob(
            version=version, indices=idx, X=X, y=y, settings=SurrogateSettings.from_config(cfg.model),
            seed=self.session.seeds.model_seed(version), previous_state=prev_state,
            previous_choice=prev_choice, new_rows=new_rows, target_X=self._X)
        self.trainer.start(version)

    def train_version(self, version: int) -> dict[str, Any]:
        """Fit model version ``version`` from its job (runs in the training thread)."""
        job = self.jobs.pop(version)
        training = self.training
        try:
            if training is None:
                raise TrainingAbandoned(f"model version {version}: the run is closed")
            result = training.fit(job)
        except TrainingAbandoned:
            return {"iteration": version, "n_train": job.n_train, "abandoned": True}
        self.trainer.deliver(result)
        fit = result.info.get("fit") or {}
        return {"iteration": version, "n_train": result.n_train, "seconds": result.seconds,
                "warm_start": result.info.get("warm_start"), "retuned": result.info.get("retuned"),
                "steps": fit.get("steps"), "final_train_loss": fit.get("final_train_loss")}

    # ------------------------------------------------------------------------- the steps
    def label_segment(self, version: int) -> dict[str, Any]:
        """Stream evaluations until model version ``version`` is trained (``event`` "model"),
        the campaign has nothing left to do ("end"), or it must stop now ("stop")."""
        hooks = get_hooks()
        store = self.session.store
        t0, sel0 = time.perf_counter(), self.selector.seconds
        spent0 = labels_spent(store)
        hooks.phase("label", version, max(self.budget - spent0, 0))
        labelled = failed = 0
        event = ""
        while not event:
            if self._check_hard_stop():
                event = "stop"
                drained = self._finish_running()
                labelled, failed = labelled + drained[0], failed + drained[1]
                break
            self._top_up()
            self._maybe_train()
            if self.trainer.ready():
                event = "model"
                break
            if self.stream.in_flight == 0:
                if not self.selector.idle:
                    self.selector.wait(POLL_S)
                elif self.trainer.busy:
                    self.trainer.wait(POLL_S)
                else:
                    event = "end"
                continue
            for r in self.stream.results(timeout=POLL_S):
                self._lags.append(time.time() - r.finished)
                self._waiting.append(self.stream.in_flight - self.stream.capacity)
                outcome = self._record(r)
                labelled += outcome == "labelled"
                failed += outcome == "failed"
                if self._check_hard_stop():
                    break  # the loop's next turn lets the running evaluations finish
                self._top_up()
                self._maybe_train()
        if event == "model":
            result = self.trainer.take()
            if result.version != version:
                raise RuntimeError(f"trained version {result.version} while expecting {version}")
            self._install(result)
        out = {"iteration": version, "event": event, "labelled": labelled, "failed": failed,
               "in_flight": int(self.stream.in_flight), "select_seconds": self.selector.seconds - sel0,
               "seconds": time.perf_counter() - t0, "stop_reason": self.hard_stop or self.no_more}
        hooks.phase_done("label", version, out)
        return out

    def _finish_running(self) -> tuple[int, int]:
        """On a stop: drop the points not started (they stay requested for the resume), let the
        running evaluations finish and store them; returns (labelled, failed) among them."""
        self.selector.cancel()
        self.stream.cancel_pending()
        ok = bad = 0
        while self.stream.in_flight:
            for r in self.stream.results(timeout=POLL_S):
                outcome = self._record(r)
                ok += outcome == "labelled"
                bad += outcome == "failed"
        return ok, bad

    def loop_stats(self) -> dict[str, float | None]:
        """How promptly this run's loop handled results (for benchmarks and the logs)."""
        lags, waiting = np.asarray(self._lags), np.asarray(self._waiting)
        if not lags.size:
            return {"results": 0, "lag_median_s": None, "lag_p90_s": None, "empty_queue_share": None}
        return {"results": int(lags.size), "lag_median_s": float(np.median(lags)),
                "lag_p90_s": float(np.percentile(lags, 90)),
                "empty_queue_share": float(np.mean(waiting <= 0))}

    def _install(self, result: TrainResult) -> None:
        """Make a trained version the model selection uses."""
        self.session.remember_model(result.model, result.version)
        self.results = {result.version: result}
        self.latest, self.n_train_latest, self.trained_on = result.version, result.n_train, result.indices

    def record_version(self, version: int, metrics: dict[str, Any],
                       timings: dict[str, float]) -> dict[str, Any]:
        """Save version ``version``'s checkpoint and record it as iteration ``version``."""
        t0 = time.perf_counter()
        result = self.results[version]
        store = self.session.store
        recorded = dict(metrics) | {"labelled": result.n_train,
                                    "at": datetime.now().isoformat(timespec="seconds")}
        info = {"surrogate": result.info,
                "async": {"version": version, "n_train": result.n_train, "labelled_at_record": store.n_labelled,
                          "in_flight": int(self.stream.in_flight) if self.stream is not None else 0}}
        with self.session.lock:
            store.save_checkpoint(version, result.state)
            store.record_iteration(version, recorded, dict(timings), info)
        rmse = recorded.get("rmse")
        self.latest_rmse = float(rmse) if isinstance(rmse, (int, float)) else None
        self.recorded.append(version)
        out = {"metrics": recorded, "timings": dict(timings), "labelled": store.n_labelled,
               "failed": int(len(store.failed_indices())), "budget": self.budget}
        get_hooks().iteration_done(out | {"iteration": version})
        return out | {"iteration": version, "seconds": time.perf_counter() - t0}


def drive_async(session: CampaignSession, steps: AsyncSteps | None = None,
                on_version: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the asynchronous campaign until it has nothing left to do or must stop.

    Returns the same summary as :func:`alcore.campaign.drive` (``iterations_run`` are the model
    versions recorded by this call) plus ``utilisation`` of this run's evaluations.
    """
    steps = steps or AsyncSteps()
    run = AsyncRun(session, steps)
    with run:
        first = run.next_version
        while True:
            v = run.next_version
            seg = steps.label(run, v)
            if seg["event"] != "model":
                break
            ev = steps.evaluate(session, v)
            timings = {"label": seg["seconds"], "select": seg["select_seconds"],
                       "train": run.results[v].seconds, "evaluate": ev["seconds"]}
            rec = steps.checkpoint(run, v, ev["metrics"], timings)
            if on_version is not None:
                on_version(rec)
        reason = run.hard_stop or run.no_more or "budget spent"
    if run.hard_stop:
        say(f"stopped at model version {run.next_version}: {reason} (the same command resumes it)")
    else:
        say(f"no more evaluations: {reason}")
    store = session.store
    return {"store": str(session.store_path), "stop_reason": reason, "first_iteration": first,
            "iterations_run": list(run.recorded), "next_iteration": run.next_version,
            "labelled": store.n_labelled, "failed": int(len(store.failed_indices())),
            "requested": int(len(store.requested_indices())),
            "utilisation": utilisation_of_store(store, since=run.started_at), "loop": run.loop_stats()}


def run_async(cfg: CampaignConfig, *, steps: AsyncSteps | None = None) -> dict[str, Any]:
    """Open (or resume) and drive an asynchronous campaign without Prefect."""
    with open_campaign(cfg) as session:
        return drive_async(session, steps=steps)
