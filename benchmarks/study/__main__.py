"""Command line of the learning-efficiency study.

    python -m benchmarks.study --problem heat2d                 # run (resumable) + summarise
    python -m benchmarks.study --problem california --strategies nngp_ivr,nngp_lcmd,nngp_sample
    python -m benchmarks.study --problem heat2d --quick         # a check in a few minutes
    python -m benchmarks.study --report                         # figures + docs/results/*.json

Prints the summary as JSON (last line: the path of the summary file) and a markdown table.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from benchmarks.study import analysis, plots
from benchmarks.study.problems import OUT, ROOT, SPECS, load_problem
from benchmarks.study.runner import RunConfig, run_jobs

PAPER = ["random", "mc_variance", "nngp", "nngp_pointwise"]
NEW = ["nngp_ivr", "nngp_lcmd", "nngp_sample"]
GP = ["gp_random", "gp_variance"]
#: issue 15's study: alflow's random / nngp / nngp_lcmd beside the two GP arms
SURROGATE = ["random", "nngp", "nngp_lcmd", *GP]
# (initial, batch, iterations, default strategies) per problem; why these in docs/results.md
DEFAULTS = {
    "california": (500, 250, 10, SURROGATE),
    "california_log": (500, 250, 10, PAPER),
    "heat2d": (100, 100, 10, SURROGATE),
    "burgers1d": (50, 50, 10, SURROGATE),
    "ishigami": (50, 50, 10, SURROGATE),
}
QUICK = {"california": (200, 100, 2), "california_log": (200, 100, 2), "heat2d": (50, 50, 2),
         "burgers1d": (30, 30, 2), "ishigami": (30, 30, 2)}
METRIC = {"california": "rmse", "california_log": "rmse", "heat2d": "nrmse_mean", "burgers1d": "nrmse_mean",
          "ishigami": "nrmse_mean"}
YLABEL = {"rmse": "test RMSE (100k USD)", "nrmse_mean": "test RMSE / std(y), mean over outputs"}
TITLES = {"california": "California housing (8 inputs, 500 + 10x250)",
          "california_log": "California, log1p heavy-tailed inputs",
          "heat2d": "heat2d (9 inputs, 2 outputs, 100 + 10x100)",
          "burgers1d": "burgers1d (4 inputs, 4 outputs, 50 + 10x50)",
          "ishigami": "Ishigami (3 inputs; not tuned on), 50 + 10x50"}
DOCS_RESULTS = ROOT / "docs" / "results"
DOCS_IMG = ROOT / "docs" / "img"


def build_config(a: argparse.Namespace) -> RunConfig:
    init, batch, iters, _ = DEFAULTS[a.problem]
    if a.quick:
        init, batch, iters = QUICK[a.problem]
    model = json.loads(a.model_json) if a.model_json else {}
    if a.dropout is not None:
        model["dropout"] = a.dropout
    surrogate = json.loads(a.surrogate_json) if a.surrogate_json else {}
    # no wall-clock truncation of the model search by default: a loaded machine must not change
    # which model a seed gets (each record keeps the selection's seconds)
    surrogate.setdefault("tuning_budget_s", a.tuning_budget)
    variant = a.variant or ("quick" if a.quick else "default")
    return RunConfig(initial=a.initial or init, batch=a.batch or batch,
                     iterations=a.iterations if a.iterations is not None else iters,
                     n_samples=a.T, reg=a.reg, strategy_params=json.loads(a.params) if a.params else {},
                     model=model, surrogate=surrogate, warm_start=not a.fresh, variant=variant)


def summarise(problem: str, variant: str, out: Path = OUT, strategies: list[str] | None = None) -> dict:
    """Summary of runs/<problem>/<variant> (restricted to ``strategies`` if given), written to out/summary/."""
    curves = analysis.load_curves(out / "runs" / problem / variant, METRIC.get(problem, "nrmse_mean"))
    if strategies:
        curves = {k: curves[k] for k in strategies if k in curves}
    order = [s for s in PAPER + NEW if s in curves] + [s for s in curves if s not in PAPER + NEW]
    summ = analysis.summarise({k: curves[k] for k in order})
    summ.update({"problem": problem, "variant": variant, "metric": METRIC.get(problem, "nrmse_mean")})
    summ["calibration"] = {k: v for k, v in analysis.calibration_curves(out / "runs" / problem / variant).items()
                           if not strategies or k in strategies}
    try:
        pool_X = load_problem(problem, quick=variant.startswith("quick"), verbose=False).pool_X
        picks = analysis.picks_summary(out / "runs" / problem / variant, pool_X)
        for k, v in picks.items():
            if k in summ["strategies"]:
                summ["strategies"][k]["picks"] = v
    except FileNotFoundError:  # no label cache here (summaries from copied runs): skip
        pass
    p = out / "summary" / f"{problem}_{variant}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(summ, indent=1))
    return summ


HEADLINE = ("california", "heat2d", "burgers1d", "ishigami")
# (problem, variant, panel title) of the remedies / training-settings figure
VARIANTS = (("california", "es_lr1e-3", "California, start-of-session training\n(early stopping, lr 1e-3)"),
            ("california_log", "default", "California, log1p of 4 heavy-tailed inputs"),
            ("heat2d", "dropout0.02", "heat2d, dropout 0.02"),
            ("burgers1d", "dropout0.02", "burgers1d, dropout 0.02"),
            ("california", "fresh", "California, fresh training each iteration"))


def _ratio_text(geo_mean: float, p: float, digits: int) -> str:
    """A paired ratio with a star where p < 0.05 (the convention of every ratio table here)."""
    return f"{geo_mean:.{digits}f}{'*' if p < 0.05 else ''}"


def gp_comparison(summ: dict) -> str:
    """alflow vs the GP with the same kind of sampling, paired by seed, per label count."""
    rows = []
    pairs = [("random", "gp_random")] + [(s, "gp_variance") for s in summ["strategies"]
                                         if s not in ("random", "gp_random", "gp_variance")]
    labels = summ["labels"]
    for a, b in pairs:
        v = analysis.versus(summ, a, b)
        if v is None:
            continue
        if not rows:
            rows = ["| alflow arm / GP arm (paired geo-mean, * p < 0.05) | " + " | ".join(str(int(x)) for x in labels)
                    + " |", "|---|" + "---|" * len(labels)]
        cells = [_ratio_text(g, p, 3) for g, p in zip(v["geo_mean"], v["t_p"])]
        rows.append(f"| {a} / {b} ({len(v['seeds'])} seeds) | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _ratio_cell(summ: dict, a: str, b: str) -> str:
    """a / b at the final budget, or a dash where either arm is missing."""
    v = analysis.versus(summ, a, b)
    return "–" if v is None else _ratio_text(v["geo_mean"][-1], v["t_p"][-1], 2)


def headline_row(summ: dict) -> str:
    """One README row: final error per arm, the paired ratios at the final budget (* p < 0.05),
    the range of 90% coverage over label counts and the worst NLL excess, for random / nngp_lcmd."""
    st, cal = summ["strategies"], summ.get("calibration") or {}

    def final(arm: str) -> str:
        return f"{st[arm]['mean'][-1]:.4g}" if arm in st else "–"

    def calib(arm: str) -> str:
        c = cal.get(arm)
        if not c:
            return "–"
        return (f"{min(c['coverage90']):.2f}–{max(c['coverage90']):.2f}, "
                f"{max(c['nll_minus_ref']):+.2f}")

    main_arms = [a for a in st if a != "nngp"] or list(st)
    seeds = str(min(len(st[a]["seeds"]) for a in main_arms))
    if "nngp" in st and str(len(st["nngp"]["seeds"])) != seeds:
        seeds += f"; `nngp` {len(st['nngp']['seeds'])}"
    return (f"| {summ['problem']} ({seeds}) | {int(summ['labels'][-1])} | {final('random')} | {final('gp_random')} | "
            f"{_ratio_cell(summ, 'random', 'gp_random')} | {final('nngp_lcmd')} | {final('gp_variance')} | "
            f"{_ratio_cell(summ, 'nngp_lcmd', 'gp_variance')} | {_ratio_cell(summ, 'nngp_lcmd', 'random')} | "
            f"{_ratio_cell(summ, 'nngp', 'random')} | {calib('random')} | {calib('nngp_lcmd')} |")


HEADLINE_HEADER = ("| problem (paired seeds) | labels | alflow `random` | GP random | ratio | alflow `nngp_lcmd` | "
                   "GP greedy-variance AL | ratio | `nngp_lcmd` / `random` | `nngp` / `random` | "
                   "`random`: 90% coverage, worst NLL excess | `nngp_lcmd`: same |\n|---|---|---|---|---|---|---|---|---|---|---|---|")


def calibration_table(summ: dict) -> str:
    cal = summ.get("calibration") or {}
    if not cal:
        return ""
    labels = summ["labels"]
    rows = ["| arm | check | " + " | ".join(str(int(x)) for x in labels) + " |", "|---|---|" + "---|" * len(labels)]
    for name, c in cal.items():
        rows.append(f"| {name} | 90% coverage | " + " | ".join(f"{v:.3f}" for v in c["coverage90"]) + " |")
        rows.append(f"| {name} | NLL - NLL(RMSE) | " + " | ".join(f"{v:+.2f}" for v in c["nll_minus_ref"]) + " |")
    return "\n".join(rows)


def print_tables(summ: dict) -> None:
    print(analysis.markdown_table(summ))
    print("\n" + analysis.ratio_table(summ))
    print("\n" + analysis.arms_table(summ))
    print("\n" + gp_comparison(summ))
    print("\n" + calibration_table(summ))
    print("\n" + analysis.picks_table(summ) + "\n")


def _publish(prob: str, variant: str, out: Path) -> dict:
    summ = summarise(prob, variant, out)
    DOCS_RESULTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(out / "summary" / f"{prob}_{variant}.json", DOCS_RESULTS / f"{prob}_{variant}.json")
    print(f"## {prob} ({variant})\n")
    print_tables(summ)
    return summ


def report(out: Path = OUT, variant: str = "default") -> None:
    """Headline figures (the three problems) and the variants figure; summaries to docs/results/."""
    curves, ratios, rows = {}, {}, []
    for prob in HEADLINE:
        if (out / "runs" / prob / variant).is_dir():
            summ = _publish(prob, variant, out)
            curves[TITLES[prob]] = (summ, YLABEL[summ["metric"]])
            ratios[TITLES[prob]] = summ
            rows.append(headline_row(summ))
    if rows:
        print("## headline (README)\n\n" + HEADLINE_HEADER + "\n" + "\n".join(rows) + "\n")
    if curves:
        print(plots.plot_curves(curves, DOCS_IMG / f"results_curves_{variant}.png"))
        print(plots.plot_ratios(ratios, DOCS_IMG / f"results_ratios_{variant}.png"))
    if variant != "default":
        return
    vcurves = {}
    for prob, var, title in VARIANTS:
        if (out / "runs" / prob / var).is_dir():
            summ = _publish(prob, var, out)
            vcurves[title] = (summ, YLABEL[summ["metric"]])
    for p in (out / "summary").glob("ablations_*.json"):
        if "quick" not in p.name:
            shutil.copy(p, DOCS_RESULTS / p.name)
    if vcurves:
        print(plots.plot_curves(vcurves, DOCS_IMG / "results_variants.png"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.study", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", choices=sorted(SPECS))
    ap.add_argument("--strategies", help="comma list (default: per problem, see DEFAULTS)")
    ap.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10)")
    ap.add_argument("--seed-list", help="explicit comma list of seeds (overrides --seeds)")
    ap.add_argument("--initial", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--iterations", type=int)
    ap.add_argument("--T", type=int, default=100, help="MC-dropout samples per acquisition")
    ap.add_argument("--reg", type=float, default=1e-2, help="relative reg of the NNGP strategies")
    ap.add_argument("--params", help="strategy params as JSON, e.g. '{\"greedy\": false}'")
    ap.add_argument("--dropout", type=float)
    ap.add_argument("--model-json", help="DropoutMLP kwargs as JSON (over its defaults)")
    ap.add_argument("--surrogate-json", help="fit_surrogate settings as JSON, e.g. '{\"select\": \"fixed\"}'")
    ap.add_argument("--tuning-budget", type=float, default=1e9,
                    help="seconds for model selection per tuning (default: no truncation, reproducible)")
    ap.add_argument("--fresh", action="store_true", help="retrain from scratch each iteration (default: warm)")
    ap.add_argument("--variant", help="folder name for this configuration (default: 'default'/'quick')")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="2 seeds, 2 iterations, small pools")
    ap.add_argument("--no-run", action="store_true", help="only summarise existing runs")
    ap.add_argument("--report", action="store_true", help="figures + docs/results/ from all problems")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    if a.report:
        report(a.out, a.variant or "default")
        return 0
    if not a.problem:
        ap.error("--problem is required (or --report)")
    cfg = build_config(a)
    strategies = (a.strategies.split(",") if a.strategies
                  else (["random", "nngp_lcmd", "gp_random"] if a.quick else DEFAULTS[a.problem][3]))
    if "random" not in strategies:
        strategies = ["random", *strategies]        # the paired baseline is always run
    seeds = ([int(s) for s in a.seed_list.split(",")] if a.seed_list
             else list(range(2 if a.quick and a.seeds == 10 else a.seeds)))
    t0 = time.perf_counter()
    if not a.no_run:
        run_jobs(a.problem, strategies, seeds, cfg, quick=a.quick, workers=a.workers, out=a.out)
    summ = summarise(a.problem, cfg.variant, a.out, strategies)
    summ["wall_s"] = time.perf_counter() - t0
    print(json.dumps({k: summ[k] for k in ("problem", "variant", "metric", "labels", "targets", "wall_s")}))
    print_tables(summ)
    print(a.out / "summary" / f"{a.problem}_{cfg.variant}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
