"""The report's figures, drawn with matplotlib's object API on the Agg canvas.

Why the object API (``Figure`` + ``FigureCanvasAgg``) instead of pyplot: no global state, no
backend selection, safe in threads and in Prefect tasks, and nothing to close. Every function
takes :class:`~alcore.report.data.CampaignData` (one or several campaigns) and returns a
``Figure``; :func:`save_png` turns it into a file. Each figure carries a title, axis labels with
units and a legend, because these images are read by people who did not run the campaign.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from alcore.failures import headline

from .data import FAILED, INITIAL, LABELLED, CampaignData

DPI = 110
#: One colour per compared campaign (colour-blind safe, Okabe-Ito).
STRATEGY_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
                   "#F0E442", "#000000")
POOL_COLOR = "#c8c8c8"
INITIAL_COLOR = "#222222"
FAILED_COLOR = "#d62728"


def format_duration(seconds: float) -> str:
    """Seconds as a short human duration (s, min or h)."""
    if not math.isfinite(seconds):
        return "-"
    if seconds >= 3600:
        return f"{seconds / 3600:.2f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.2f} s"


def _input_label(c: CampaignData, j: int) -> str:
    unit = c.input_units[j] if j < len(c.input_units) else ""
    return f"{c.input_names[j]} [{unit}]" if unit else c.input_names[j]


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def _legend_labels(campaigns: Sequence[CampaignData]) -> list[str]:
    """Strategy names, made unique with the campaign name where two share a strategy."""
    labels = [c.label for c in campaigns]
    dup = {lab for lab in labels if labels.count(lab) > 1}
    return [f"{c.label} ({c.name})" if c.label in dup else c.label for c in campaigns]


def _rmse_label(c: CampaignData, j: int, split: str = "test") -> str:
    """Axis label with the output's unit, or saying the RMSE is in the output's own units."""
    if j < len(c.output_units) and c.output_units[j]:
        return f"{split} RMSE [{c.output_units[j]}]"
    return f"{split} RMSE (units of {c.output_names[j]})"


def _empty_note(ax: object, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes,  # type: ignore
            fontsize=10, color="#666666", wrap=True)


# ----------------------------------------------------------------------------- learning curve

def learning_curve(campaigns: Sequence[CampaignData]) -> Figure:
    """Test RMSE against the number of labels, one panel per output, one line per strategy.

    Why per output: outputs have different units and scales; a mean over outputs hides the
    one that does not improve. Falls back to training RMSE (and says so) without a test set.
    """
    outputs = campaigns[0].output_names
    k = len(outputs)
    if k == 0:  # a fresh store of an oracle that does not name its outputs: nothing known yet
        fig = _new_figure(5.2, 4.1)
        _empty_note(fig.subplots(), "no outputs known yet\n(no label, no test set)")
        return fig
    ncols = min(k, 3)
    nrows = math.ceil(k / ncols)
    fig = _new_figure(4.6 * ncols + 0.6, 3.6 * nrows + 0.5)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    labels = _legend_labels(campaigns)
    used_train = False
    for j, name in enumerate(outputs):
        ax = axes[j]
        drawn = False
        values: list[float] = []
        for ci, (c, lab) in enumerate(zip(campaigns, labels, strict=True)):
            pts = [(r.n_labels, r.test_rmse[j]) for r in c.iterations
                   if r.test_rmse is not None and j < len(r.test_rmse)
                   and np.isfinite(r.test_rmse[j])]
            split = "test"
            if not pts:
                pts = [(r.n_labels, r.train_rmse[j]) for r in c.iterations
                       if r.train_rmse is not None and j < len(r.train_rmse)
                       and np.isfinite(r.train_rmse[j])]
                split = "train"
                used_train = used_train or bool(pts)
            if not pts:
                continue
            x, y = np.array(pts, dtype=float).T
            order = np.argsort(x, kind="stable")
            style = "-" if split == "test" else "--"
            ax.plot(x[order], y[order], style, marker="o", ms=4, lw=1.8,
                    color=STRATEGY_COLORS[ci % len(STRATEGY_COLORS)],
                    label=lab if split == "test" else f"{lab} (train RMSE)")
            values.extend(y.tolist())
            drawn = True
        if not drawn:
            _empty_note(ax, "no RMSE recorded yet\n(no finished iteration)")
        else:
            positive = [v for v in values if v > 0]
            if positive and max(positive) / min(positive) > 20:
                ax.set_yscale("log")
            ax.legend(fontsize=8, title="strategy", title_fontsize=8)
        ax.set_title(f"Learning curve: {name}", fontsize=11)
        ax.set_xlabel("labelled points (training-set size)")
        ax.set_ylabel(_rmse_label(campaigns[0], j, "training" if used_train and not any(
            r.test_rmse is not None for c in campaigns for r in c.iterations) else "test"))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    for ax in axes[k:]:
        ax.set_visible(False)
    suptitle = "Test error vs labels (lower is better)"
    if used_train:
        suptitle += " - dashed: training RMSE (no test set)"
    fig.suptitle(suptitle, fontsize=12)
    return fig


# ----------------------------------------------------------------------------- labels over time

#: Steps of one iteration in the order alcore.campaign runs them; the iteration's timestamp
#: is taken in ``checkpoint``, after ``train`` and ``evaluate``.
STEPS_AFTER_LABEL = ("train", "evaluate")


def label_timeline(c: CampaignData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """Cumulative labels against elapsed time for one campaign.

    Returns ``(t, n, t_iter, n_iter, how)``: a polyline (labels rise during each labelling
    step, stay flat while the model trains and selects) and the iteration ends. The store
    keeps a timestamp and step timings per iteration, not a clock time per label, so the rise
    within a labelling step is drawn linear.
    """
    iters = c.iterations
    if not iters:
        return np.zeros(1), np.zeros(1), np.zeros(0), np.zeros(0), "no finished iteration"
    durations = [sum(v for k, v in r.timings.items() if k != "checkpoint") for r in iters]
    if all(r.end_time is not None for r in iters):
        stamps = np.array([float(r.end_time) for r in iters])  # type: ignore[arg-type]
        stamps = stamps - (stamps[0] - durations[0])
        # Timestamps may be whole seconds: an iteration cannot end before the previous one
        # plus its own recorded duration. Gaps (a stopped campaign resumed later) stay.
        ends = np.empty(len(iters))
        for j, (stamp, dur) in enumerate(zip(stamps, durations, strict=True)):
            ends[j] = stamp if j == 0 else max(stamp, ends[j - 1] + dur)
        how = "since iteration 0 started"
    else:
        ends = np.cumsum(durations)
        how = "sum of recorded step times"
    labelled = c.status == LABELLED
    prev = 0 if iters[0].iteration == 0 else int(np.count_nonzero(
        labelled & (c.acquired_in >= INITIAL) & (c.acquired_in < iters[0].iteration)))
    t, n = [0.0], [float(prev)]
    for r, end in zip(iters, ends, strict=True):
        after = sum(r.timings.get(k, 0.0) for k in STEPS_AFTER_LABEL)
        label_end = max(t[-1], end - after)
        label_start = max(t[-1], label_end - r.timings.get("label", 0.0))
        t += [label_start, label_end, float(end)]
        n += [float(prev), float(r.n_labels), float(r.n_labels)]
        prev = r.n_labels
    return (np.array(t), np.array(n), np.asarray(ends, dtype=float),
            np.array([r.n_labels for r in iters], dtype=float), how)


def _time_unit(max_seconds: float) -> tuple[float, str]:
    if max_seconds >= 3 * 3600:
        return 3600.0, "h"
    if max_seconds >= 180:
        return 60.0, "min"
    return 1.0, "s"


def labels_over_time(campaigns: Sequence[CampaignData]) -> Figure:
    """Cumulative labels against elapsed campaign time, one line per strategy; failures too."""
    fig = _new_figure(7.2, 4.2)
    ax = fig.add_subplot()
    labels = _legend_labels(campaigns)
    curves = [label_timeline(c) for c in campaigns]
    tmax = max((float(cv[0].max()) for cv in curves if cv[0].size), default=0.0)
    scale, unit = _time_unit(tmax)
    hows = set()
    for ci, ((t, n, ti, ni, how), lab, c) in enumerate(zip(curves, labels, campaigns,
                                                           strict=True)):
        if c.iterations:
            hows.add(how)
        color = STRATEGY_COLORS[ci % len(STRATEGY_COLORS)]
        extra = f", {c.n_failed} failed" if c.n_failed else ""
        ax.plot(t / scale, n, color=color, lw=1.8,
                label=f"{lab}: {c.n_labelled} labelled{extra}")
        ax.plot(ti / scale, ni, "o", color=color, ms=4)
    if not any(c.iterations for c in campaigns):
        _empty_note(ax, "no finished iteration yet")
    ax.set_xlabel(f"elapsed time [{unit}] ({'; '.join(sorted(hows)) or 'no data'})")
    ax.set_ylabel("cumulative labelled points")
    ax.set_title("Labels over time (dots: end of each iteration; flat: training/selecting)",
                 fontsize=11)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


# ----------------------------------------------------------------------------- input space

def input_importance(c: CampaignData) -> np.ndarray:
    """How strongly each input drives the outputs, from the labelled points: the correlation
    ratio eta^2 (share of output variance explained by the binned input), max over outputs.

    Why eta^2 and not a linear correlation: simulators are nonlinear; eta^2 also catches
    U-shaped responses. With too few labels (< 12) every input scores 0 and the order of the
    inputs is kept.
    """
    d = c.pool_X.shape[1]
    ok = (c.status == LABELLED) & np.all(np.isfinite(c.outputs), axis=1)
    X, Y = c.pool_X[ok], c.outputs[ok]
    n = X.shape[0]
    if n < 12:
        return np.zeros(d)
    bins = max(3, min(10, n // 6))
    scores = np.zeros(d)
    for j in range(d):
        edges = np.unique(np.quantile(X[:, j], np.linspace(0, 1, bins + 1)))
        if edges.size < 3:
            continue
        idx = np.clip(np.searchsorted(edges, X[:, j], side="right") - 1, 0, edges.size - 2)
        best = 0.0
        for m in range(Y.shape[1]):
            y = Y[:, m]
            var = y.var()
            if var <= 0:
                continue
            means = np.array([y[idx == b].mean() if np.any(idx == b) else y.mean()
                              for b in range(edges.size - 1)])
            counts = np.bincount(idx, minlength=edges.size - 1)
            best = max(best, float(np.sum(counts * (means - y.mean()) ** 2) / (n * var)))
        scores[j] = best
    return scores


def top_pairs(c: CampaignData, max_inputs: int = 4) -> list[tuple[int, int]]:
    """Pairs among the ``max_inputs`` most important inputs (at most 6 panels)."""
    d = c.pool_X.shape[1]
    if d < 2:
        return []
    imp = input_importance(c)
    order = sorted(range(d), key=lambda j: (-imp[j], j))[:max_inputs]
    return list(itertools.combinations(sorted(order, key=lambda j: (-imp[j], j)), 2))


def input_space(c: CampaignData) -> Figure:
    """Where the labels went: pairwise projections of the pool (light grey), the initial
    design (black) and the acquired points coloured by the iteration that selected them."""
    pairs = top_pairs(c)
    labelled_or_failed = c.acquired_in >= INITIAL
    acq = c.acquired_in[labelled_or_failed & (c.acquired_in > INITIAL)]
    iters = np.unique(acq)
    cmap = colormaps["viridis"]
    if iters.size:
        lo, hi = int(iters.min()), int(iters.max())
        if hi - lo < 12:
            bounds = np.arange(lo - 0.5, hi + 1.5)
            norm: Normalize = BoundaryNorm(bounds, cmap.N)
        else:
            norm = Normalize(lo, hi)
    else:
        norm = Normalize(0, 1)
    imp = input_importance(c)

    if not pairs:  # one input: position against acquisition iteration
        fig = _new_figure(7.0, 4.2)
        ax = fig.add_subplot()
        panels = [(ax, 0, None)]
    else:
        npan = len(pairs)
        ncols = min(npan, 3)
        nrows = math.ceil(npan / ncols)
        fig = _new_figure(3.9 * ncols + 1.0, 3.6 * nrows + 0.7)
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for ax in axes[npan:]:
            ax.set_visible(False)
        panels = [(axes[p], a, b) for p, (a, b) in enumerate(pairs)]

    status = c.status
    init = (c.acquired_in == INITIAL) & (status == LABELLED)
    acquired = (c.acquired_in > INITIAL) & (status == LABELLED)
    failed = status == FAILED
    sc = None
    for ax, a, b in panels:
        X = c.pool_X
        if b is None:
            xa = X[:, a]
            yv = np.where(c.acquired_in >= INITIAL, c.acquired_in, np.nan).astype(float)
            ax.scatter(xa, np.full(xa.shape, -1.6), s=4, c=POOL_COLOR, label="pool (unlabelled)")
            ax.scatter(xa[init], np.full(init.sum(), -1.0), s=18, c=INITIAL_COLOR,
                       marker="s", label="initial design")
            sc = ax.scatter(xa[acquired], yv[acquired], s=22, c=c.acquired_in[acquired],
                            cmap=cmap, norm=norm, edgecolors="k", linewidths=0.3,
                            label="acquired")
            ax.scatter(xa[failed], yv[failed], s=40, c=FAILED_COLOR, marker="x",
                       label="failed")
            ax.set_xlabel(_input_label(c, a))
            ax.set_ylabel("acquisition iteration (-1: initial)")
            ax.set_title(f"Where the labels went ({c.label})", fontsize=11)
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
            continue
        ax.scatter(X[:, a], X[:, b], s=3, c=POOL_COLOR, rasterized=True,
                   label="pool (candidates)")
        ax.scatter(X[init, a], X[init, b], s=16, c="white", edgecolors=INITIAL_COLOR,
                   linewidths=1.0, marker="s", label="initial design")
        sc = ax.scatter(X[acquired, a], X[acquired, b], s=20, c=c.acquired_in[acquired],
                        cmap=cmap, norm=norm, edgecolors="k", linewidths=0.3,
                        label="acquired (colour = iteration)")
        if failed.any():
            ax.scatter(X[failed, a], X[failed, b], s=36, c=FAILED_COLOR, marker="x",
                       linewidths=1.4, label="oracle failed")
        ax.set_xlabel(_input_label(c, a))
        ax.set_ylabel(_input_label(c, b))
        ax.set_title(f"{c.input_names[b]} vs {c.input_names[a]}", fontsize=10)
    if pairs:
        handles, leg_labels = panels[0][0].get_legend_handles_labels()
        fig.legend(handles, leg_labels, loc="outside lower center", ncols=len(handles),
                   fontsize=9, frameon=False)
        ranked = ", ".join(f"{c.input_names[j]} ({imp[j]:.2f})"
                           for j in sorted(range(len(imp)), key=lambda j: (-imp[j], j))[:4])
        fig.suptitle(f"Where the labels went - {c.label} on {c.oracle}: "
                     f"{int(init.sum())} initial, {int(acquired.sum())} acquired, "
                     f"{int(failed.sum())} failed\n"
                     f"inputs ranked by importance (eta^2 on labelled points): {ranked}",
                     fontsize=10)
    if sc is not None and iters.size:
        all_axes = [p[0] for p in panels]
        cb = fig.colorbar(sc, ax=all_axes, shrink=0.9, pad=0.01)
        cb.set_label("acquisition iteration")
        cb.locator = MaxNLocator(integer=True)
        cb.update_ticks()
    return fig


# ----------------------------------------------------------------------------- oracle wall time

def wall_time_histogram(campaigns: Sequence[CampaignData]) -> Figure:
    """Distribution of the oracle's wall time per call: successes and failures, with the
    median and 95th percentile marked (what sizes the Dask cluster and the deadline)."""
    fig = _new_figure(7.2, 4.2)
    ax = fig.add_subplot()
    labels = _legend_labels(campaigns)
    groups: list[tuple[str, np.ndarray, str, bool]] = []
    for ci, (c, lab) in enumerate(zip(campaigns, labels, strict=True)):
        color = STRATEGY_COLORS[ci % len(STRATEGY_COLORS)]
        ok = c.wall_time[(c.status == LABELLED) & np.isfinite(c.wall_time)]
        bad = c.wall_time[(c.status == FAILED) & np.isfinite(c.wall_time)]
        prefix = f"{lab}: " if len(campaigns) > 1 else ""
        if ok.size:
            groups.append((f"{prefix}labelled (n={ok.size})", ok, color, False))
        if bad.size:
            groups.append((f"{prefix}failed (n={bad.size})", bad,
                           color if len(campaigns) > 1 else FAILED_COLOR, True))
    values = np.concatenate([g[1] for g in groups]) if groups else np.array([])
    if values.size == 0:
        _empty_note(ax, "no oracle wall times recorded")
        ax.set_xlabel("oracle wall time per call [s]")
        ax.set_ylabel("oracle calls")
        ax.set_title("Oracle wall time per call", fontsize=11)
        return fig
    positive = values[values > 0]
    log = positive.size == values.size and positive.size > 1 and \
        positive.max() / positive.min() > 50
    if log:
        bins = np.geomspace(positive.min(), positive.max(), 30)
        ax.set_xscale("log")
    else:
        bins = np.linspace(values.min(), values.max() if values.max() > values.min()
                           else values.min() + 1e-3, 30)
    for lab, v, color, failed_group in groups:
        ax.hist(v, bins=bins, color=color, alpha=0.55 if not failed_group else 0.8,
                histtype="stepfilled" if len(groups) <= 2 else "step", lw=1.5, label=lab,
                hatch="//" if failed_group else None)
    med, p95 = np.median(values), np.quantile(values, 0.95)
    which = "all calls: " if len(campaigns) > 1 else ""
    ax.axvline(med, color="k", ls="--", lw=1.2, label=f"{which}median {med:.3g} s")
    ax.axvline(p95, color="k", ls=":", lw=1.2, label=f"{which}95th percentile {p95:.3g} s")
    ax.set_xlabel("oracle wall time per call [s]" + (" (log scale)" if log else ""))
    ax.set_ylabel("oracle calls")
    ax.set_title(f"Oracle wall time per call: {values.size} calls, "
                 f"total {format_duration(float(values.sum()))}", fontsize=11)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


# ----------------------------------------------------------------------------- failures

def failure_table(c: CampaignData) -> list[tuple[str, int, list[int]]]:
    """(reason, count, first pool indices) per distinct failure reason, most frequent first."""
    idx = np.flatnonzero(c.status == FAILED)
    by_reason: dict[str, list[int]] = {}
    for i in idx:
        by_reason.setdefault(headline(c.failure_reason[i]), []).append(int(i))
    return sorted(((r, len(v), v[:8]) for r, v in by_reason.items()), key=lambda t: -t[1])


def failures_chart(c: CampaignData) -> Figure | None:
    """Bar chart of failure reasons; ``None`` when nothing failed (the table says so)."""
    table = failure_table(c)
    if not table:
        return None
    table = table[:10]
    fig = _new_figure(7.2, 1.2 + 0.45 * len(table))
    ax = fig.add_subplot()
    names = [r if len(r) <= 60 else r[:57] + "..." for r, _, _ in table]
    counts = [n for _, n, _ in table]
    ax.barh(range(len(table))[::-1], counts, color=FAILED_COLOR)
    ax.set_yticks(range(len(table))[::-1], names, fontsize=8)
    ax.set_xlabel("failed oracle calls (after retries)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"Oracle failures by reason ({c.label}): {c.n_failed} points", fontsize=11)
    return fig
