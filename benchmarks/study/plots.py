"""Figures of the study (matplotlib, Agg): learning curves and paired ratios to random."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402,F401

COLORS = {"random": "#000000", "mc_variance": "#1f77b4", "nngp": "#d62728", "nngp_pointwise": "#ff7f0e",
          "nngp_ivr": "#2ca02c", "nngp_lcmd": "#9467bd", "nngp_sample": "#8c564b",
          "gp_random": "#7f7f7f", "gp_variance": "#17becf"}
_EXTRA = ["#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#98df8a"]


def _color(name: str, i: int) -> str:
    return COLORS.get(name, _EXTRA[i % len(_EXTRA)])


def plot_curves(panels: dict[str, tuple[dict[str, Any], str]], path: Path, log_y: bool = True) -> Path:
    """One panel per study: mean score vs labels per strategy, band = ± 1 std over seeds."""
    n = len(panels)
    ncol = min(3, n)
    nrow = -(-n // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.6 * ncol, 4.4 * nrow), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for ax, (title, (summ, ylabel)) in zip(axes.ravel(), panels.items()):
        x = summ["labels"]
        for i, (name, e) in enumerate(summ["strategies"].items()):
            m, s = e["mean"], e["std"]
            c = _color(name, i)
            lw = 2.2 if name in ("random", "nngp", "nngp_lcmd") else 1.4
            ls = "--" if name.startswith("gp_") else "-"
            ax.plot(x, m, color=c, lw=lw, ls=ls, label=f"{name} ({len(e['seeds'])})", marker="o", ms=2.5)
            ax.fill_between(x, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)], color=c, alpha=0.10)
        ax.axhline(summ["targets"]["random_final"], color="#000000", lw=0.7, ls=":")
        if log_y:
            ax.set_yscale("log")
            fmt = matplotlib.ticker.FormatStrFormatter("%.3g")
            ax.yaxis.set_major_formatter(fmt)
            ax.yaxis.set_minor_formatter(fmt)
            ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.set_title(title)
        ax.set_xlabel("labels (simulator runs)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7.5, title="strategy (seeds)", title_fontsize=7.5)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_ratios(panels: dict[str, dict[str, Any]], path: Path) -> Path:
    """One panel per study: paired RMSE ratio to random (geometric mean, band = 10–90% of seeds)."""
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.2), squeeze=False)
    for ax, (title, summ) in zip(axes[0], panels.items()):
        x = summ["labels"]
        for i, (name, e) in enumerate(summ["strategies"].items()):
            if name == summ["baseline"] or "paired" not in e:
                continue
            pr = e["paired"]
            c = _color(name, i)
            ax.plot(x, pr["geo_mean"], color=c, lw=2.0 if name == "nngp" else 1.4, marker="o", ms=2.5,
                    label=name)
            ax.fill_between(x, pr["q10"], pr["q90"], color=c, alpha=0.10)
        ax.axhline(1.0, color="#000000", lw=1.0)
        ax.axhline(0.8, color="#000000", lw=0.7, ls=":", label="0.8")
        ax.set_title(title)
        ax.set_xlabel("labels (simulator runs)")
        ax.set_ylabel("RMSE / random's RMSE (paired by seed)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7.5)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
