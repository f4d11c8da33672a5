"""The Prefect flow in this process against a real (session) Prefect server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from campaign_helpers import counting_config, write_toml
from flows.artifacts import artifact_key, sparkline, summary_markdown


def _read_artifacts(key_prefix: str) -> dict[str, list]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def go():
        async with get_client() as client:
            out = {}
            for what in ("metrics", "progress", "summary"):
                key = f"{key_prefix}-{what}"
                out[what] = await client.read_artifacts(
                    artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            return out

    return asyncio.run(go())


def test_flow_runs_tasks_per_iteration_and_publishes_artifacts(tmp_path: Path, prefect_api, monkeypatch) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.campaign import campaign_flow

    monkeypatch.setenv("ALFLOW_TEST_CALLS", str(tmp_path / "calls.log"))
    cfg = write_toml(tmp_path / "c.toml", counting_config(tmp_path, campaign={"name": "Flow Test"}))
    state = campaign_flow(str(cfg), return_state=True)
    assert state.is_completed(), state
    result = state.result()
    assert result["labelled"] == 16 and result["stop_reason"] == "iterations"
    assert Path(result["report_dir"]).exists()

    async def runs():
        async with get_client() as client:
            fr = await client.read_flow_run(state.state_details.flow_run_id)
            trs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[fr.id])))
            return fr, trs

    fr, trs = asyncio.run(runs())
    assert fr.name == "Flow Test it 0-2"
    names = {t.name for t in trs}
    for i in range(3):
        for step in ("select", "label", "train", "evaluate", "checkpoint"):
            assert f"{step}-{i}" in names
    assert all(t.state.is_completed() for t in trs)

    arts = _read_artifacts("flow-test")
    table = arts["metrics"]
    assert table, "no metrics table artifact"
    latest = max(table, key=lambda a: a.created)
    import json

    rows = json.loads(latest.data) if isinstance(latest.data, str) else latest.data
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    assert [r["labels"] for r in rows] == [8, 12, 16]
    progress = arts["progress"]
    assert len(progress) == 1 and float(progress[0].data) == pytest.approx(100.0)
    summary = max(arts["summary"], key=lambda a: a.created).data
    assert "Best training RMSE" in summary, summary  # the config has no test set
    assert "| 2 | 16 |" in summary, summary
    # the only image is the learning curve inside the artifact (a browser cannot load a file)
    assert "](data:image/svg+xml;base64," in summary, summary
    assert summary.count("](") == 1, summary
    assert "Labels per hour" in summary and "ETA to the budget" in summary, summary
    # created once per run and updated in place: one version of each key per run
    assert len(arts["summary"]) == 1 and len(table) == 1, (len(arts["summary"]), len(table))
    assert "After iteration 2: complete" in arts["summary"][0].description

    # a second run resumes: no iteration left, the run is named after the range it had
    state2 = campaign_flow(str(cfg), return_state=True)
    assert state2.is_completed() and state2.result()["iterations_run"] == []


def test_sparkline_and_markdown_helpers() -> None:
    line = sparkline([3.0, 2.0, 1.0])
    assert line[0] == "█" and line[2] == "▁" and line[1] in "▄▅"
    assert sparkline([1.0, None, 1.0]) == "▅ ▅"
    assert sparkline([]) == ""
    assert artifact_key("Heat 2D / quick", "summary") == "heat-2d-quick-summary"
    md = summary_markdown("x", [{"iteration": 0, "metrics": {"rmse": 0.5, "labelled": 10}, "timings": {"label": 1.0}}],
                          spent=10, budget=20, failed=0, state="running", store="/s.h5")
    assert "10 / 20" in md and "0.5" in md


def test_cancelling_the_flow_run_stops_cleanly_and_rerun_resumes(tmp_path: Path, prefect_api, monkeypatch) -> None:
    """Cancel in the UI (= set the run Cancelling through the API): the campaign stops at the
    next step boundary, the run ends Cancelled, and the same flow run again finishes the job."""
    import threading
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.states import Cancelling

    from alcore.store import CampaignStore
    from campaign_helpers import calls
    from flows.campaign import campaign_flow

    log = tmp_path / "calls.log"
    monkeypatch.setenv("ALFLOW_TEST_CALLS", str(log))
    cfg = write_toml(tmp_path / "c.toml", counting_config(
        tmp_path, campaign={"name": "cancel-me"}, oracle={"params": {"sleep": 0.3}},
        acquisition={"batch_size": 16}))
    box: dict = {}
    th = threading.Thread(target=lambda: box.update(state=campaign_flow(str(cfg), return_state=True)))
    th.start()
    deadline = time.monotonic() + 120
    while sum(calls(log)[0].values()) < 8 + 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # wait until the first batch after the initial design is being labelled

    async def cancel():
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["cancel-me it 0-2"])))
            assert len(runs) == 1
            await client.set_flow_run_state(runs[0].id, Cancelling(), force=True)

    asyncio.run(cancel())
    th.join(timeout=120)
    assert not th.is_alive()
    state = box["state"]
    assert state.is_cancelled(), state
    with CampaignStore.open(tmp_path / "store.h5", "r") as st:
        labelled_after_cancel = st.n_labelled
        assert 8 < labelled_after_cancel < 8 + 16  # stopped inside the batch
        assert st.finished_iterations() == [0]
    state2 = campaign_flow(str(cfg), return_state=True)
    assert state2.is_completed(), state2
    assert state2.result()["labelled"] == 8 + 2 * 16
    starts, _ = calls(log)
    assert max(starts.values()) == 1  # in-process oracle: nothing was in flight, nothing paid twice
