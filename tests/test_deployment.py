"""The shipped deployment, end to end on a real Prefect server.

`prefect deploy` of deployments/prefect.yaml (a process work pool and a nightly cron), a
`prefect worker start` subprocess, `run_deployment`, then the run's state and artifacts read
back through the Prefect client. The server is the session's real `prefect server start`
(temporary PREFECT_HOME, SQLite, 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from campaign_helpers import counting_config, write_toml
from conftest import REPO

PREFECT = str(Path(sys.executable).parent / "prefect")


def _prefect(args: list[str], env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    r = subprocess.run([PREFECT, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"prefect {' '.join(args)}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r


def latest_versions(artifacts: list) -> dict:
    """The newest version of each artifact key.

    Every refresh of a keyed artifact is a new version, and the API's default order is by id,
    which says nothing about age: ``{a.key: a for a in arts}`` kept whichever version came last
    (issue 16: ``[8] == [8, 12]``, the metrics table of iteration 0). Pick by creation time.
    """
    newest: dict = {}
    for a in artifacts:
        if a.key not in newest or a.created > newest[a.key].created:
            newest[a.key] = a
    return newest


def test_latest_versions_picks_the_newest_whatever_the_order() -> None:
    from datetime import datetime, timedelta, timezone
    from types import SimpleNamespace

    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    versions = [SimpleNamespace(key="m", created=t0 + timedelta(seconds=s), data=s) for s in (0, 2, 1)]
    for order in (versions, versions[::-1], versions[1:] + versions[:1]):
        assert latest_versions(order)["m"].data == 2


def test_yaml_deploys_schedules_and_runs_on_a_process_worker(tmp_path: Path, prefect_api) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.client.schemas.sorting import ArtifactSort
    from prefect.deployments import run_deployment

    server = prefect_api
    env = server.env(PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_WORKER_PREFETCH_SECONDS="1",
                     ALFLOW_TEST_CALLS=str(tmp_path / "calls.log"))
    pool = "alflow-test-pool"
    _prefect(["work-pool", "create", pool, "--type", "process"], env)
    cfg = write_toml(tmp_path / "tiny.toml", counting_config(tmp_path, campaign={"name": "deployed"},
                                                             budget={"iterations": 1}))
    _prefect(["--no-prompt", "deploy", "--prefect-file", "deployments/prefect.yaml", "--name", "alflow-nightly",
              "--pool", pool, "--params", json.dumps({"config_path": str(cfg)})], env)

    async def deployment():
        async with get_client() as client:
            return await client.read_deployment_by_name("alflow-campaign/alflow-nightly")

    dep = asyncio.run(deployment())
    assert dep.entrypoint == "flows/campaign.py:campaign_flow"
    assert dep.work_pool_name == pool
    assert dep.parameters == {"config_path": str(cfg)}
    crons = [(s.schedule.cron, s.schedule.timezone, s.active) for s in dep.schedules]
    assert crons == [("0 22 * * *", "Europe/Berlin", True)]

    worker = subprocess.Popen([PREFECT, "worker", "start", "--pool", pool, "--type", "process"], env=env,
                              cwd=tmp_path, stdout=open(tmp_path / "worker.log", "wb"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        fr = run_deployment("alflow-campaign/alflow-nightly", timeout=240, poll_interval=1)
        log = (tmp_path / "worker.log").read_text(errors="replace")
        assert fr.state is not None and fr.state.is_completed(), f"{fr.state}\n{log[-3000:]}"
        assert fr.name == "deployed it 0-1"

        async def artifacts():
            async with get_client() as client:
                return await client.read_artifacts(
                    artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[fr.id])),
                    sort=ArtifactSort.CREATED_DESC)

        by_key = latest_versions(asyncio.run(artifacts()))
        assert {"deployed-metrics", "deployed-progress", "deployed-summary"} <= set(by_key)
        assert float(by_key["deployed-progress"].data) == pytest.approx(100.0)
        rows = json.loads(by_key["deployed-metrics"].data)
        assert [r["labels"] for r in rows] == [8, 12]
        assert (tmp_path / "store.h5").exists()
    finally:
        try:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(worker.pid, signal.SIGKILL)


def test_alflow_serve_registers_a_cron_deployment(tmp_path: Path, prefect_server) -> None:
    """`alflow serve CONFIG --cron ...` (flow.serve): the deployment and its schedule appear."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    cfg = write_toml(tmp_path / "c.toml", counting_config(tmp_path, campaign={"name": "Served Campaign"}))
    proc = subprocess.Popen([str(Path(sys.executable).parent / "alflow"), "serve", str(cfg), "--cron",
                             "0 22 * * *", "--timezone", "Europe/Berlin"], env=prefect_server.env(),
                            stdout=open(tmp_path / "serve.log", "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)

    async def find():
        async with get_client() as client:
            try:
                return await client.read_deployment_by_name("alflow-campaign/served-campaign")
            except Exception:  # noqa: BLE001 - not registered yet
                return None

    try:
        dep = None
        with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
            deadline = time.monotonic() + 120
            while dep is None and time.monotonic() < deadline and proc.poll() is None:
                dep = asyncio.run(find())
                time.sleep(0.5)
        log = (tmp_path / "serve.log").read_text(errors="replace")
        assert dep is not None, log[-3000:]
        assert dep.parameters == {"config_path": str(cfg.resolve())}
        assert [(s.schedule.cron, s.schedule.timezone) for s in dep.schedules] == [("0 22 * * *", "Europe/Berlin")]
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
