"""Model selection on the labelled data: K-fold cross-validation over a small search space.

Why: simulator runs cost minutes to hours, CPU seconds are cheap, and which network suits a
problem differs (noisy tabular labels want more regularisation than a smooth PDE output).  So
on the initial design, and again whenever the labelled set has grown by a factor (fit.py), the
candidates below are scored by K-fold cross-validation on the labels themselves — never on a
test set — and the best one is trained on all labels.

Score: the mean over outputs of out-of-fold RMSE / std(y_j) (scale free, like the study's
nRMSE).  The folds are a seeded random partition; all K folds of a candidate train at once as
one stack of networks (:meth:`DropoutMLP.cross_validate`).  Above ``full_cv_max_n`` labels only
the first fold is trained (a hold-out split of n/K rows: K times cheaper, and n/K >= 60 residuals
are enough to rank three candidates and fit a two-parameter calibration).  The default, 300, was
set so that the issue-15 study fits about an hour per problem on 2 cores (docs/results.md).

Time budget: candidates run in the order listed (the product default first, so it is always
scored); before each further candidate its cost is predicted from the first one's measured
time, scaled by its parameter count, step count and members, and it is skipped when the
prediction would overrun ``budget_s``.  Skipped candidates are recorded (``truncated``).

Shared training: a candidate that differs from an earlier one only by its L-BFGS polish
("polished" = "deeper" + 1,000 iterations) continues from that candidate's trained fold
networks (`DropoutMLP.cross_validate`'s ``continue_from``): the same scores, without a second
AdamW run (``benchmarks/training.py --parts polish_sharing`` measures the saving).

Per-output candidates ("split", "split_polished": one network per output) are left out when
the data have one output: they would train the same networks as "deeper" and "polished".
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alcore.model.dropout_mlp import CrossValidation, DropoutMLP, seed_int

__all__ = ["Candidate", "DEFAULT_SEARCH_SPACE", "FULL_CV_MAX_N", "POLISH_STEPS", "CandidateScore", "Selection", "applicable",
           "kfold_ids", "select_model", "cv_score"]

#: above this many labels a tuning trains one fold (a hold-out of n/K rows), not all K
FULL_CV_MAX_N = 300


@dataclass(frozen=True)
class Candidate:
    """One point of the search space: DropoutMLP keyword arguments over the base settings."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


#: L-BFGS iterations of the "polished" candidate (alcore/model/polish.py): on heat2d at 1,100
#: labels 1,000 took nRMSE 0.0285 / 0.0255 to 0.0206 / 0.0162 (two seeds; docs/results.md)
POLISH_STEPS = 1000

#: The documented search space (docs/results.md, "Model selection", says why these): the
#: product default (a smooth 2 x 128 SiLU net, full-batch training), a deeper one (steep fronts:
#: burgers1d), the deeper one trained to convergence of its loss by L-BFGS after AdamW (smooth
#: outputs: heat2d), and a strongly regularised one for noisy labels (tabular data: California):
#: dropout 0.2 after every layer, He initialisation, small batches, lr 3e-3.  Its rate was 0.1
#: until session 5: 0.2 lowered the error on held-out pool points of California (3 seeds at
#: 500, 1,000 and 3,000 labels: 2-7%) and of scikit-learn's diabetes data, never tuned on
#: (10 of 10 seeds, 3%); docs/results.md, "The noisy candidate".  Session 6 added "deeper"
#: and "polished" with one network per output ("split", "split_polished"; DropoutMLP's
#: ``per_output``): outputs whose hard regions differ (burgers1d's fronts) stop competing for
#: one set of hidden features; docs/results.md, "Per-output networks".  Last in the list: at k
#: times the cost they are the first the time budget drops.
DEFAULT_SEARCH_SPACE: tuple[Candidate, ...] = (
    Candidate("default", {}),
    Candidate("deeper", {"hidden": (128, 128, 128)}),
    Candidate("polished", {"hidden": (128, 128, 128), "dropout_layers": "last", "polish_steps": POLISH_STEPS}),
    Candidate("noisy", {"dropout": 0.2, "dropout_layers": "all", "init_gain": 1.4142135623730951, "lr": 3e-3,
                        "batch_size": 64, "min_steps": 2000, "epochs": 300, "polish_steps": 0}),
    Candidate("split", {"hidden": (128, 128, 128), "per_output": True}),
    Candidate("split_polished", {"hidden": (128, 128, 128), "dropout_layers": "last", "polish_steps": POLISH_STEPS,
                                 "per_output": True}),
)


def applicable(space: Sequence[Candidate], n_outputs: int) -> tuple[Candidate, ...]:
    """The candidates that differ for ``n_outputs`` outputs: per-output ones need two or more."""
    return tuple(c for c in space if n_outputs > 1 or not c.params.get("per_output", False))


@dataclass
class CandidateScore:
    name: str
    params: dict[str, Any]
    score: float | None                 # mean over outputs of OOF RMSE / std(y); None if skipped
    nrmse_per_output: list[float] | None
    seconds: float
    skipped: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params, "score": self.score,
                "nrmse_per_output": self.nrmse_per_output, "seconds": round(self.seconds, 3),
                "skipped": self.skipped}


