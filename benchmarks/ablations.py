"""Ablations of the nngp strategy that matter for users (issue 6), on heat2d by default.

Each ablation changes one setting of the main study's configuration (T = 100 MC samples,
relative reg = 1e-2, greedy batch updates, shared masks, dropout 0.1, warm start) and is
compared, paired by seed, with random sampling under the *same* model settings:

* T in (10, 25, 100);  reg in (1e-3, 1e-2, 1e-1);  dropout in (0.02, 0.05, 0.1, 0.2);
* greedy batch update on vs off (``nngp`` with ``greedy=False`` = top-B posterior variance);
* shared vs per-point masks (``nngp`` vs ``nngp_pointwise``);
* warm start vs fresh training each iteration (the training-noise question of issue 8).

Runs reuse the main study's harness and folders (benchmarks/out/runs/<problem>/<variant>/),
so the defaults' runs (variant "default") are shared with the main study and everything is
resumable.  Prints the table as markdown and writes benchmarks/out/summary/ablations_<problem>.json
and docs/img/results_ablations_<problem>.png.

    python benchmarks/ablations.py [--problem heat2d] [--seeds 5] [--quick] [--only T10,reg1e-1]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.study import analysis  # noqa: E402
from benchmarks.study.__main__ import DEFAULTS, DOCS_IMG, METRIC, QUICK  # noqa: E402
from benchmarks.study.problems import OUT  # noqa: E402
from benchmarks.study.runner import RunConfig, run_jobs  # noqa: E402

# name -> (group, strategies to run, config overrides).  "default" is the main study's config.
ABLATIONS: dict[str, tuple[str, list[str], dict]] = {
    "default": ("reference", ["random", "nngp", "nngp_pointwise"], {}),
    "T10": ("T", ["nngp"], {"n_samples": 10}),
    "T25": ("T", ["nngp"], {"n_samples": 25}),
    "reg1e-3": ("reg", ["nngp"], {"reg": 1e-3}),
    "reg1e-1": ("reg", ["nngp"], {"reg": 1e-1}),
    "greedy_off": ("greedy / masks", ["nngp"], {"strategy_params": {"greedy": False}}),
    "dropout0.02": ("dropout", ["random", "nngp"], {"model": {"dropout": 0.02}}),
    "dropout0.05": ("dropout", ["random", "nngp"], {"model": {"dropout": 0.05}}),
    "dropout0.2": ("dropout", ["random", "nngp"], {"model": {"dropout": 0.2}}),
    "fresh": ("warm / fresh", ["random", "nngp"], {"warm_start": False}),
}


def rows(problem: str, variants: list[str], out: Path, quick: bool) -> list[tuple[str, str, str, str]]:
    """(group, row label, variant, strategy) rows, each compared with the random of its baseline variant."""
    base = "quick" if quick else "default"
    r = [("reference", "nngp (T=100, reg=1e-2, greedy, shared masks, dropout 0.1, warm)", base, "nngp"),
         ("greedy / masks", "nngp_pointwise (per-point masks)", base, "nngp_pointwise")]
    labels = {"T10": "nngp T=10", "T25": "nngp T=25", "reg1e-3": "nngp reg=1e-3", "reg1e-1": "nngp reg=1e-1",
              "greedy_off": "nngp greedy=False (top-B variance)", "dropout0.02": "nngp dropout=0.02", "dropout0.05": "nngp dropout=0.05",
              "dropout0.2": "nngp dropout=0.2", "fresh": "nngp fresh training"}
    for v in variants:
        if v == "default":
            continue
        g = ABLATIONS[v][0]
        vname = f"{v}_quick" if quick else v
        r.append((g, labels[v], vname, "nngp"))
        if "random" in ABLATIONS[v][1]:
            r.append((g, f"random {labels[v].split(' ', 1)[1]}", vname, "random"))
    return r


def baseline_of(variant: str, base: str) -> str:
    v = variant.removesuffix("_quick")
    return variant if v in ABLATIONS and "random" in ABLATIONS[v][1] and v != "default" else base


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", default="heat2d")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--only", help="comma list of ablation names (default: all)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-run", action="store_true")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    init, batch, iters, _ = DEFAULTS[a.problem]
    if a.quick:
        init, batch, iters = QUICK[a.problem]
    seeds = list(range(2 if a.quick and a.seeds == 5 else a.seeds))
    names = list(ABLATIONS) if not a.only else ["default", *[n for n in a.only.split(",") if n != "default"]]
    base = "quick" if a.quick else "default"
    for n in names:
        _, strategies, over = ABLATIONS[n]
        variant = base if n == "default" else (f"{n}_quick" if a.quick else n)
        cfg = RunConfig(**{**asdict(RunConfig(init, batch, iters)), **over, "variant": variant})
        if not a.no_run:
            run_jobs(a.problem, strategies, seeds, cfg, quick=a.quick, workers=a.workers, out=a.out)
    metric = METRIC[a.problem]
    table, summary = [], {}
    cache: dict[str, dict] = {}

    def curves(v: str) -> dict:
        if v not in cache:
            cache[v] = analysis.load_curves(a.out / "runs" / a.problem / v, metric)
        return cache[v]

    for group, label, variant, strat in rows(a.problem, names, a.out, a.quick):
        bvar = base if strat == "random" else baseline_of(variant, base)
        c, b = curves(variant).get(strat), curves(bvar).get("random")
        if c is None or b is None:
            continue
        common = sorted(set(c["seeds"]) & set(b["seeds"]) & set(seeds))
        pick = lambda d: {"seeds": common, "labels": d["labels"],  # noqa: E731
                          "score": d["score"][[d["seeds"].index(s) for s in common]]}
        s = analysis.summarise({"random": pick(b), "x": pick(c)})
        e = s["strategies"]["x"]
        summary[label] = {"group": group, "variant": variant, "strategy": strat,
                          "baseline_variant": bvar, "labels": s["labels"],
                          "mean": e["mean"], "std": e["std"], "paired": e["paired"],
                          "labels_to_random_final": e["labels_to_random_final"],
                          "frac_labels_to_random_final": e["frac_labels_to_random_final"],
                          "random_final": s["targets"]["random_final"], "noise": e["noise"]}
        pr = e["paired"]
        frac = e["frac_labels_to_random_final"]
        table.append(f"| {group} | {label} | {len(common)} | {e['mean'][-1]:.4f} ± {e['std'][-1]:.4f} | "
                     f"{s['targets']['random_final']:.4f} | {pr['geo_mean'][-1]:.3f} "
                     f"({pr['q10'][-1]:.3f}–{pr['q90'][-1]:.3f}) | {pr['t_p'][-1]:.3g} | "
                     f"{'not reached' if frac is None else f'{100 * frac:.0f}%'} |")
    head = ("| group | setting | seeds | final score (mean ± std) | its random's final | final ratio to random "
            "(geo-mean, 10–90%) | t-test p | labels to random's final |\n|---|---|---|---|---|---|---|---|")
    print(head + "\n" + "\n".join(table))
    tag = f"{a.problem}{'_quick' if a.quick else ''}"
    p = a.out / "summary" / f"ablations_{tag}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({"problem": a.problem, "metric": metric, "rows": summary,
                             "wall_s": time.perf_counter() - t0}, indent=1))
    print(p)
    if summary:
        groups = [g for g in dict.fromkeys(v["group"] for v in summary.values()) if g != "reference"]
        ncol = min(3, len(groups))
        nrow = -(-len(groups) // ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(5.0 * ncol, 3.9 * nrow), squeeze=False, sharey=True)
        for ax in axes.ravel()[len(groups):]:
            ax.set_visible(False)
        palette = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
        for ax, g in zip(axes.ravel(), groups):
            colours: dict[str, str] = {}
            for label, v in summary.items():
                if v["group"] not in (g, "reference"):
                    continue
                ref = v["group"] == "reference"
                key = v["variant"] + ("" if v["strategy"] in ("nngp", "random") else v["strategy"])
                c = "#d62728" if ref else colours.setdefault(key, palette[len(colours) % len(palette)])
                ls = "--" if v["strategy"] == "random" else "-"
                short = "nngp (defaults)" if ref else label
                ax.plot(v["labels"], v["paired"]["geo_mean"], ls, marker="o", ms=2.5, label=short, color=c)
            ax.axhline(1.0, color="k", lw=1)
            ax.set_title(g)
            ax.set_xlabel("labels")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        for row in axes:
            row[0].set_ylabel("score / random's (paired, geo-mean)")
        fig.suptitle(f"nngp ablations on {a.problem}: solid = nngp / random with the same model settings; "
                     "dashed = random with that setting / random with the defaults (paired, geo-mean)", fontsize=10)
        fig.tight_layout()
        img = (a.out / "img" if a.quick else DOCS_IMG) / f"results_ablations_{tag}.png"
        img.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(img, dpi=110)
        plt.close(fig)
        print(img)
    return 0


if __name__ == "__main__":
    sys.exit(main())
