"""Tables of a study: mean ± std curves, labels to reach a target, paired ratios to random.

Definitions (also stated in docs/results.md):

* **score**: test RMSE.  Single-output problems: RMSE in the output's units.  Multi-output:
  the mean over outputs of RMSE / std(test y) ("nRMSE"), so no output dominates by its scale.
* **labels to target**: the first crossing of ``target`` by the *mean* curve over seeds,
  linearly interpolated between the two label counts around it; ``None`` = not reached.
* **paired ratio**: per seed s and iteration i, r = score(strategy) / score(random) with the
  same initial set and model seeds; summarised by the geometric mean exp(mean log r), the
  10–90% quantiles of r, and a two-sided one-sample t-test of log r against 0 (and the sign
  count: seeds where the strategy is better).  "Beyond noise" means p < 0.05 in the t-test.
* **training noise** of a strategy: seed-to-seed coefficient of variation of the score at
  each iteration, and iteration-to-iteration mean |Δ log score| plus the number of steps
  where the score got *worse* although labels were added.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats


def score_of(rec: dict[str, Any], metric: str) -> float:
    """The score of one iteration record: 'nrmse_mean', or 'rmse' (first output's RMSE)."""
    if metric == "nrmse_mean":
        return float(rec["nrmse_mean"])
    if metric == "rmse":
        return float(rec["rmse"][0])
    raise ValueError(f"metric must be 'nrmse_mean' or 'rmse'; got {metric!r}")


def load_curves(run_dir: Path, metric: str) -> dict[str, dict[str, Any]]:
    """strategy -> {"seeds": [..], "labels": (I,), "score": (S, I)} from ``runs/<problem>/<variant>``."""
    out: dict[str, dict[str, Any]] = {}
    for sdir in sorted(Path(run_dir).iterdir()) if Path(run_dir).is_dir() else []:
        files = sorted(sdir.glob("s*.json"), key=lambda p: int(p.stem[1:]))
        if not sdir.is_dir() or not files:
            continue
        seeds, rows, labels = [], [], None
        for f in files:
            d = json.loads(f.read_text())
            seeds.append(int(d["seed"]))
            rows.append([score_of(r, metric) for r in d["records"]])
            labels = [r["n_labels"] for r in d["records"]]
        out[sdir.name] = {"seeds": seeds, "labels": np.array(labels, float), "score": np.array(rows)}
    return out


def calibration_curves(run_dir: Path) -> dict[str, dict[str, list[float]]]:
    """strategy -> per-iteration means over seeds (and over outputs) of the uncertainty checks:
    ``coverage90`` (share of test points in the central 90% interval), ``nll``, and
    ``nll_minus_ref`` = NLL - NLL of a Gaussian with std = the observed RMSE (<= 0.3 is the goal).
    Also the min/max over seeds of the final coverage."""
    out: dict[str, dict[str, list[float]]] = {}
    for sdir in sorted(Path(run_dir).iterdir()) if Path(run_dir).is_dir() else []:
        files = sorted(sdir.glob("s*.json"), key=lambda p: int(p.stem[1:]))
        rows = [json.loads(f.read_text())["records"] for f in files]
        if not rows or "coverage90" not in rows[0][0]:
            continue
        cov = np.array([[np.mean(r["coverage90"]) for r in recs] for recs in rows])
        nll = np.array([[np.mean(r["nll"]) for r in recs] for recs in rows])
        ref = np.array([[np.mean(r["nll_at_rmse"]) for r in recs] for recs in rows])
        cov_out = np.array([[r["coverage90"] for r in recs] for recs in rows])   # (S, I, k)
        out[sdir.name] = {"coverage90": cov.mean(axis=0).tolist(), "nll": nll.mean(axis=0).tolist(),
                          "nll_minus_ref": (nll - ref).mean(axis=0).tolist(),
                          "coverage90_final_min_max": [float(cov[:, -1].min()), float(cov[:, -1].max())],
                          "coverage90_per_output_final": cov_out[:, -1].mean(axis=0).tolist(),
                          "nll_minus_ref_per_output_final": (np.array([[r["nll"] for r in recs] for recs in rows])
                                                             - np.array([[r["nll_at_rmse"] for r in recs]
                                                                         for recs in rows]))[:, -1].mean(axis=0).tolist()}
    return out


def labels_to_target(labels: np.ndarray, curve: np.ndarray, target: float) -> float | None:
    """Labels at which ``curve`` (decreasing-ish, over ``labels``) first reaches ``target``.

    Linear interpolation between the last point above and the first at/below the target;
    the first label count if the curve starts below it; None if it never gets there.
    """
    labels = np.asarray(labels, float)
    curve = np.asarray(curve, float)
    if labels.shape != curve.shape or labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels {labels.shape} and curve {curve.shape} must be equal 1-d shapes")
    hit = np.flatnonzero(curve <= target)
    if hit.size == 0:
        return None
    i = int(hit[0])
    if i == 0:
        return float(labels[0])
    x0, x1, y0, y1 = labels[i - 1], labels[i], curve[i - 1], curve[i]
    return float(x0 + (y0 - target) / (y0 - y1) * (x1 - x0))


def paired_ratio(score: np.ndarray, base: np.ndarray) -> dict[str, list[float]]:
    """Per-iteration summary of the paired ratios score/base, both (S, I) on the same seeds."""
    score, base = np.asarray(score, float), np.asarray(base, float)
    if score.shape != base.shape or score.ndim != 2:
        raise ValueError(f"paired_ratio needs equal (S, I) arrays; got {score.shape} and {base.shape}")
    lr = np.log(score / base)
    S = lr.shape[0]
    out: dict[str, list[float]] = {"geo_mean": [], "q10": [], "q90": [], "log_std": [], "t_p": [],
                                   "wins": [], "n": []}
    for i in range(lr.shape[1]):
        col = lr[:, i]
        out["geo_mean"].append(float(np.exp(col.mean())))
        out["q10"].append(float(np.exp(np.quantile(col, 0.1))))
        out["q90"].append(float(np.exp(np.quantile(col, 0.9))))
        sd = float(col.std(ddof=1)) if S > 1 else float("nan")
        out["log_std"].append(sd)
        if S > 1 and sd > 0:
            p = float(stats.ttest_1samp(col, 0.0).pvalue)
        else:
            p = float("nan")
        out["t_p"].append(p)
        out["wins"].append(int(np.sum(col < 0)))
        out["n"].append(S)
    return out


def noise(score: np.ndarray) -> dict[str, Any]:
    """Seed-to-seed CV per iteration and iteration-to-iteration jumps of (S, I) scores."""
    score = np.asarray(score, float)
    d = np.diff(np.log(score), axis=1)
    cv = score.std(axis=0, ddof=1) / score.mean(axis=0) if score.shape[0] > 1 else np.full(score.shape[1], np.nan)
    return {"seed_cv": [float(v) for v in cv], "seed_cv_mean": float(np.nanmean(cv)) if np.any(np.isfinite(cv)) else float("nan"),
            "iter_mean_abs_dlog": float(np.mean(np.abs(d))) if d.size else float("nan"),
            "iter_increases": int(np.sum(d > 0)), "iter_steps": int(d.size)}


def summarise(curves: dict[str, dict[str, Any]], baseline: str = "random",
              from_iteration: int = 3) -> dict[str, Any]:
    """The study's tables as a JSON-serialisable dict (see the module docstring)."""
    if baseline not in curves:
        raise ValueError(f"no runs of the baseline {baseline!r}; have {sorted(curves)}")
    base = curves[baseline]
    labels = base["labels"]
    bmean = base["score"].mean(axis=0)
    targets = {"random_final": float(bmean[-1]), "random_mid": float(bmean[len(bmean) // 2])}
    out: dict[str, Any] = {"baseline": baseline, "labels": labels.tolist(), "targets": targets,
                           "strategies": {}}
    for name, c in curves.items():
        if not np.array_equal(c["labels"], labels):
            raise ValueError(f"{name}: label counts {c['labels']} differ from {baseline}'s {labels}")
        m, sd = c["score"].mean(axis=0), c["score"].std(axis=0, ddof=1) if len(c["seeds"]) > 1 else np.zeros(len(labels))
        entry: dict[str, Any] = {"seeds": c["seeds"], "mean": m.tolist(), "std": sd.tolist(),
                                 "noise": noise(c["score"]), "_score": c["score"].tolist()}
        for tname, tv in targets.items():
            n_t = labels_to_target(labels, m, tv)
            entry[f"labels_to_{tname}"] = n_t
            entry[f"frac_labels_to_{tname}"] = None if n_t is None else n_t / labels[-1 if tname == "random_final" else len(labels) // 2]
        common = sorted(set(c["seeds"]) & set(base["seeds"]))
        if common:
            a = c["score"][[c["seeds"].index(s) for s in common]]
            b = base["score"][[base["seeds"].index(s) for s in common]]
            pr = paired_ratio(a, b)
            entry["paired"] = pr
            entry["paired_seeds"] = common
            bm = b.mean(axis=0)
            entry[f"beats_random_mean_from_it{from_iteration}"] = bool(np.all(a.mean(axis=0)[from_iteration:] < bm[from_iteration:]))
            entry["final_ratio"] = pr["geo_mean"][-1]
            entry["final_t_p"] = pr["t_p"][-1]
            entry["final_wins"] = pr["wins"][-1]
        out["strategies"][name] = entry
    return out


def _fmt(v: float | None, spec: str = ".4f") -> str:
    return "not reached" if v is None else format(v, spec)


def markdown_table(summary: dict[str, Any], unit: str = "") -> str:
    """One markdown table per study: final score, labels to random's final score, paired ratio."""
    labels = summary["labels"]
    rows = [f"| strategy | seeds | final {unit}RMSE (mean ± std) | labels to random's final | "
            f"% of random's | final ratio to random (geo-mean, 10–90%) | t-test p | seeds better |",
            "|---|---|---|---|---|---|---|---|"]
    for name, e in summary["strategies"].items():
        n_t = e["labels_to_random_final"]
        frac = e["frac_labels_to_random_final"]
        pr = e.get("paired")
        ratio = (f"{pr['geo_mean'][-1]:.3f} ({pr['q10'][-1]:.3f}–{pr['q90'][-1]:.3f})" if pr else "–")
        p = f"{pr['t_p'][-1]:.3g}" if pr and np.isfinite(pr["t_p"][-1]) else "–"
        wins = f"{pr['wins'][-1]}/{pr['n'][-1]}" if pr else "–"
        rows.append(f"| {name} | {len(e['seeds'])} | {e['mean'][-1]:.4f} ± {e['std'][-1]:.4f} | "
                    f"{_fmt(n_t, '.0f')} | {'–' if frac is None else f'{100 * frac:.0f}%'} | {ratio} | {p} | {wins} |")
    rows.append(f"\nlabels per iteration: {', '.join(str(int(v)) for v in labels)}")
    return "\n".join(rows)


def ratio_table(summary: dict[str, Any]) -> str:
    """Geometric-mean paired ratio to random at every iteration (one row per strategy)."""
    labels = summary["labels"]
    head = "| strategy | " + " | ".join(str(int(v)) for v in labels) + " |"
    rows = [head, "|---|" + "---|" * len(labels)]
    for name, e in summary["strategies"].items():
        pr = e.get("paired")
        if not pr or name == summary["baseline"]:
            continue
        cells = []
        for g, p in zip(pr["geo_mean"], pr["t_p"]):
            mark = "*" if np.isfinite(p) and p < 0.05 else ""
            cells.append(f"{g:.3f}{mark}")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def arms_table(summary: dict[str, Any], every: int = 2) -> str:
    """Mean score ± std over seeds per arm at every ``every``-th label count (and the last),
    with the paired ratio alflow / GP for the same kind of sampling (random vs gp_random, the
    best alflow AL arm vs gp_variance)."""
    labels = summary["labels"]
    cols = sorted(set(range(0, len(labels), every)) | {len(labels) - 1})
    head = "| arm | " + " | ".join(str(int(labels[i])) for i in cols) + " |"
    rows = [head, "|---|" + "---|" * len(cols)]
    for name, e in summary["strategies"].items():
        rows.append(f"| {name} | " + " | ".join(f"{e['mean'][i]:.4f} ± {e['std'][i]:.4f}" for i in cols) + " |")
    return "\n".join(rows)


def versus(summary: dict[str, Any], a: str, b: str) -> dict[str, list[float]] | None:
    """Paired ratio a / b per iteration (same seeds), as :func:`paired_ratio`; None if either is missing."""
    sa, sb = summary["strategies"].get(a), summary["strategies"].get(b)
    if not sa or not sb or "_score" not in sa or "_score" not in sb:
        return None
    common = sorted(set(sa["seeds"]) & set(sb["seeds"]))
    if len(common) < 2:
        return None
    A = np.array(sa["_score"])[[sa["seeds"].index(s) for s in common]]
    B = np.array(sb["_score"])[[sb["seeds"].index(s) for s in common]]
    out = paired_ratio(A, B)
    out["seeds"] = common
    return out


def periphery(pool_X: np.ndarray, picks: list[list[int]]) -> dict[str, Any]:
    """Where the acquisitions went: are they at the edges / in the tails of the pool?

    With z = pool inputs standardised by the pool's mean and std, per acquisition iteration:
    ``norm_ratio`` = mean ‖z‖ of the picks / mean ‖z‖ of the pool (1 = like random, > 1 =
    towards the periphery) and ``tail_frac`` = share of picks with some |z_j| > 3 (the pool's
    own share is ``pool_tail_frac``).  ``picks[0]`` (the random initial set) is skipped.
    """
    X = np.asarray(pool_X, float)
    z = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
    norms = np.linalg.norm(z, axis=1)
    tail = np.any(np.abs(z) > 3.0, axis=1)
    ref = float(norms.mean())
    return {"norm_ratio": [float(norms[p].mean() / ref) for p in picks[1:]],
            "tail_frac": [float(tail[p].mean()) for p in picks[1:]],
            "pool_tail_frac": float(tail.mean())}


def picks_summary(run_dir: Path, pool_X: np.ndarray) -> dict[str, dict[str, Any]]:
    """strategy -> periphery of its picks, averaged over seeds (see :func:`periphery`)."""
    out: dict[str, dict[str, Any]] = {}
    for sdir in sorted(Path(run_dir).iterdir()) if Path(run_dir).is_dir() else []:
        per = [periphery(pool_X, json.loads(f.read_text())["picks"]) for f in sorted(sdir.glob("s*.json"))]
        if not per:
            continue
        out[sdir.name] = {
            "norm_ratio": np.mean([p["norm_ratio"] for p in per], axis=0).tolist(),
            "tail_frac": np.mean([p["tail_frac"] for p in per], axis=0).tolist(),
            "pool_tail_frac": per[0]["pool_tail_frac"],
        }
    return out


def picks_table(summary: dict[str, Any]) -> str:
    """Where each strategy's picks went (mean over acquisition iterations and seeds)."""
    rows = ["| strategy | ‖z‖ of picks / pool's (1 = random-like) | share of picks with some abs z > 3 |",
            "|---|---|---|"]
    pool_tail = None
    for name, e in summary["strategies"].items():
        p = e.get("picks")
        if not p:
            continue
        pool_tail = p["pool_tail_frac"]
        rows.append(f"| {name} | {np.mean(p['norm_ratio']):.2f} | {100 * np.mean(p['tail_frac']):.1f}% |")
    if pool_tail is not None:
        rows.append(f"\n(share of the pool with some abs z > 3: {100 * pool_tail:.1f}%)")
    return "\n".join(rows)
