"""The asynchronous campaign as a Prefect flow: task runs per model version, utilisation artifact."""

from __future__ import annotations

import asyncio
from pathlib import Path

from campaign_helpers import counting_config, write_toml


def test_async_flow_shows_versions_and_labelling_as_task_runs(tmp_path: Path, prefect_api, monkeypatch) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

    from flows.campaign import campaign_flow

    monkeypatch.setenv("ALFLOW_TEST_CALLS", str(tmp_path / "calls.log"))
    cfg = write_toml(tmp_path / "c.toml", counting_config(
        tmp_path, campaign={"name": "Async Flow", "mode": "async"},
        model={"select": "fixed", "hidden": [16, 16], "epochs": 30, "min_steps": 200, "device": "cpu"},
        oracle={"params": {"sleep": 0.02}}))
    state = campaign_flow(str(cfg), return_state=True)
    assert state.is_completed(), state
    result = state.result()
    assert result["labelled"] == 16 and result["stop_reason"] == "budget spent"
    versions = result["iterations_run"]
    assert versions == list(range(len(versions))) and len(versions) >= 2

    async def read():
        async with get_client() as client:
            trs = await client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
            arts = await client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["async-flow-utilisation"])))
            return trs, arts

    trs, arts = asyncio.run(read())
    names = {t.name for t in trs}
    for v in versions:
        for step in ("label", "train", "evaluate", "checkpoint"):
            assert f"{step}-{v}" in names, (step, v, sorted(names))
    assert all(t.state.is_completed() for t in trs), [(t.name, t.state.type) for t in trs]
    # the training ran in the background, as a task run of the flow run
    train = [t for t in trs if t.name.startswith("train-")]
    assert all(t.flow_run_id == state.state_details.flow_run_id for t in train)
    assert arts, "no utilisation artifact"
    text = max(arts, key=lambda a: a.created).data
    assert "Utilisation (busy / available worker-seconds)" in text and "Labels per hour" in text
