"""Prefect tasks around the campaign steps of :mod:`alcore.campaign`.

Prefect tasks pass the store path and small summaries, never the session: task inputs are
recorded by Prefect (and would be walked and hashed), so this module is the one place that maps
a store path to the open :class:`~alcore.campaign.CampaignSession` of this process.

Why these settings:

* ``cache_policy=NO_CACHE`` and ``persist_result=False``: the inputs are a store path and an
  iteration number, the outputs small summaries; the store is the only state. Caching would
  hash inputs on every call and could skip a step whose store effects are needed.
* Retries only where a retry can help and is safe: the steps are idempotent on the store
  (``select`` keeps a batch already chosen, ``checkpoint`` rewrites the same record), so a
  transient failure (disk, CUDA memory) may be retried. ``label`` is not retried by Prefect:
  the dispatcher already retries each evaluation, and the store resumes a broken batch on the
  next run without paying twice.
* Logs go through Prefect's run logger so they appear in the UI with the task run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from alcore import campaign
from alcore.campaign import CampaignSession
from alcore.failures import describe_counts

def _retry_unless_user_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a failed step unless it failed on a user error: a retry cannot fix a config."""
    from alcore.campaign import CampaignSetupError
    from alcore.config import ConfigError
    from alcore.store import StoreError

    try:
        state.result()
    except (CampaignSetupError, ConfigError, StoreError):
        return False
    except Exception:  # noqa: BLE001 - anything else may be transient (disk, CUDA memory)
        return True
    return True


_COMMON: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False,
                           "retry_condition_fn": _retry_unless_user_error}

_sessions: dict[str, CampaignSession] = {}
_sessions_lock = threading.Lock()


def _key(store_path: str | Path) -> str:
    return str(Path(store_path).resolve())


def session_for(store_path: str | Path) -> CampaignSession:
    """The session opened by ``initialise`` in this process for ``store_path``."""
    with _sessions_lock:
        return _sessions[_key(store_path)]


def close_session(store_path: str | Path) -> None:
    """Close the session of ``store_path`` (writer lock, Dask cluster) if it is open."""
    with _sessions_lock:
        session = _sessions.pop(_key(store_path), None)
    if session is not None:
        session.close()


