"""Smoke tests of the learning-efficiency study harness (benchmarks/study): the analysis on
synthetic curves with known answers, and a 2-iteration paired run on a tiny problem with the
real DropoutMLP and the real strategies (seconds)."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.study import analysis  # noqa: E402
from benchmarks.study.problems import Problem  # noqa: E402
from benchmarks.study.runner import RunConfig, load_run, run_one  # noqa: E402


# ---------------------------------------------------------------- labels to target
def test_labels_to_target_interpolates_between_bracketing_points():
    labels = np.array([100, 200, 300, 400])
    curve = np.array([1.0, 0.8, 0.6, 0.5])
    # 0.7 lies halfway between 0.8 (200) and 0.6 (300)
    assert analysis.labels_to_target(labels, curve, 0.7) == pytest.approx(250.0)
    # exactly on a point
    assert analysis.labels_to_target(labels, curve, 0.6) == pytest.approx(300.0)
    # already below at the start, never reached
    assert analysis.labels_to_target(labels, curve, 1.5) == 100.0
    assert analysis.labels_to_target(labels, curve, 0.4) is None


def test_labels_to_target_uses_first_crossing_of_a_noisy_curve():
    labels = np.array([10, 20, 30, 40])
    curve = np.array([1.0, 0.5, 0.9, 0.4])
    assert analysis.labels_to_target(labels, curve, 0.75) == pytest.approx(15.0)


def test_labels_to_target_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="labels"):
        analysis.labels_to_target(np.arange(3), np.arange(4.0), 1.0)


# ---------------------------------------------------------------- paired statistics
def test_paired_ratio_recovers_a_constant_factor_and_counts_wins():
    rng = np.random.default_rng(0)
    base = np.exp(rng.normal(size=(8, 5)))            # very different seeds (training noise)
    jitter = np.exp(rng.normal(scale=0.01, size=(8, 5)))
    pr = analysis.paired_ratio(0.8 * base * jitter, base)
    assert np.allclose(pr["geo_mean"], 0.8, rtol=0.02)
    assert all(p < 1e-6 for p in pr["t_p"])           # the pairing removes the seed noise
    assert pr["wins"] == [8] * 5 and pr["n"] == [8] * 5
    assert all(lo <= g <= hi for lo, g, hi in zip(pr["q10"], pr["geo_mean"], pr["q90"]))


def test_paired_ratio_of_pure_noise_is_not_significant():
    rng = np.random.default_rng(1)
    base = np.exp(rng.normal(size=(10, 3)))
    other = base * np.exp(rng.normal(scale=0.1, size=(10, 3)))
    pr = analysis.paired_ratio(other, base)
    assert all(0.8 < g < 1.25 for g in pr["geo_mean"])
    assert sum(p < 0.05 for p in pr["t_p"]) <= 1


def test_summarise_targets_fractions_and_noise():
    labels = np.array([100.0, 200.0, 300.0])
    base = np.array([[1.0, 0.8, 0.6], [1.2, 0.9, 0.7]])
    better = np.array([[1.0, 0.6, 0.5], [1.2, 0.7, 0.55]])
    curves = {"random": {"seeds": [0, 1], "labels": labels, "score": base},
              "al": {"seeds": [0, 1], "labels": labels, "score": better}}
    s = analysis.summarise(curves, from_iteration=1)
    assert s["targets"]["random_final"] == pytest.approx(0.65)
    al = s["strategies"]["al"]
    # mean curve of "al": 1.1, 0.65, 0.525 -> reaches 0.65 at 200 labels = 2/3 of random's 300
    assert al["labels_to_random_final"] == pytest.approx(200.0)
    assert al["frac_labels_to_random_final"] == pytest.approx(2 / 3)
    assert al["beats_random_mean_from_it1"] is True
    assert al["paired"]["wins"] == [0, 2, 2]
    assert s["strategies"]["random"]["noise"]["iter_increases"] == 0
    table = analysis.markdown_table(s)
    assert "| al | 2 |" in table and "67%" in table


def test_summarise_refuses_curves_on_different_label_grids():
    curves = {"random": {"seeds": [0], "labels": np.array([1.0, 2.0]), "score": np.ones((1, 2))},
              "x": {"seeds": [0], "labels": np.array([1.0, 3.0]), "score": np.ones((1, 2))}}
    with pytest.raises(ValueError, match="label counts"):
        analysis.summarise(curves)


# ---------------------------------------------------------------- a tiny real run
def _tiny_problem() -> Problem:
    rng = np.random.default_rng(3)
    f = lambda X: np.column_stack([np.sin(3 * X[:, 0]) + X[:, 1] ** 2, X[:, 2] * X[:, 0]])  # noqa: E731
    pX, tX = rng.uniform(-1, 1, (160, 3)), rng.uniform(-1, 1, (80, 3))
    return Problem("tiny", pX, f(pX), tX, f(tX))


def test_paired_runs_share_initial_set_and_first_model(tmp_path):
    torch.set_num_threads(1)
    prob = _tiny_problem()
    cfg = RunConfig(initial=30, batch=20, iterations=2, n_samples=8,
                    model={"hidden": (16, 16), "epochs": 15, "min_steps": 100},
                    surrogate={"select": "fixed", "folds": 3})
    runs = {s: run_one(prob, s, 4, cfg) for s in ("random", "nngp")}
    r, n = runs["random"], runs["nngp"]
    assert r["picks"][0] == n["picks"][0]                        # same initial design
    assert r["records"][0]["rmse"] == n["records"][0]["rmse"]    # same first model
    for run in runs.values():
        assert [rec["n_labels"] for rec in run["records"]] == [30, 50, 70]
        allpicks = [i for p in run["picks"] for i in p]
        assert len(set(allpicks)) == 70 and max(allpicks) < 160
        assert all(len(rec["nrmse"]) == 2 and rec["nrmse_mean"] > 0 for rec in run["records"])
        # the product's fit: cross-validated (calibration) on the initial design, warm afterwards
        recs = run["records"]
        assert recs[0]["retuned"] and recs[0]["calib_source"] == "cv" and not recs[0]["warm_start"]
        assert recs[1]["warm_start"] and recs[1]["calib_source"] == "new_rows"   # 20 held-out new rows
        assert recs[2]["retuned"] and recs[2]["calib_source"] == "cv"            # 70 >= 2 x 30
        assert all(0.0 <= c <= 1.0 for rec in recs for c in rec["coverage90"])
        assert all(len(rec["nll"]) == len(rec["nll_at_rmse"]) == 2 for rec in recs)
    assert r["picks"][1] != n["picks"][1]                         # only acquisitions differ
    # the record round-trips through JSON and a changed config is refused on reload
    path = tmp_path / "s4.json"
    path.write_text(json.dumps(n))
    assert load_run(path, cfg)["seed"] == 4
    other = RunConfig(**{**asdict(cfg), "reg": 0.1})
    with pytest.raises(ValueError, match="another --variant"):
        load_run(path, other)
    # a run made under other effective model settings (defaults changed since) is refused too
    assert n["model_hparams"]["hidden"] == [16, 16] and n["model_hparams"]["surrogate"]["select"] == "fixed"
    path.write_text(json.dumps({**n, "model_hparams": {**n["model_hparams"], "lr": 1.0}}))
    with pytest.raises(ValueError, match="defaults changed"):
        load_run(path, cfg)


def test_run_refuses_a_budget_larger_than_the_pool():
    with pytest.raises(ValueError, match="exceeds the pool size"):
        run_one(_tiny_problem(), "random", 0, RunConfig(initial=100, batch=50, iterations=2))


def test_periphery_flags_picks_at_the_edges_and_in_the_tails():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2000, 3))
    X[:20, 0] = 8.0                                   # a 1% tail, like California's outliers
    r = np.linalg.norm((X - X.mean(0)) / X.std(0), axis=1)
    edge = [int(i) for i in np.argsort(-r)[:50]]
    rand = [int(i) for i in rng.choice(2000, 50, replace=False)]
    p = analysis.periphery(X, [[0, 1], edge, rand])
    assert p["norm_ratio"][0] > 2.0 and 0.7 < p["norm_ratio"][1] < 1.3
    assert p["tail_frac"][0] >= 20 / 50 and p["pool_tail_frac"] == pytest.approx(np.mean(np.any(
        np.abs((X - X.mean(0)) / X.std(0)) > 3, axis=1)))


def test_gp_arms_share_the_design_and_random_picks_with_alflow():
    pytest.importorskip("sklearn")
    prob = _tiny_problem()
    cfg = RunConfig(initial=20, batch=10, iterations=2, n_samples=8,
                    model={"hidden": (8,), "epochs": 5, "min_steps": 20}, surrogate={"select": "fixed", "folds": 3})
    alflow = run_one(prob, "random", 2, cfg)
    gp_r = run_one(prob, "gp_random", 2, cfg)
    gp_v = run_one(prob, "gp_variance", 2, cfg)
    assert gp_r["picks"] == alflow["picks"]                       # the same labels as alflow's random
    assert gp_v["picks"][0] == alflow["picks"][0] and gp_v["picks"][1] != gp_r["picks"][1]
    for run in (gp_r, gp_v):
        assert [r["n_labels"] for r in run["records"]] == [20, 30, 40]
        assert all(0 <= c <= 1 for r in run["records"] for c in r["coverage90"])
    # a smooth 3-input function: the GP learns it
    assert gp_r["records"][-1]["nrmse_mean"] < 0.5


def test_calibration_curves_summarise_coverage_and_nll(tmp_path):
    d = tmp_path / "random"
    d.mkdir()
    for s, cov in ((0, 0.8), (1, 1.0)):
        recs = [{"coverage90": [cov, cov], "nll": [1.0, 2.0], "nll_at_rmse": [0.5, 2.0]}]
        (d / f"s{s}.json").write_text(json.dumps({"records": recs}))
    c = analysis.calibration_curves(tmp_path)["random"]
    assert c["coverage90"] == [pytest.approx(0.9)] and c["nll_minus_ref"] == [pytest.approx(0.25)]
    assert c["coverage90_final_min_max"] == [0.8, 1.0]
