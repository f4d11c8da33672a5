"""Failures seen, explained and avoided (issue 13): reasons where users look, a learned
estimate of where the oracle fails, and acquisition that avoids it."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from alcore import campaign
from alcore.campaign.summary import status
from alcore.config import check_resume, load_config
from alcore.failures import (describe_counts, failed_share_note, failures_markdown, group_failures,
                             headline, stderr_tail)
from alcore.feasibility import fit_failure_model, from_store
from alcore.store import CampaignStore, StoreStatus
from alcore.strategies import AcquisitionContext, select
from alcore.strategies.base import MIN_SUCCESS_PROB, feasible_candidates
from campaign_helpers import counting_config, write_toml

PY = sys.executable

# Fails deterministically where x0 > 0.5 (a quarter of [-1, 1]^2), like a diverging solver.
FAILING_ORACLE = textwrap.dedent(
    """
    import numpy as np

    def f(x):
        if x[0] > 0.5:
            raise RuntimeError(f"solver diverged at x0={x[0]:.3f}")
        return float(np.sin(3.0 * x[0]) + 0.5 * np.cos(2.0 * x[1]))
    """
)


def _config(tmp_path: Path, name: str = "c", **sections):
    (tmp_path / "failing.py").write_text(FAILING_ORACLE)
    raw = counting_config(tmp_path, **sections)
    raw["campaign"]["store"] = f"{name}.h5"
    raw["oracle"]["name"] = sections.get("oracle", {}).get("name", "failing.py:f")
    raw["model"]["select"] = "fixed"
    return load_config(write_toml(tmp_path / f"{name}.toml", raw))


def _acquired_failures(store_path: Path) -> tuple[int, int]:
    with CampaignStore.open(store_path, "r") as st:
        acquired = np.asarray(st.iteration_requested) >= 1
        failed = np.asarray(st.status) == StoreStatus.FAILED
        return int(np.count_nonzero(acquired & failed)), int(np.count_nonzero(acquired))


# ------------------------------------------------------------------------------ reasons
def test_headline_keeps_the_stderr_line_of_a_command_oracle_failure() -> None:
    from oracles import Dispatcher
    from oracles.command import CommandOracle

    script = ("import sys; print('step 1 ok', file=sys.stderr); "
              "print('ERROR: pressure negative in cell 17', file=sys.stderr); sys.exit(3)")
    oracle = CommandOracle([PY, "-c", script], bounds=[[0, 1]])
    with Dispatcher(workers=0, retries=0) as d:
        (r,) = list(d.evaluate(oracle, [[0.5]]))
    assert not r.ok and r.kind == "error"
    assert "step 1 ok" in stderr_tail(r.reason)
    line = headline(r.reason)
    assert "\n" not in line
    assert "exited with status 3" in line and "ERROR: pressure negative in cell 17" in line


def test_group_failures_counts_by_reason_and_kind_most_frequent_first() -> None:
    reasons = ["exception: RuntimeError: diverged", "timeout: evaluation exceeded 5 s",
               "exception: RuntimeError: diverged", "exception: RuntimeError: diverged\nmore"]
    groups = group_failures([4, 9, 11, 20], reasons, ["error", "timeout", "error", "error"])
    assert [(g["reason"], g["kind"], g["count"]) for g in groups] == [
        ("exception: RuntimeError: diverged", "error", 3), ("timeout: evaluation exceeded 5 s", "timeout", 1)]
    assert groups[0]["indices"] == [4, 11, 20]
    assert describe_counts({"a": 1, "b": 5}) == "5× b; 1× a"
    assert failed_share_note(18, 100) == "18% of evaluations failed (18 of 100)"
    assert failed_share_note(0, 100) == ""


def test_failures_markdown_escapes_pipes_and_shows_stderr() -> None:
    reason = "command: 'sim' exited with status 1\n--- stderr (tail) ---\nbad | value\nfatal: diverged"
    lines = failures_markdown(group_failures([7], [reason], ["error"]))
    text = "\n".join(lines)
    assert "fatal: diverged" in lines[2] and "bad | value" in text
    assert lines[2].count(" | ") == 3  # the reason's own pipe is escaped inside the table


# -------------------------------------------------------------------------- feasibility
def test_classifier_learns_a_failing_slab_and_ignores_random_failures() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((80, 3))
    bad = X[:, 0] > 0.8
    model = fit_failure_model(X[~bad], X[bad], np.zeros(3), np.ones(3))
    G = rng.random((4000, 3))
    p = model.success_prob(G)
    inside = G[:, 0] > 0.85
    outside = G[:, 0] < 0.75
    assert p[inside].mean() < 0.3 and p[outside].mean() > 0.9
    assert np.isfinite(model.lengths[0]) and not np.isfinite(model.lengths[1:]).any()
    assert model.depends_on_x
    # failures with no structure in x: (nearly) the same P everywhere, nothing to avoid
    rand = rng.random(80) < 0.08
    rand[:3] = True
    flat = fit_failure_model(X[~rand], X[rand], np.zeros(3), np.ones(3))
    q = flat.success_prob(G)
    assert not flat.depends_on_x and q.max() - q.min() < 0.05 and q.min() > 0.85
    assert fit_failure_model(X, X[:0], np.zeros(3), np.ones(3)) is None


def test_feasible_candidates_drop_the_almost_certain_failures_but_fill_a_batch() -> None:
    p = np.array([0.9, 0.01, 0.5, MIN_SUCCESS_PROB / 2, 1.0])
    assert feasible_candidates(p, 2).tolist() == [0, 2, 4]
    assert feasible_candidates(p, 4).tolist() == [0, 2, 3, 4]


class _LinearModel:
    """A stand-in with MC samples whose variance grows with x0 (isolates the weighting)."""

    def sample(self, X, T, seed, shared_masks=True):
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((1, T, 1))
        return (1.0 + 3.0 * X[:, :1, None]) * z + 0.01 * rng.standard_normal((len(X), T, 1))


@pytest.mark.parametrize("name", ["mc_variance", "nngp", "nngp_ivr", "nngp_lcmd", "nngp_sample", "random"])
def test_every_strategy_avoids_candidates_that_will_fail(name: str) -> None:
    rng = np.random.default_rng(1)
    pool = rng.random((120, 2))
    ctx = dict(model=_LinearModel(), X_train=rng.random((6, 2)) * [0.5, 1.0], X_pool=pool,
               batch_size=8, n_samples=40, seed=2)
    plain = select(name, AcquisitionContext(**ctx))
    p = np.where(pool[:, 0] > 0.7, 0.02, 0.95)  # the large-variance side fails
    avoided = select(name, AcquisitionContext(**ctx, success_prob=p))
    assert len(set(avoided.indices.tolist())) == 8
    assert not np.any(pool[avoided.indices, 0] > 0.7)
    if name != "random":  # variance-seeking rules went there without the weights
        assert np.any(pool[plain.indices, 0] > 0.7)


@pytest.mark.parametrize("name", ["mc_variance", "nngp", "nngp_ivr", "nngp_lcmd", "nngp_sample"])
def test_certain_success_everywhere_changes_no_pick(name: str) -> None:
    rng = np.random.default_rng(3)
    pool = rng.random((90, 2))
    ctx = dict(model=_LinearModel(), X_train=rng.random((5, 2)), X_pool=pool, batch_size=6,
               n_samples=30, seed=4)
    a = select(name, AcquisitionContext(**ctx))
    b = select(name, AcquisitionContext(**ctx, success_prob=np.ones(90)))
    assert a.indices.tolist() == b.indices.tolist()


# ----------------------------------------------------------------------------- campaigns
def test_no_failures_no_change_in_picks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A campaign where nothing fails picks exactly the same points with avoid_failures on or off."""
    monkeypatch.chdir(tmp_path)
    picks = {}
    for avoid in (True, False):
        cfg = _config(tmp_path, name=f"ok-{avoid}", oracle={"name": "counting_oracle.py:f"},
                      acquisition={"strategy": "nngp_lcmd", "avoid_failures": avoid})
        campaign.run(cfg)
        with CampaignStore.open(cfg.store_path, "r") as st:
            assert len(st.failed_indices()) == 0
            picks[avoid] = [list(r["selected"]) for r in st.iterations]
    assert picks[True] == picks[False]


