"""Shared types and helpers of the acquisition strategies.

Every strategy is a function ``fn(ctx, **params) -> Selection`` registered with a
:class:`Strategy` record (name, one-line description, parameter defaults and validators).
The NNGP strategies all draw their MC samples through :func:`draw_samples`, which samples
train, pool (and target) in ONE model call so that, with shared masks, sample t is the
same thinned network on every point — the property the NNGP kernel needs.

Noise ``reg``: strategies take ``reg`` in *relative* units by default — a fraction of the
mean prior variance (mean K_pp, i.e. mean MC-dropout variance over train and pool, per
output).  MC-dropout variances of a standardised output are often 1e-3..1e-1, so an
absolute reg of 1e-2 could be larger than the whole prior and make the training points
condition nothing; a relative reg behaves the same whatever the dropout rate or network
size.  ``ctx.reg_relative=False`` takes reg as an absolute variance in standardised output
units (what :func:`alcore.nngp.posterior_variance` always takes).

Avoiding failures: ``ctx.success_prob`` (P,), the estimated probability that evaluating each
pool point succeeds (:mod:`alcore.feasibility`), is applied in ONE way by every strategy.
:meth:`Strategy.__call__` first removes the candidates below ``MIN_SUCCESS_PROB`` (almost
certain to fail; if fewer than a batch remain, the batch's worth of most probable ones are
kept), then the strategy multiplies the score it maximises by p through :func:`weighted` at
every pick: the expected value of a pick whose label arrives with probability p.  Sampling
strategies draw ∝ p × their weight.  ``success_prob=None`` (nothing failed yet, or
``[acquisition] avoid_failures = false``) leaves every strategy exactly as it was.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

import numpy as np

from alcore._util import check_float
from alcore.nngp import as_samples

__all__ = [
    "AcquisitionContext",
    "Selection",
    "Strategy",
    "Samples",
    "draw_samples",
    "absolute_reg",
    "top_b",
    "weighted",
    "feasible_candidates",
    "MIN_SUCCESS_PROB",
    "check_bool",
    "check_nonneg_float",
    "check_positive_float",
    "check_choice",
]

DEFAULT_REG = 1e-2
#: Candidates whose estimated probability of success is below this are not considered.
MIN_SUCCESS_PROB = 0.1


@dataclass
class AcquisitionContext:
    """Everything a strategy may look at when choosing the next batch."""

    model: Any  # a trained alcore.model.DropoutMLP (anything with .sample(...))
    X_train: np.ndarray  # labelled inputs (n, d)
    X_pool: np.ndarray  # candidate inputs (P, d), unlabelled only
    batch_size: int
    n_samples: int = 100  # T, MC-dropout samples
    reg: float = DEFAULT_REG  # noise on the training block; relative to mean K_pp by default
    seed: int = 0
    X_target: np.ndarray | None = None  # optional target set for nngp_ivr
    reg_relative: bool = True  # False: reg is an absolute variance (standardised units)
    success_prob: np.ndarray | None = None  # (P,) P(evaluation succeeds); None: no failures to avoid

    def validate(self) -> None:
        """One clear error for the first inconsistent field."""
        xp = np.asarray(self.X_pool)
        if xp.ndim != 2 or xp.shape[0] == 0:
            raise ValueError(f"X_pool must be a non-empty (P, d) array, got shape {xp.shape}")
        xt = np.asarray(self.X_train)
        if xt.ndim != 2 or xt.shape[1] != xp.shape[1]:
            raise ValueError(
                f"X_train must be (n, d) with d={xp.shape[1]} like X_pool, got shape {xt.shape}"
            )
        if self.X_target is not None:
            xg = np.asarray(self.X_target)
            if xg.ndim != 2 or xg.shape[0] == 0 or xg.shape[1] != xp.shape[1]:
                raise ValueError(
                    f"X_target must be a non-empty (m, d) array with d={xp.shape[1]}, got shape {xg.shape}"
                )
        b = self.batch_size
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 1 <= b <= xp.shape[0]:
            raise ValueError(f"batch_size must be an int between 1 and the pool size {xp.shape[0]}, got {b!r}")
        t = self.n_samples
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 2:
            raise ValueError(f"n_samples must be an int >= 2, got {t!r}")
        if self.success_prob is not None:
            sp = np.asarray(self.success_prob)
            if sp.shape != (xp.shape[0],) or not np.all((sp >= 0.0) & (sp <= 1.0)):
                raise ValueError(
                    f"success_prob must be ({xp.shape[0]},) probabilities in [0, 1], got shape {sp.shape}"
                )
        check_positive_float(self.reg, "reg")
        check_bool(self.reg_relative, "reg_relative")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")


@dataclass
class Selection:
    """The chosen batch: positions into X_pool in pick order, and each pick's score."""

    indices: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        self.indices = np.asarray(self.indices, dtype=np.int64)
        self.scores = np.asarray(self.scores, dtype=np.float64)
        if self.indices.shape != self.scores.shape or self.indices.ndim != 1:
            raise ValueError("Selection needs 1-d indices and scores of the same length")