def _fmt(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


@task(name="initialise", task_run_name="initialise", retries=0, **_COMMON)
def initialise_task(config_path: str) -> dict[str, Any]:
    """Create the store or reopen it for a resume (takes the single-writer lock).

    Under ``alflow run`` the config was loaded and checked before the flow started
    (:mod:`flows.handoff`); elsewhere (``alflow serve``, a deployment) it is loaded here.
    """
    from alcore.config import load_config
    from flows.handoff import take

    handed = take(config_path)
    session = (campaign.open_campaign(handed.config, checked=handed.checked) if handed is not None
               else campaign.open_campaign(load_config(config_path)))
    key = _key(session.store_path)
    with _sessions_lock:
        _sessions[key] = session
    store = session.store
    start = campaign.plan(store)
    summary = {
        "store": key, "created": session.created, "name": session.config.campaign.name,
        "pool": int(store.n_pool), "labelled": int(len(store.labelled_indices())),
        "failed": int(len(store.failed_indices())), "pending": int(len(store.requested_indices())),
        "next_iteration": start.iteration, "last_iteration": session.config.budget.iterations,
        "label_budget": session.config.label_budget,
        "deadline": session.deadline.isoformat(timespec="minutes") if session.deadline else None,
        "report_dir": str(session.config.report_dir),
    }
    get_run_logger().info(
        "store %s %s: pool %d, labelled %d, failed %d, pending %d, next iteration %d of %d%s",
        key, "created" if session.created else "opened (resume)", summary["pool"],
        summary["labelled"], summary["failed"], summary["pending"], summary["next_iteration"],
        summary["last_iteration"], f", deadline {summary['deadline']}" if summary["deadline"] else "",
    )
    return summary


@task(name="select", task_run_name="select-{iteration}", retries=1, retry_delay_seconds=1, **_COMMON)
def select_task(store_path: str, iteration: int) -> dict[str, Any]:
    out = campaign.select(session_for(store_path), iteration)
    how = ("kept the batch of the interrupted run" if out.get("resumed")
           else f"selected with {out.get('strategy', '?')}")
    if out.get("avoiding"):
        a = out["avoiding"]
        how += (f", avoiding where {a['failed_points']} evaluation(s) failed "
                f"({a['skipped']} candidate(s) skipped)")
    get_run_logger().info("iteration %d: %s: %d point(s) in %.2fs", iteration, how,
                          out["selected"], out["seconds"])
    return out


@task(name="label", task_run_name="label-{iteration}", retries=0, **_COMMON)
def label_task(store_path: str, iteration: int) -> dict[str, Any]:
    out = campaign.label(session_for(store_path), iteration)
    log = get_run_logger()
    log.info("iteration %d: labelled %d, failed %d of %d sent in %.1fs", iteration,
             out["labelled"], out["failed"], out["sent"], out["seconds"])
    if out["failed"]:
        log.warning("iteration %d: %d evaluation(s) failed: %s (details: `alflow status %s`)", iteration,
                    out["failed"], describe_counts(out.get("failure_reasons") or {}), store_path)
    return out


@task(name="train", task_run_name="train-{iteration}", retries=1, retry_delay_seconds=2, **_COMMON)
def train_task(store_path: str, iteration: int) -> dict[str, Any]:
    out = campaign.train(session_for(store_path), iteration)
    extra = ", ".join(f"{k} {_fmt(out[k])}" for k in ("model", "epochs_run", "final_train_loss", "best_val_loss") if k in out)
    get_run_logger().info(
        "iteration %d: trained on %d points%s%s in %.1fs", iteration, out["n_train"],
        " (checkpoint reused)" if out.get("reused") else (" (warm start)" if out.get("warm_start") else ""),
        f", {extra}" if extra else "", out["seconds"],
    )
    return out


@task(name="evaluate", task_run_name="evaluate-{iteration}", retries=1, retry_delay_seconds=1, **_COMMON)
def evaluate_task(store_path: str, iteration: int) -> dict[str, Any]:
    out = campaign.evaluate(session_for(store_path), iteration)
    m = out["metrics"]
    get_run_logger().info(
        "iteration %d: %s rmse %s, mae %s, r2 %s, nll %s, 90%% coverage %s (%d labels)", iteration, m.get("on"),
        _fmt(m.get("rmse")), _fmt(m.get("mae")), _fmt(m.get("r2")), _fmt(m.get("nll")), _fmt(m.get("coverage90")),
        m["labelled"],
    )
    return out


@task(name="checkpoint", task_run_name="checkpoint-{iteration}", retries=2, retry_delay_seconds=1, **_COMMON)
def checkpoint_task(store_path: str, iteration: int, metrics: dict[str, Any],
                    timings: dict[str, float]) -> dict[str, Any]:
    out = campaign.checkpoint(session_for(store_path), iteration, metrics, timings)
    get_run_logger().info("iteration %d checkpointed: %d/%d labels spent", iteration,
                          out["labelled"] + out["failed"], out["budget"])
    return out


@task(name="report", task_run_name="report", retries=0, **_COMMON)
def report_task(store_path: str, out_dir: str) -> dict[str, str]:
    """Write the PNG/markdown/HTML report next to the store (never fails the flow)."""
    log = get_run_logger()
    try:
        from alcore.report import write_report
    except ImportError as exc:
        log.warning("report skipped: %s", exc)
        return {}
    try:
        paths = write_report(store_path, out_dir)
    except Exception as exc:  # noqa: BLE001 - a report problem must not fail a finished campaign
        log.warning("report failed: %s", exc)
        return {}
    out = {k: str(v) for k, v in (paths or {}).items()}
    log.info("report written to %s", out_dir)
    return out


def _by_path(task_fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """A loop step ``(session, iteration, ...)`` that runs ``task_fn(store_path, iteration, ...)``."""

    def run(session: CampaignSession, iteration: int, *args: Any) -> dict[str, Any]:
        return task_fn(_key(session.store_path), iteration, *args)

    return run


def prefect_steps() -> campaign.Steps:
    """The campaign loop's steps as Prefect tasks."""
    return campaign.Steps(select=_by_path(select_task), label=_by_path(label_task),
                          train=_by_path(train_task), evaluate=_by_path(evaluate_task),
                          checkpoint=_by_path(checkpoint_task))