@pytest.fixture(scope="module")
def failing_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    """The same small campaign on an oracle failing in a quarter of the box, avoidance off/on."""
    tmp = tmp_path_factory.mktemp("failing")
    out = {}
    for avoid in (False, True):
        cfg = _config(tmp, name=f"fail-{avoid}", pool={"size": 200, "design": "sobol"},
                      test={"size": 40},
                      acquisition={"strategy": "nngp_lcmd", "batch_size": 6, "avoid_failures": avoid},
                      budget={"initial": 12, "iterations": 4})
        campaign.run(cfg)
        out[avoid] = cfg.store_path
    return out


def test_avoidance_reduces_failed_picks(failing_runs: dict[bool, Path]) -> None:
    off, n_off = _acquired_failures(failing_runs[False])
    on, n_on = _acquired_failures(failing_runs[True])
    assert n_off == n_on == 24
    assert off >= 6 and on <= off // 2, (off, on)
    with CampaignStore.open(failing_runs[True], "r") as st:
        model = from_store(st)
        assert model is not None and np.isfinite(model.lengths[0])


def test_status_groups_failures_and_lists_each_failed_point(failing_runs: dict[bool, Path]) -> None:
    st = status(failing_runs[False])
    fails = st["failures"]
    assert sum(g["count"] for g in fails["groups"]) == st["failed"] > 0
    assert all(g["kind"] == "error" and g["reason"].startswith("exception: RuntimeError: solver diverged")
               for g in fails["groups"])
    assert len(fails["points"]) == st["failed"]
    p = fails["points"][0]
    assert set(p) == {"index", "inputs", "reason", "kind", "attempts", "worker", "iteration"}
    assert set(p["inputs"]) == {"x0", "x1"} and p["inputs"]["x0"] > 0.5
    assert p["kind"] == "error" and p["attempts"] == 1 and p["worker"] == "local"
    # the test set was labelled by the oracle: its failures are reported too
    test = fails["test_set"]
    with CampaignStore.open(failing_runs[False], "r") as store:
        kept = len(store.test_X)
    assert test["sent"] == 40 and test["failed"] == 40 - kept
    assert test["failed"] > 0 and all(q["inputs"][0] > 0.5 for q in test["points"])


