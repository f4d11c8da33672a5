"""Prefect tasks of an asynchronous campaign (``[campaign] mode = "async"``).

What a person sees in the flow run: ``label-v`` (the evaluations streamed while model version
``v - 1`` was the newest; one log line per result), ``train-v`` (runs in the background, in
parallel with ``label-v``), then ``evaluate-v`` (the batch task) and ``checkpoint-v``. So the
task runs alternate like a batch campaign's iterations, but the labelling never waits for the
training.

Like :mod:`flows.tasks`, tasks pass the store path and small summaries; this module maps a store
path to the :class:`~alcore.campaign.async_loop.AsyncRun` of this process. No retries: the
labelling resumes from the store on the next run, and a training job is taken from the run
when it starts (the next version is trained again on the resume).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from alcore.campaign.async_loop import AsyncRun, AsyncSteps
from flows.tasks import prefect_steps

__all__ = ["async_prefect_steps"]

_SETTINGS: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False, "retries": 0}

_runs: dict[str, AsyncRun] = {}
_runs_lock = threading.Lock()


def _key(run: AsyncRun) -> str:
    key = str(Path(run.session.store_path).resolve())
    with _runs_lock:
        _runs[key] = run
    return key


def _run(store_path: str) -> AsyncRun:
    with _runs_lock:
        return _runs[store_path]


def _fmt(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


@task(name="label-stream", task_run_name="label-{version}", **_SETTINGS)
def label_stream_task(store_path: str, version: int) -> dict[str, Any]:
    """Stream evaluations until model version ``version`` is trained (or the campaign ends)."""
    log = get_run_logger()
    run = _run(store_path)
    budget = run.budget

    def on_result(r: Any) -> None:
        store = run.session.store
        spent = store.n_labelled + len(store.failed_indices())
        if r.ok:
            log.info("point %d labelled in %.2fs on %s (%d/%d spent, %d in flight)", r.index, r.wall_time,
                     r.worker, spent, budget, run.stream.in_flight)
        else:
            log.warning("point %d %s after %d attempt(s) on %s: %s", r.index, r.kind, r.attempts, r.worker,
                        r.reason)

    run.on_result = on_result
    try:
        out = run.label_segment(version)
    finally:
        run.on_result = None
    what = {"model": f"model version {version} is ready", "end": "nothing left to evaluate",
            "stop": f"stopping: {out['stop_reason']}"}[out["event"]]
    log.info("labelled %d, failed %d in %.1fs (selection %.2fs); %s", out["labelled"], out["failed"],
             out["seconds"], out["select_seconds"], what)
    return out


@task(name="train-version", task_run_name="train-{version}", **_SETTINGS)
def train_version_task(store_path: str, version: int) -> dict[str, Any]:
    """Fit model version ``version`` (runs in the background while the labelling goes on)."""
    out = _run(store_path).train_version(version)
    if out.get("abandoned"):
        get_run_logger().info("model version %d abandoned: the campaign stopped while it trained "
                              "(the resume trains it again)", version)
        return out
    get_run_logger().info("model version %d trained on %d labels in %.1fs (%s%s), final loss %s", version,
                          out["n_train"], out["seconds"], "warm start" if out.get("warm_start") else "cold start",
                          ", re-tuned" if out.get("retuned") else "", _fmt(out.get("final_train_loss")))
    return out


@task(name="checkpoint-version", task_run_name="checkpoint-{version}", **_SETTINGS)
def checkpoint_version_task(store_path: str, version: int, metrics: dict[str, Any],
                            timings: dict[str, float]) -> dict[str, Any]:
    """Save model version ``version`` and record it as iteration ``version`` of the store."""
    out = _run(store_path).record_version(version, metrics, timings)
    get_run_logger().info("model version %d recorded (trained on %d labels): %d/%d labels spent", version,
                          out["metrics"]["labelled"], out["labelled"] + out["failed"], out["budget"])
    return out


def async_prefect_steps() -> AsyncSteps:
    """The async run's steps as Prefect tasks (``evaluate`` is the batch campaign's task)."""
    return AsyncSteps(
        label=lambda run, v: label_stream_task(_key(run), v),
        train=lambda run, v: train_version_task(_key(run), v),
        evaluate=prefect_steps().evaluate,
        checkpoint=lambda run, v, metrics, timings: checkpoint_version_task(_key(run), v, metrics, timings),
    )