@dataclass
class Selection:
    """Outcome of `select_model`: the winner, every candidate's score, the winner's OOF data."""

    chosen: Candidate
    chosen_params: dict[str, Any]       # full DropoutMLP hyperparameters of the winner
    scores: list[CandidateScore]
    folds: int
    trained_folds: int                  # K, or 1 above full_cv_max_n (hold-out)
    budget_s: float
    seconds: float
    truncated: bool
    oof: CrossValidation

    def to_json(self) -> dict[str, Any]:
        return {"chosen": self.chosen.name, "folds": self.folds, "trained_folds": self.trained_folds,
                "budget_s": self.budget_s if math.isfinite(self.budget_s) else None,
                "seconds": round(self.seconds, 3), "truncated": self.truncated,
                "candidates": [c.to_json() for c in self.scores]}


def kfold_ids(n: int, k: int, seed: int) -> np.ndarray:
    """(n,) fold of each row: a seeded permutation dealt round-robin into ``min(k, n)`` folds."""
    if k < 2 or n < 2:
        raise ValueError(f"need at least 2 folds and 2 rows; got k={k}, n={n}")
    k = min(k, n)
    out = np.empty(n, dtype=np.int64)
    out[np.random.default_rng(seed_int(seed, 77)).permutation(n)] = np.arange(n) % k
    return out


def cv_score(y: np.ndarray, pred: np.ndarray) -> tuple[float, list[float]]:
    """(mean over outputs, per output) of RMSE / std(y)."""
    y = np.asarray(y, float).reshape(len(y), -1)
    err = np.asarray(pred, float).reshape(y.shape) - y
    sd = y.std(axis=0)
    nr = np.sqrt(np.mean(err ** 2, axis=0)) / np.where(sd > 0, sd, 1.0)
    return float(np.mean(nr)), [float(v) for v in nr]


def _relative_cost(model: DropoutMLP, n: int, d: int, k: int) -> float:
    """Training work in units of (weights x rows x passes); an L-BFGS iteration of the polish
    evaluates the full-batch loss about 1.25 times (line search), an AdamW step once per batch."""
    return _flops(model, d, k) * model.steps_for(n) * min(model.batch_for(n), n) * model.n_networks(k) \
        + _polish_cost(model, n, d, k)


def _flops(model: DropoutMLP, d: int, k: int) -> int:
    sizes = [d, *model.hidden, k]
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def _polish_cost(model: DropoutMLP, n: int, d: int, k: int) -> float:
    """`_relative_cost` of the polish alone (a candidate continued from an unpolished one)."""
    return _flops(model, d, k) * 1.25 * model.polish_steps * n * model.n_networks(k)


def select_model(X: np.ndarray, y: np.ndarray, base: Mapping[str, Any],
                 space: Sequence[Candidate] = DEFAULT_SEARCH_SPACE, *, folds: int = 5,
                 budget_s: float = math.inf, seed: int = 0, T: int = 50, device: str = "cpu",
                 full_cv_max_n: int = FULL_CV_MAX_N) -> Selection:
    """Score every `applicable` candidate (``base`` kwargs, then the candidate's) by K-fold CV;
    return the best."""
    if not space:
        raise ValueError("the search space is empty")
    t0 = time.perf_counter()
    X = np.asarray(X, float)
    y = np.asarray(y, float).reshape(len(X), -1)
    n, d = X.shape
    k = y.shape[1]
    space = applicable(space, k) or tuple(space)
    ids = kfold_ids(n, folds, seed)
    only = None if n <= full_cv_max_n else [0]
    scores: list[CandidateScore] = []
    best: tuple[float, Candidate, DropoutMLP, CrossValidation] | None = None
    unpolished: dict[str, CrossValidation] = {}     # training key -> CV of an unpolished candidate
    rate = None                                     # seconds per unit of relative cost
    truncated = False
    for cand in space:
        model = DropoutMLP(**{**base, **cand.params, "seed": seed, "device": device})
        params = model.hyperparameters()
        n_folds = int(ids.max()) + 1
        n_train = n - n // n_folds
        # a candidate that only adds a polish to one already scored continues from its networks
        key = model.training_key(seed)
        source = unpolished.get(key) if model.polish_steps > 0 else None
        cost = (_relative_cost(model, n_train, d, k) if source is None
                else _polish_cost(model, n_train, d, k)) * (n_folds if only is None else 1)
        if rate is not None and (time.perf_counter() - t0) + rate * cost > budget_s:
            truncated = True
            scores.append(CandidateScore(cand.name, params, None, None, 0.0, skipped=True))
            continue
        t1 = time.perf_counter()
        oof = model.cross_validate(X, y, ids, T=T, seed=seed, only_folds=only, continue_from=source)
        dt = time.perf_counter() - t1
        if source is None:
            rate = dt / cost if rate is None else rate
        if model.polish_steps == 0:
            unpolished.setdefault(key, oof)
        score, per = cv_score(y[oof.rows], oof.pred)
        scores.append(CandidateScore(cand.name, params, score, per, dt))
        if best is None or score < best[0]:
            best = (score, cand, model, oof)
    assert best is not None
    return Selection(chosen=best[1], chosen_params=best[2].hyperparameters(), scores=scores,
                     folds=int(ids.max() + 1), trained_folds=int(ids.max() + 1) if only is None else 1,
                     budget_s=float(budget_s), seconds=time.perf_counter() - t0,
                     truncated=truncated, oof=best[3])