def test_status_cli_text_and_json(failing_runs: dict[bool, Path], capsys: pytest.CaptureFixture) -> None:
    from flows.cli import main

    assert main(["status", str(failing_runs[False])]) == 0
    text = capsys.readouterr().out
    assert "failed points by reason" in text and "solver diverged" in text and "[error;" in text
    assert "test set:" in text and "points failed when it was labelled" in text
    assert main(["status", str(failing_runs[False]), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["failures"]["points"][0]["reason"].startswith("exception: RuntimeError")


def test_summary_says_how_many_evaluations_failed(failing_runs: dict[bool, Path]) -> None:
    from flows.artifacts import summary_markdown

    with campaign.open_campaign(load_config(failing_runs[False].with_suffix(".toml"))) as session:
        h = campaign.history(session)
    md = summary_markdown("c", h["iterations"], spent=h["spent"], budget=36, failed=h["failed"],
                          state="complete", store="s.h5", failure_groups=h["failure_groups"])
    pct = round(100 * h["failed"] / h["spent"])
    assert f"| Failed evaluations | {h['failed']} of {h['spent']} ({pct}%) |" in md
    assert "## Failures by reason" in md and "solver diverged" in md


def test_avoid_failures_may_change_on_resume() -> None:
    old = {"acquisition": {"strategy": "nngp_lcmd", "avoid_failures": True}}
    assert check_resume(old, {"acquisition": {"strategy": "nngp_lcmd", "avoid_failures": False}}) == [
        "acquisition.avoid_failures"]


def test_report_shows_the_stderr_tail_of_a_program_failure(tmp_path: Path) -> None:
    from alcore.report import write_report

    rng = np.random.default_rng(0)
    X = rng.random((30, 2))
    reason = ("command: 'sim' exited with status 2\n--- stderr (tail) ---\n"
              "reading mesh\nnegative jacobian in element 42")
    with CampaignStore.create(tmp_path / "s.h5", config={"campaign": {"name": "r"}},
                              oracle_info={"name": "sim", "input_names": ["a", "b"], "output_names": ["y"]},
                              pool_X=X, seeds={"pool": 0}) as st:
        st.mark_requested(np.arange(6), 0, np.zeros(6))
        for i in range(4):
            st.record_label(i, np.array([float(i)]), wall_time=1.0, worker="w0")
        for i in (4, 5):
            st.record_failure(i, reason, wall_time=1.0, worker="w1")
        st.record_iteration(0, {"on": "train", "rmse": 0.1, "labelled": 4, "failed": 2})
    out = write_report(tmp_path / "s.h5", tmp_path / "rep")
    md = out["markdown"].read_text()
    assert "exited with status 2 — stderr: negative jacobian in element 42" in md
    assert "reading mesh" in md  # the tail itself, not only its last line
    assert "reading mesh" in out["html"].read_text()


def test_label_step_returns_the_reasons_of_its_batch(tmp_path: Path) -> None:
    cfg = _config(tmp_path, name="lab", pool={"size": 64, "design": "sobol"},
                  budget={"initial": 20, "iterations": 1})
    with campaign.open_campaign(cfg) as session:
        campaign.select(session, 0)
        out = campaign.label(session, 0)
    assert out["failed"] > 0
    assert sum(out["failure_reasons"].values()) == out["failed"]
    assert all(r.startswith("exception: RuntimeError: solver diverged") for r in out["failure_reasons"])
    assert describe_counts(out["failure_reasons"]).count("×") >= 1


def test_flow_state_message_summary_and_log_name_the_failures(tmp_path: Path, prefect_api) -> None:
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, LogFilter, LogFilterFlowRunId

    from flows.campaign import campaign_flow

    (tmp_path / "failing.py").write_text(FAILING_ORACLE)
    raw = counting_config(tmp_path, campaign={"name": "Fail Flow"}, oracle={"name": "failing.py:f"},
                          model={"select": "fixed"}, budget={"initial": 8, "iterations": 1})
    state = campaign_flow(str(write_toml(tmp_path / "f.toml", raw)), return_state=True)
    assert state.is_completed(), state
    result = state.result()
    assert result["failed"] > 0
    assert state.message.startswith("complete, ") and "% of evaluations failed" in state.message

    async def read():
        async with get_client() as client:
            arts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["fail-flow-summary"])))
            logs = await client.read_logs(log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))
            return arts, logs

    for _ in range(20):  # logs reach the API in the background
        arts, logs = asyncio.run(read())
        if any("evaluation(s) failed:" in log.message for log in logs):
            break
        import time

        time.sleep(0.5)
    summary = max(arts, key=lambda a: a.created).data
    assert f"**State:** {state.message}" in summary and "## Failures by reason" in summary
    assert "solver diverged" in summary
    lines = [log.message for log in logs if "evaluation(s) failed:" in log.message]
    assert lines and "× exception: RuntimeError: solver diverged" in lines[0]


