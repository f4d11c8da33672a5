"""Where the oracle fails: an estimate of P(success | x) from the campaign's own evaluations.

Real simulators crash in parts of their domain (a solver that diverges, an unphysical
combination of parameters).  An acquisition rule that does not know this keeps walking into
the failing region: its points have the largest uncertainty *because* nothing was ever
learned there.  This module learns where evaluations fail; the strategies weight their
acquisition by the probability of success (:mod:`alcore.strategies.base`).  The campaign's
select step also counts the failed points as visited when the failures depend on x (they
join ``ctx.X_train``, the points the acquisition conditions on, never the training data): a
strategy's pull towards unexplored space is what leads it into a failing region — there is
never a label there, so its uncertainty never drops — and a point that failed was paid for
like a label.  Failures at random (no input matters) are not counted: a label may still be
had next to them.  On benchmarks/failures.py the weighting alone left 8-10 % of the picks
failing, at the region's boundary; docs/results.md has the figures with both.

Data.  Labelled points (success, f = 0) and points whose evaluation failed with kind
``"error"`` (f = 1): the oracle raised, or returned NaN, *for this x* — a property of x.
Timeouts, dead workers, cancelled tasks and set-up errors say something about the machine,
not about x: they are reported (``alflow status``) but not learned.

Model.  A Nadaraya–Watson estimate with a Beta prior, on inputs scaled to [0, 1] by the
box of the pool, with one length scale ℓ_j per input (ARD):

    w_i(x)       = exp(-½ Σ_j ((x_j - x_ij) / ℓ_j)²)
    P(fail | x)  = (s·π + Σ_i w_i(x) f_i) / (s + Σ_i w_i(x))
    π            = (F + 1) / (N + 2)          (the overall failure rate, Laplace-smoothed)

with F failures among N evaluated points and a prior strength of s = ``PRIOR_STRENGTH`` = 0.1
pseudo-points (one failed neighbour is strong evidence: see the constant).  Far from every
evaluated point the estimate falls back to π; next to failures it tends to 1, next to
labelled points to 0.  The length scales maximise the
leave-one-out log-likelihood Σ_i log P_{-i}(f_i | x_i) less ½·log n per input that matters
(a coordinate search over a grid that includes ℓ = ∞, "this input does not matter"); the
estimate averages the best few vectors tried, weighted by exp(score): a failure region that depends on one input
only (x0 > 0.8) is learned as a slab, not as balls around the failed points, and failures
at random, with no structure in x, give ℓ = ∞ for every input — the same P everywhere, so
the acquisition's choices do not change.

Why this and not a classifier that is trained: a GP classifier is not a runtime dependency,
and a small logistic network needs an optimiser, a class-imbalance treatment and a stopping
rule, and extrapolates a linear boundary with full confidence into regions nobody has
evaluated.  The kernel estimate has no training loop, is deterministic, lies in (0, 1) by
construction and falls back to the overall rate where there is no data.  Its cost is
O(P·n·d) per averaged vector and prediction (chunked) and O(n²·d) per length-scale trial, with
n capped at ``MAX_FIT_POINTS`` for the trials: with 2000 evaluated points, 9 inputs and 10⁵
candidates about 3.5 s to fit and 15 s to predict on a loaded 2-core machine (only once
something failed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

log = logging.getLogger("alcore.campaign")

if TYPE_CHECKING:
    from alcore.store import CampaignStore

__all__ = ["FailureModel", "LEARNED_KINDS", "PRIOR_STRENGTH", "avoidance",
           "fit_failure_model", "from_store", "learned_failures"]

#: Failure kinds that are a property of x and are learned (see the module docstring).
LEARNED_KINDS = ("error",)
#: Pseudo-points of the Beta prior: how much nearby evidence outweighs the overall rate. Small,
#: because a failure of kind "error" is deterministic in x (it survived the retries): one failed
#: neighbour is strong evidence. Measured on benchmarks/failures.py (20 % of the box failing,
#: 60 acquired points, 2-3 seeds, weighting only): 0.1 -> 5-7 % of the picks failed,
#: 0.25 -> 7-15 %, 1 -> 18-20 %.
PRIOR_STRENGTH = 0.1
#: Length scales tried per input, in units of the box (inf: the input is ignored).
LENGTH_GRID = (np.inf, 1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125)
#: At most this many points choose the length scales (every failure first, then a seeded
#: subsample of the labelled points); all of them are used for predictions.
MAX_FIT_POINTS = 1500
#: Length-scale vectors averaged (the best ones tried), weighted by exp(LOO score).
ENSEMBLE = 5

_CHUNK = 4096


@dataclass(frozen=True)
class FailureModel:
    """A fitted estimate of P(success | x); :meth:`success_prob` is what acquisition uses."""

    X: np.ndarray          # (n, d) evaluated points, scaled to the unit box
    failed: np.ndarray     # (n,) 1.0 where the evaluation failed, else 0.0
    lo: np.ndarray         # (d,) box used for scaling
    span: np.ndarray       # (d,) box widths (1 where the box is flat)
    lengths: np.ndarray    # (d,) the best length scale per input in box units (inf: ignored)
    base_rate: float       # π, the smoothed overall failure rate
    # the averaged length-scale vectors (K, d) and their weights (K,): see _choose_lengths
    ensemble: tuple[tuple[np.ndarray, float], ...] = ()

    def success_prob(self, X: np.ndarray) -> np.ndarray:
        """(m,) estimated probability that evaluating each row of ``X`` succeeds."""
        Z = (np.asarray(X, dtype=np.float64) - self.lo) / self.span
        out = np.zeros(Z.shape[0])
        for lengths, weight in self.ensemble or ((self.lengths, 1.0),):
            for start in range(0, Z.shape[0], _CHUNK):
                w = _weights(Z[start:start + _CHUNK], self.X, lengths)
                out[start:start + _CHUNK] += weight * (1.0 - _fail_prob(w, self.failed, self.base_rate))
        return out

    @property
    def depends_on_x(self) -> bool:
        """Whether the failures depend on the inputs at all (else P is the same everywhere)."""
        return bool(np.isfinite(self.lengths).any())

    def describe(self) -> dict[str, object]:
        """JSON-safe summary (for logs and the iteration's step result)."""
        return {"evaluated": int(self.failed.size), "failed": int(self.failed.sum()),
                "base_rate": round(self.base_rate, 4),
                "lengths": [None if not np.isfinite(v) else float(v) for v in self.lengths],
                "weight": round(self.ensemble[0][1], 3) if self.ensemble else 1.0}


def _weights(Z: np.ndarray, X: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Gaussian ARD weights (m, n) between rows of Z and X (both in box units); inputs with
    ℓ = ∞ drop out of the distance."""
    keep = np.isfinite(lengths)
    a, b = Z[:, keep] / lengths[keep], X[:, keep] / lengths[keep]
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    np.maximum(d2, 0.0, out=d2)
    return np.exp(-0.5 * d2)


def _fail_prob(w: np.ndarray, failed: np.ndarray, base_rate: float) -> np.ndarray:
    return (PRIOR_STRENGTH * base_rate + w @ failed) / (PRIOR_STRENGTH + w.sum(axis=1))


def _loo_score(X: np.ndarray, failed: np.ndarray, lengths: np.ndarray, base_rate: float) -> float:
    """Σ_i log P_{-i}(f_i | x_i) (each point predicted from all the others), less ½·log n per
    input that matters (a BIC-like price, so that failures at random keep ℓ = ∞)."""
    w = _weights(X, X, lengths)
    np.fill_diagonal(w, 0.0)
    p = np.clip(_fail_prob(w, failed, base_rate), 1e-12, 1.0 - 1e-12)
    loglik = float(np.sum(failed * np.log(p) + (1.0 - failed) * np.log1p(-p)))
    return loglik - 0.5 * np.log(failed.size) * int(np.isfinite(lengths).sum())


def _choose_lengths(X: np.ndarray, failed: np.ndarray,
                    base_rate: float) -> tuple[tuple[np.ndarray, float], ...]:
    """Length scales by coordinate ascent of the LOO score over ``LENGTH_GRID``; returns the
    ``ENSEMBLE`` best vectors tried, best first, with weights ∝ exp(score) (pseudo-Bayesian
    model averaging: when few failures leave it open which inputs matter — four failures
    that happen to share x1 — the answers are averaged instead of betting on one)."""
    d = X.shape[1]
    grid = np.asarray(LENGTH_GRID, dtype=float)
    tried: dict[tuple[float, ...], float] = {}

    def score(lengths: np.ndarray) -> float:
        key = tuple(lengths.tolist())
        if key not in tried:
            tried[key] = _loo_score(X, failed, lengths, base_rate)
        return tried[key]

    # start from the best isotropic scale, then improve one input at a time (two passes)
    lengths = max((np.full(d, g) for g in grid), key=score)
    best = score(lengths)
    for _ in range(2):
        improved = False
        for j in range(d):
            for g in grid:
                trial = lengths.copy()
                trial[j] = g
                s = score(trial)
                if s > best + 1e-9:
                    best, lengths, improved = s, trial, True
        if not improved:
            break
    top = sorted(tried.items(), key=lambda kv: -kv[1])[:ENSEMBLE]
    w = np.exp(np.array([s for _, s in top]) - top[0][1])
    w /= w.sum()
    return tuple((np.array(k), float(wk)) for (k, _), wk in zip(top, w))


def fit_failure_model(X_ok: np.ndarray, X_failed: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                      seed: int = 0) -> FailureModel | None:
    """The estimate from labelled points ``X_ok`` and failed points ``X_failed`` in the box
    [lo, hi]; ``None`` when nothing failed (then there is nothing to avoid)."""
    X_ok = np.asarray(X_ok, dtype=np.float64).reshape(-1, len(lo))
    X_failed = np.asarray(X_failed, dtype=np.float64).reshape(-1, len(lo))
    if X_failed.shape[0] == 0:
        return None
    lo = np.asarray(lo, dtype=np.float64)
    span = np.asarray(hi, dtype=np.float64) - lo
    span = np.where(span > 0, span, 1.0)
    X = (np.concatenate([X_ok, X_failed]) - lo) / span
    failed = np.concatenate([np.zeros(len(X_ok)), np.ones(len(X_failed))])
    base_rate = (failed.sum() + 1.0) / (failed.size + 2.0)
    fit_rows = np.arange(failed.size)
    if fit_rows.size > MAX_FIT_POINTS:
        rng = np.random.default_rng(seed)
        fails = np.flatnonzero(failed == 1.0)[:MAX_FIT_POINTS // 2]
        oks = rng.choice(np.flatnonzero(failed == 0.0), MAX_FIT_POINTS - fails.size, replace=False)
        fit_rows = np.sort(np.concatenate([fails, oks]))
    ensemble = _choose_lengths(X[fit_rows], failed[fit_rows], base_rate)
    return FailureModel(X=X, failed=failed, lo=lo, span=span, lengths=ensemble[0][0],
                        base_rate=float(base_rate), ensemble=ensemble)


def learned_failures(store: CampaignStore) -> np.ndarray:
    """Pool indices of the failures of a learned kind (ascending)."""
    failed = np.asarray(store.failed_indices(), dtype=np.int64)
    kinds = np.asarray(store.failure_kinds)[failed] if failed.size else np.array([], dtype=str)
    # stores written before failure kinds existed have "" for every failure: treat as "error"
    return failed[np.isin(kinds, LEARNED_KINDS) | (kinds == "")]


def from_store(store: CampaignStore, seed: int = 0) -> FailureModel | None:
    """The estimate from a campaign store: its labelled points against its failures of a
    learned kind; ``None`` while no such failure exists."""
    pool_X = np.asarray(store.pool_X, dtype=np.float64)
    learned = learned_failures(store)
    if learned.size == 0:
        return None
    ok = np.asarray(store.labelled_indices(), dtype=np.int64)
    return fit_failure_model(pool_X[ok], pool_X[learned], pool_X.min(axis=0), pool_X.max(axis=0),
                             seed=seed)


def avoidance(store: CampaignStore, candidates: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """What the select step needs to avoid failures: ``(visited, success_prob)``.

    ``visited``: pool indices the acquisition conditions on — the labelled points plus the
    learned failures when they depend on x (some length scale is finite; failures at random
    are not counted: a label may still be had next to them); ``success_prob``: P(success) of
    the pool points ``candidates``. While nothing failed in a learned way: the labelled
    points and None, i.e. exactly what the acquisition gets without avoidance.
    """
    labelled = np.asarray(store.labelled_indices(), dtype=np.int64)
    model = from_store(store, seed=seed)
    if model is None:
        return labelled, None
    pool_X = np.asarray(store.pool_X, dtype=np.float64)
    in_region = learned_failures(store) if model.depends_on_x else np.array([], dtype=np.int64)
    p = model.success_prob(pool_X[np.asarray(candidates, dtype=np.int64)])
    log.info("avoiding failures: %s; %d failed points count as visited; P(success) of the %d "
             "candidates from %.2f", model.describe(), in_region.size, p.size, float(p.min(initial=1.0)))
    return np.union1d(labelled, in_region), p
