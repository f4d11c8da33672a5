"""The campaign as a Prefect 3 flow: ``campaign_flow(config_path)``.

The flow is a thin shell around :func:`alcore.campaign.drive`: each step of each iteration is a
Prefect task (``select-i`` → ``label-i`` → ``train-i`` → ``evaluate-i`` → ``checkpoint-i``),
artifacts are refreshed after every checkpoint, and the store does all the remembering, so
rerunning the same flow (or ``alflow run``) resumes. In ``[campaign] mode = "async"`` the flow
drives :func:`alcore.campaign.async_loop.drive_async` instead: task runs ``label-v`` (streaming),
``train-v`` (in the background), ``evaluate-v``, ``checkpoint-v`` per model version
(:mod:`flows.async_tasks`). Both modes publish a ``<name>-utilisation`` artifact.

Design choices (see docs and shared notes on Prefect/Dask):

* Oracle fan-out uses a plain Dask client created once per flow run inside this process (by the
  dispatcher), not ``DaskTaskRunner``: Prefect tasks on Dask workers would each start their own
  ephemeral API server, and the labels must be written as they arrive by the one store writer.
* Cancelling the run in the UI: a watcher thread polls the run's state; on ``Cancelling`` it asks
  the campaign to stop at the next step boundary, and the flow ends ``Cancelled``. Runs started
  by a worker are also killed by the worker; the store makes that safe.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run as runtime_flow_run
from prefect.states import Cancelled, Completed

from alcore import campaign
from alcore.campaign.async_loop import drive_async
from alcore.campaign.progress import campaign_progress, progress_rows
from alcore.failures import failed_share_note
from flows.artifacts import CampaignArtifacts
from flows.async_tasks import async_prefect_steps
from flows.events import FINISHED, STARTED, EventHooks, emit
from flows.run_name import provisional_name, rename_run, run_name
from flows.tasks import close_session, initialise_task, prefect_steps, report_task, session_for
from flows.utilisation_artifact import publish_utilisation


@contextmanager
def _stop_on_signals(session: campaign.CampaignSession) -> Iterator[list[int]]:
    """SIGINT (Ctrl-C) and SIGTERM ask the campaign to stop like ``alflow stop``.

    The labels in flight are stored, the flow run ends Cancelled, and the same command
    resumes. A second signal aborts at once (the store still keeps every acknowledged label).
    Yields the list of signals received. Signal handlers can only be set in the main thread;
    elsewhere (a flow run in a worker thread) this does nothing.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def on_signal(signum: int, frame: Any) -> None:
        if received:
            raise KeyboardInterrupt  # the user insists
        received.append(signum)
        session.request_stop()
        campaign.get_hooks().message(
            f"{signal.Signals(signum).name}: stopping after the evaluations in flight "
            "(send it again to abort now)")

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class _CancelWatcher:
    """Polls the flow run's state; a Cancelling/Cancelled run asks the campaign to stop."""

    def __init__(self, session: campaign.CampaignSession, interval: float = 1.0):
        self.session = session
        self.interval = interval
        self.cancelled = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._run_id = runtime_flow_run.id

    def start(self) -> "_CancelWatcher":
        if self._run_id:
            self._thread = threading.Thread(target=self._loop, name="alflow-cancel-watch", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        from prefect.client.orchestration import get_client

        try:
            with get_client(sync_client=True) as client:
                while not self._stop.wait(self.interval):
                    try:
                        state = client.read_flow_run(self._run_id).state
                    except Exception:  # noqa: BLE001 - the API may be briefly unreachable
                        continue
                    if state is not None and (state.is_cancelling() or state.is_cancelled()):
                        self.cancelled = True
                        self.session.request_stop()
                        return
        except Exception:  # noqa: BLE001 - watching is best effort
            return

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


@flow(
    name="alflow-campaign",
    flow_run_name=provisional_name,  # renamed `<campaign> it <first>-<last>` once the store is open
    description="Active-learning campaign: select, label (Dask), train, evaluate, checkpoint.",
    persist_result=False,
    log_prints=False,
)
def campaign_flow(config_path: str) -> Any:
    """Run or resume the campaign described by the TOML file at ``config_path``."""
    summary = initialise_task(config_path)
    rename_run(run_name(summary))
    logger = get_run_logger()  # after the rename: its lines carry the run's final name
    store_path = summary["store"]
    campaign.get_hooks().message(
        f"start-up: store {'created' if summary['created'] else 'opened'}; iteration "
        f"{summary['next_iteration']} of {summary['last_iteration']} starts")
    session = session_for(store_path)
    name = session.config.campaign.name
    arts = CampaignArtifacts(name, session.config.label_budget)
    watcher = _CancelWatcher(session)
    state_text = "running"

    mode = session.config.campaign.mode
    started = time.time()

    def publish(state: str, report: str | None = None, running: bool = True) -> None:
        try:
            h = campaign.history(session)
            pace = campaign_progress(session.store, budget=session.config.label_budget,
                                     deadline=session.deadline, running=running)
            arts.update(h["iterations"], spent=h["spent"], failed=h["failed"], state=state, store=store_path,
                        report=report, progress=progress_rows(pace),
                        dashboard=session.dashboard_link, failure_groups=h["failure_groups"])
            publish_utilisation(name, mode, session.store, session.workers_now, since=started)
        except Exception as exc:  # noqa: BLE001 - monitoring must never stop a campaign
            logger.warning("could not update artifacts: %s", exc)

    signals: list[int] = []
    hooks_before = campaign.set_hooks(EventHooks(campaign.get_hooks(), name))
    emit(STARTED, name, {"store": store_path})
    try:
        watcher.start()
        publish("starting")
        with _stop_on_signals(session) as signals:
            if mode == "async":
                result = drive_async(session, steps=async_prefect_steps(),
                                     on_version=lambda rec: publish(f"running (model version {rec['iteration']} done)"))
            else:
                result = campaign.drive(session, steps=prefect_steps(),
                                        on_iteration=lambda rec: publish(f"running (iteration {rec['iteration']} done)"))
        reason = result["stop_reason"]
        state_text = f"stopped: {reason}" if reason not in ("iterations", "budget spent") else "complete"
        note = failed_share_note(result["failed"], result["labelled"] + result["failed"])
        state_text += f", {note}" if note else ""
        if signals:
            state_text = f"stopped on {signal.Signals(signals[0]).name} (resume with the same command)"
        elif watcher.cancelled:
            state_text = "cancelled (resume with the same command)"
        publish(state_text, report=str(Path(summary["report_dir"]) / "report.html"), running=False)
    except Exception as exc:
        state_text = f"failed: {type(exc).__name__}: {exc} (the store is intact; rerun to resume)"
        publish(state_text, running=False)
        raise
    finally:
        emit(FINISHED, name, {"state": state_text, "store": store_path})
        campaign.set_hooks(hooks_before)
        watcher.close()
        close_session(store_path)
    # A cancelling run may start no new task runs (the server aborts them): report in the flow.
    report = (report_task.fn if watcher.cancelled else report_task)(store_path, summary["report_dir"])
    result["report"] = report
    result["report_dir"] = summary["report_dir"]
    result["state"] = state_text
    result["signal"] = signal.Signals(signals[0]).name if signals else None
    logger.info("campaign %s %s: %d labelled, %d failed; store %s", name, state_text,
                result["labelled"], result["failed"], store_path)
    if watcher.cancelled or signals:
        return Cancelled(message=f"campaign {state_text}", data=result)
    return Completed(message=state_text, data=result)
