"""The campaign's surrogate (issue 15): model selection and calibration wired into train/evaluate.

What a user relies on: with ``select = "auto"`` the campaign cross-validates the search space on
the labels, stores the choice and every candidate's CV score, and ``alflow status`` (text and
JSON), the report and the Prefect summary show it; a resumed run continues with the choice the
store holds; the test metrics score the calibrated std (NLL, 90% coverage per output).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from alcore import campaign
from alcore.config import load_config
from alcore.model.selection import DEFAULT_SEARCH_SPACE, applicable
from alcore.store import CampaignStore
from campaign_helpers import counting_config, write_toml

#: the counting oracle has one output: the per-output candidates are left out
CANDIDATES = [c.name for c in applicable(DEFAULT_SEARCH_SPACE, 1)]


def _auto_cfg(folder: Path, **sections):
    """A tiny auto-selection campaign: 10 initial labels (enough for 5 folds), batches of 4."""
    model = {"select": "auto", "tuning_budget_s": 60.0, "hidden": [8, 8], "epochs": 20, "min_steps": 100}
    sections["model"] = model | sections.get("model", {})
    sections["budget"] = {"initial": 10, "iterations": 1} | sections.get("budget", {})
    raw = counting_config(folder, **sections)
    return load_config(write_toml(folder / "c.toml", raw))


def _surrogate_info(store_path: Path) -> dict[int, dict]:
    with CampaignStore.open(store_path, "r") as st:
        return {int(r["iteration"]): r["info"].get("surrogate") for r in st.iterations}


@pytest.fixture(scope="module")
def auto_store(tmp_path_factory) -> Path:
    """One finished auto campaign, shared by the read-only checks below."""
    folder = tmp_path_factory.mktemp("auto")
    cfg = _auto_cfg(folder, test={"size": 30})
    campaign.run(cfg)
    return cfg.store_path


def test_auto_selection_is_recorded_with_every_candidate_score(auto_store: Path) -> None:
    infos = _surrogate_info(auto_store)
    first, second = infos[0], infos[1]
    # iteration 0 tunes on the initial design: every candidate scored (or skipped), one chosen
    assert first["retuned"] is True
    cv = first["cv"]
    assert [c["name"] for c in cv["candidates"]] == CANDIDATES
    scored = {c["name"]: c["score"] for c in cv["candidates"] if not c["skipped"]}
    assert cv["chosen"] == min(scored, key=scored.get) == first["model_choice"]["name"]
    assert first["model_choice"]["n_selected"] == 10 and first["model_choice"]["select"] == "auto"
    assert first["calibration"]["source"] == "cv"
    # 14 labels < 2 x 10: iteration 1 keeps the choice, warm-starts, and does not cross-validate
    assert second["retuned"] is False and second["cv"] is None and second["warm_start"] is True
    assert second["model_choice"] == first["model_choice"]
    # the checkpoint is the chosen network, calibrated
    with CampaignStore.open(auto_store, "r") as st:
        state = st.load_checkpoint(1)
    assert list(state["arch_hidden"]) == list(first["model_choice"]["params"]["hidden"])
    assert "calib_std_scale" in state


def test_status_json_and_text_show_the_choice_and_the_cv_scores(auto_store: Path, capsys) -> None:
    from flows.cli import main

    assert main(["status", str(auto_store), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    chosen = _surrogate_info(auto_store)[0]["cv"]["chosen"]
    model = st["model"]
    assert model["model"] == chosen and model["select"] == "auto"
    assert model["tuned_iteration"] == 0 and model["tuned_labels"] == 10 and model["iteration"] == 1
    assert [c["name"] for c in model["cv"]["candidates"]] == CANDIDATES
    assert model["score"] == min(c["score"] for c in model["cv"]["candidates"] if not c["skipped"])
    assert [it["model"] for it in st["iterations"]] == [chosen, chosen]
    assert all(0.0 <= m["coverage90"] <= 1.0 for m in st["metrics"])

    assert main(["status", str(auto_store)]) == 0
    text = capsys.readouterr().out
    model_line = next(ln for ln in text.splitlines() if ln.strip().startswith("model:"))
    assert f"model: {chosen} (" in model_line and "chosen in iteration 0 (10 labels) by 5-fold CV" in model_line
    for c in model["cv"]["candidates"]:
        assert c["name"] in model_line
    assert "calibration: std x" in text and "cov90" in text
    cal_line = next(ln for ln in text.splitlines() if "calibration: std x" in ln)
    dof = model["calibration"]["dof"]
    assert ("Gaussian" if dof is None else f"Student-t, {dof:g} dof") in cal_line


def test_report_and_prefect_summary_name_the_choice(auto_store: Path, tmp_path: Path) -> None:
    from alcore.campaign.records import finished_iterations, iteration_records
    from alcore.report import write_report
    from flows.artifacts import summary_markdown

    chosen = _surrogate_info(auto_store)[0]["cv"]["chosen"]
    md = write_report(auto_store, tmp_path / "rep")["markdown"].read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| model |"))
    assert f"| model | {chosen} (" in row and "CV nRMSE" in row
    assert "| std calibration | std x" in md and "90% coverage" in md

    with CampaignStore.open(auto_store, "r") as st:
        recs = iteration_records(st)
    history = [{"iteration": i, "metrics": recs[i]["metrics"], "timings": recs[i]["timings"],
                "info": recs[i]["info"]} for i in finished_iterations(recs)]
    summary = summary_markdown("x", history, spent=14, budget=14, failed=0, state="complete", store="s.h5")
    assert f"**Model:** {chosen} (" in summary and "**Std calibration:** std x" in summary


def test_a_run_killed_after_train_records_the_fit_on_resume(tmp_path: Path) -> None:
    """The fit record travels with the checkpoint: killed between train and checkpoint, the
    resumed run reuses the model (no second fit) and still records the choice."""
    cfg = _auto_cfg(tmp_path, budget={"iterations": 0}, model={"tuning_budget_s": 0.5})  # the default only
    with campaign.open_campaign(cfg) as session:
        campaign.select(session, 0)
        campaign.label(session, 0)
        trained = campaign.train(session, 0)
    assert trained["retuned"] is True  # and then the process "dies": no evaluate, no checkpoint
    with CampaignStore.open(cfg.store_path, "r") as st:
        assert st.finished_iterations() == [] and st.checkpoint_iterations() == [0]
    with campaign.open_campaign(cfg) as session:
        out = campaign.drive(session)
    assert out["iterations_run"] == [0]
    info = _surrogate_info(cfg.store_path)[0]
    assert info["model_choice"]["name"] == trained["model"] and info["cv"]["chosen"] == trained["model"]


def test_the_resumed_run_takes_the_choice_from_the_store(tmp_path: Path) -> None:
    """Between tunings the next fit uses the choice recorded in the store, not one in memory:
    a record rewritten between two runs decides the network of the next iteration."""
    cfg = _auto_cfg(tmp_path, budget={"iterations": 0}, model={"tuning_budget_s": 0.5})
    campaign.run(cfg)
    with CampaignStore.open(cfg.store_path, "a") as st:
        rec = st.iterations[0]
        info = rec["info"]
        choice = info["surrogate"]["model_choice"]
        choice["name"] = "planted"
        choice["params"] = dict(choice["params"], hidden=[5, 6, 7])
        st.record_iteration(0, rec["metrics"], rec["timings"], info=info)
    campaign.run(_auto_cfg(tmp_path, budget={"iterations": 1}, model={"tuning_budget_s": 0.5}))
    with CampaignStore.open(cfg.store_path, "r") as st:
        assert list(st.load_checkpoint(1)["arch_hidden"]) == [5, 6, 7]
    after = _surrogate_info(cfg.store_path)[1]
    assert after["model_choice"]["name"] == "planted" and after["retuned"] is False
    assert after["warm_start"] is False  # the planted network differs from iteration 0's


def test_test_metrics_score_the_calibrated_std_per_output(tmp_path: Path) -> None:
    """NLL and 90% coverage per output and as means, from the checkpoint's calibrated std."""
    from alcore.metrics import regression_metrics
    from alcore.model import DropoutMLP
    from surrogate_helpers import run_campaign

    store = run_campaign(tmp_path)  # two outputs, a test set of 40, select = "fixed"
    with CampaignStore.open(store, "r") as st:
        recs = st.iterations
        X, y = np.asarray(st.test_X), np.asarray(st.test_y)
        seeds = campaign.Seeds.from_store(st.seeds, st.config["campaign"]["seed"])
        samples = st.config["acquisition"]["samples"]
        last = recs[-1]
        state = st.load_checkpoint(last["iteration"])
    for r in recs:
        m = r["metrics"]
        for key in ("nll", "coverage90", "nll_at_rmse"):
            assert len(m[f"{key}_per_output"]) == 2
            assert m[key] == pytest.approx(float(np.mean(m[f"{key}_per_output"])))
        assert all(0.0 <= c <= 1.0 for c in m["coverage90_per_output"])
        assert m["nll_at_rmse_per_output"] == pytest.approx(
            [0.5 * math.log(2 * math.pi * e * e) + 0.5 for e in m["rmse_per_output"]])
    # the last iteration's std is calibrated, and that calibrated std is what was scored
    model = DropoutMLP.from_state(state)
    scale, floor = model.calibration
    assert not (np.allclose(scale, 1.0) and np.allclose(floor, 0.0))
    T = min(samples, 50)
    mean, std = model.predict_with_std(X, T, seed=seeds.evaluation_seed(last["iteration"]))
    expect = regression_metrics(y, mean, std, dof=model.calibration_dof)   # with its fitted tails
    assert last["metrics"]["nll_per_output"] == pytest.approx(expect["nll_per_output"], rel=1e-6)
    assert last["metrics"]["coverage90_per_output"] == pytest.approx(expect["coverage90_per_output"])
    raw_std = model.sample(X, T, seed=seeds.evaluation_seed(last["iteration"])).std(axis=1)
    assert regression_metrics(y, mean, raw_std)["nll"] != pytest.approx(last["metrics"]["nll"], rel=1e-3)


def test_training_reports_epochs_to_the_progress_hooks(tmp_path: Path) -> None:
    """The terminal's epoch bar still moves: the final fit reports its epochs through the hooks."""
    from alcore.campaign import Hooks, set_hooks

    class Epochs(Hooks):
        def __init__(self) -> None:
            self.seen: list[tuple[int, int]] = []

        def train_epoch(self, epoch, n_epochs, train_loss, val_loss) -> None:
            self.seen.append((epoch, n_epochs))

    hooks = Epochs()
    old = set_hooks(hooks)
    try:
        campaign.run(load_config(write_toml(tmp_path / "c.toml", counting_config(tmp_path, budget={"iterations": 0}))))
    finally:
        set_hooks(old)
    assert hooks.seen and hooks.seen[-1][0] == hooks.seen[-1][1]  # up to the last epoch