@dataclass(frozen=True)
class Strategy:
    """A registered strategy: ``fn(ctx, **params)`` plus its parameter defaults.

    ``validators`` map a parameter name to a function that returns the cleaned value or
    raises ValueError naming the parameter.
    """

    name: str
    description: str
    fn: Callable[..., Selection]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    validators: Mapping[str, Callable[[Any, str], Any]] = field(default_factory=dict)

    def __call__(self, ctx: AcquisitionContext, **params: Any) -> Selection:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            allowed = ", ".join(sorted(self.defaults)) or "none"
            raise ValueError(
                f"strategy '{self.name}' got unknown parameter(s) {', '.join(unknown)}; "
                f"it accepts: {allowed}"
            )
        merged = {**self.defaults, **params}
        for key, check in self.validators.items():
            merged[key] = check(merged[key], key)
        ctx.validate()
        if ctx.success_prob is None:
            return self.fn(ctx, **merged)
        p = np.asarray(ctx.success_prob, dtype=np.float64)
        keep = feasible_candidates(p, int(ctx.batch_size))
        sub = replace(ctx, X_pool=np.asarray(ctx.X_pool)[keep], success_prob=p[keep])
        sel = self.fn(sub, **merged)
        return Selection(indices=keep[sel.indices], scores=sel.scores)


@dataclass
class Samples:
    """MC samples (n, T, k) of the train, pool and optional target blocks of one call."""

    train: np.ndarray
    pool: np.ndarray
    target: np.ndarray | None


def draw_samples(
    ctx: AcquisitionContext, shared_masks: bool = True, with_train: bool = True, with_target: bool = False
) -> Samples:
    """Sample train + pool (+ ctx.X_target if ``with_target``) in ONE model call, standardised.

    One call matters: with shared masks sample t must be the same thinned network for the
    training and the pool points, otherwise the empirical cross-covariance is noise.
    """
    if with_target and ctx.X_target is None:
        raise ValueError("with_target=True needs ctx.X_target")
    blocks = [np.asarray(ctx.X_train, dtype=float)] if with_train else []
    blocks.append(np.asarray(ctx.X_pool, dtype=float))
    if with_target:
        blocks.append(np.asarray(ctx.X_target, dtype=float))
    X = np.concatenate(blocks, axis=0)
    kwargs: dict[str, Any] = {"shared_masks": shared_masks}
    if "standardised" in _sample_parameters(ctx.model):
        kwargs["standardised"] = True
    s = as_samples(ctx.model.sample(X, ctx.n_samples, ctx.seed, **kwargs), "model samples")
    if s.shape[0] != X.shape[0] or s.shape[1] != ctx.n_samples:
        raise ValueError(
            f"model.sample returned shape {s.shape}, expected ({X.shape[0]}, {ctx.n_samples}, k)"
        )
    n = ctx.X_train.shape[0] if with_train else 0
    p = ctx.X_pool.shape[0]
    train = s[:n]
    pool = s[n : n + p]
    target = s[n + p :] if with_target else None
    return Samples(train=train, pool=pool, target=target)


def _sample_parameters(model: Any) -> set[str]:
    try:
        return set(inspect.signature(model.sample).parameters)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return set()


def absolute_reg(ctx: AcquisitionContext, samples: Samples) -> float:
    """ctx.reg as an absolute variance: times the mean prior variance if reg_relative.

    The mean prior variance is the mean over train and pool points of the per-output
    MC variance (population variance over T, i.e. mean K_pp), averaged over outputs.
    """
    if not ctx.reg_relative:
        return float(ctx.reg)
    parts = [samples.pool] + ([samples.train] if samples.train.shape[0] else [])
    total = sum(float(np.var(s, axis=1).sum()) for s in parts)
    count = sum(s.shape[0] * s.shape[2] for s in parts)
    scale = total / count
    if not np.isfinite(scale) or scale <= 0.0:
        raise ValueError(
            "the MC samples have zero variance everywhere (dropout off or a constant model?); "
            "a relative reg is undefined — check model.dropout"
        )
    return float(ctx.reg) * scale


def top_b(scores: np.ndarray, b: int) -> np.ndarray:
    """Indices of the b largest scores, largest first, ties broken by lower index."""
    scores = np.asarray(scores, dtype=np.float64)
    if b < scores.shape[0]:
        cand = np.argpartition(-scores, b - 1)[:b]
        # argpartition may cut inside a tie: take every index tied with the b-th value
        kth = scores[cand].min()
        cand = np.union1d(cand[scores[cand] > kth], np.flatnonzero(scores == kth))
    else:
        cand = np.arange(scores.shape[0])
    order = np.lexsort((cand, -scores[cand]))
    return cand[order][:b].astype(np.int64)


def feasible_candidates(success_prob: np.ndarray, batch_size: int) -> np.ndarray:
    """Positions (ascending) of the candidates worth considering: p >= ``MIN_SUCCESS_PROB``,
    or, if fewer than ``batch_size`` are, the ``batch_size`` most probable ones."""
    p = np.asarray(success_prob, dtype=np.float64)
    keep = np.flatnonzero(p >= MIN_SUCCESS_PROB)
    if keep.size < batch_size:
        keep = np.sort(top_b(p, batch_size))
    return keep.astype(np.int64)


def weighted(scores: np.ndarray, success_prob: np.ndarray | None) -> np.ndarray:
    """``scores`` × P(success) — the one way every strategy weighs its acquisition; the scores
    themselves (not a copy) when ``success_prob`` is None."""
    if success_prob is None:
        return scores
    return np.asarray(scores, dtype=np.float64) * np.asarray(success_prob, dtype=np.float64)


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def check_positive_float(value: Any, name: str) -> float:
    return check_float(value, name)


def check_nonneg_float(value: Any, name: str) -> float:
    return check_float(value, name, allow_zero=True)


def check_choice(*choices: str) -> Callable[[Any, str], str]:
    def check(value: Any, name: str) -> str:
        if value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return value

    return check