def test_only_failures_of_kind_error_are_learned(tmp_path: Path) -> None:
    from alcore.feasibility import learned_failures

    X = np.random.default_rng(0).random((20, 2))
    with CampaignStore.create(tmp_path / "k.h5", config={}, oracle_info={"name": "o"}, pool_X=X,
                              seeds={"pool": 0}) as st:
        st.mark_requested(np.arange(8), 0, np.zeros(8))
        for i in range(4):
            st.record_label(i, np.array([1.0]))
        st.record_failure(4, "timeout: evaluation exceeded 5 s", kind="timeout")
        st.record_failure(5, "worker died while evaluating this point", kind="worker_died")
        assert learned_failures(st).size == 0 and from_store(st) is None  # reported, not learned
        st.record_failure(6, "exception: RuntimeError: diverged", kind="error")
        assert learned_failures(st).tolist() == [6]
        model = from_store(st)
        assert model is not None and model.failed.sum() == 1 and model.failed.size == 5


def test_select_step_says_it_avoids_failures(tmp_path: Path) -> None:
    cfg = _config(tmp_path, name="sel", pool={"size": 64, "design": "sobol"},
                  budget={"initial": 16, "iterations": 1})
    with campaign.open_campaign(cfg) as session:
        campaign.select(session, 0)
        out0 = campaign.label(session, 0)
        campaign.train(session, 0)
        out = campaign.select(session, 1)
    assert out0["failed"] > 0
    assert out["avoiding"]["failed_points"] == out0["failed"]
    assert 0 <= out["avoiding"]["skipped"] <= 64 - 16
