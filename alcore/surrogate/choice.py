"""Which checkpoint a user gets: the rule behind ``load_surrogate(store, model="best")``.

One pure function, shared by ``load_surrogate``, the report and the Prefect summary artifact,
so that all three name the same model. It reads only iteration metrics and the list of
checkpoints (no torch, no file access).

Rules:

* ``"best"``: the checkpointed iteration with the lowest test RMSE (the scalar ``rmse`` that
  ``alcore.campaign.evaluate`` records, the mean over outputs of the per-output RMSE, when its
  ``on`` says ``"test"``); ties go to the earlier iteration, as in the report's "best" line.
  Without a test set (metrics on the training set say nothing about generalisation), or
  before any iteration was evaluated on it, "best" falls back to the last model and says so.
* ``"last"``: the newest checkpoint (while a campaign runs it may not be evaluated yet).
* an iteration number ``N``: that checkpoint, if it exists.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ModelChoice", "SurrogateError", "choose_model", "parse_model_spec", "rmse_on_test"]


class SurrogateError(ValueError):
    """The store cannot give the requested surrogate (no checkpoint, unknown iteration...)."""


@dataclass(frozen=True)
class ModelChoice:
    """The iteration chosen, what was asked for, and why (``reason`` is one sentence)."""

    iteration: int
    requested: str              # "best" | "last" | the iteration number as text
    rule: str                   # "lowest test RMSE" | "last model" | "requested iteration"
    reason: str                 # e.g. "lowest test RMSE (0.0177) of 11 evaluated iterations"
    test_rmse: float | None     # the chosen iteration's test RMSE, None when not evaluated on a test set

    def describe(self) -> str:
        """``"iteration 7 (best: lowest test RMSE (0.0177) of 11 evaluated iterations)"``."""
        if self.rule == "requested iteration":
            return f"iteration {self.iteration} (as requested)"
        return f"iteration {self.iteration} ({self.requested}: {self.reason})"


def parse_model_spec(spec: str | int) -> str | int:
    """``"best"``, ``"last"`` or a non-negative iteration number (an int or its digits)."""
    if isinstance(spec, bool):
        raise SurrogateError(f"model must be 'best', 'last' or an iteration number; got {spec!r}")
    if isinstance(spec, int) or (hasattr(spec, "__index__") and not isinstance(spec, str)):
        n = int(spec)
        if n < 0:
            raise SurrogateError(f"model iteration must be >= 0; got {n}")
        return n
    if isinstance(spec, str):
        s = spec.strip().lower()
        if s in ("best", "last"):
            return s
        if s.isdigit():
            return int(s)
    raise SurrogateError(f"model must be 'best', 'last' or an iteration number; got {spec!r}")


def rmse_on_test(metrics: Mapping[str, Any] | None) -> float | None:
    """The scalar test RMSE of one iteration's metrics, None when they are not on a test set."""
    if not metrics or str(metrics.get("on", "test")) != "test":
        return None
    v = metrics.get("rmse")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        return None
    return float(v)


def _ranges(values: Sequence[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"`` (for error messages)."""
    out: list[str] = []
    vals = sorted(set(int(v) for v in values))
    i = 0
    while i < len(vals):
        j = i
        while j + 1 < len(vals) and vals[j + 1] == vals[j] + 1:
            j += 1
        out.append(str(vals[i]) if i == j else f"{vals[i]}-{vals[j]}")
        i = j + 1
    return ", ".join(out)


def choose_model(spec: str | int, checkpoints: Iterable[int],
                 metrics_by_iteration: Mapping[int, Mapping[str, Any] | None], *,
                 has_test: bool | None = None) -> ModelChoice:
    """Pick the checkpoint for ``spec`` ("best" | "last" | N); see the module docstring.

    ``metrics_by_iteration`` maps iteration -> its recorded metrics (missing or empty while an
    iteration is unfinished). ``has_test``: whether the campaign has a test set; None infers it
    from the metrics (any iteration evaluated ``on`` the test set). Raises
    :class:`SurrogateError` when there is no checkpoint or the iteration asked for has none.
    """
    want = parse_model_spec(spec)
    ckpts = sorted(set(int(i) for i in checkpoints))
    if not ckpts:
        raise SurrogateError("no model checkpoint yet (the campaign has not finished training "
                             "its first model)")
    rmses = {i: rmse_on_test(metrics_by_iteration.get(i)) for i in ckpts}
    if has_test is None:
        has_test = any(v is not None for v in rmses.values())
    last = ckpts[-1]
    if isinstance(want, int):
        if want not in ckpts:
            raise SurrogateError(f"iteration {want} has no model checkpoint; checkpoints: "
                                 f"{_ranges(ckpts)}")
        return ModelChoice(want, str(want), "requested iteration", "requested iteration",
                           rmses[want])
    if want == "last":
        return ModelChoice(last, "last", "last model", "the newest checkpoint", rmses[last])
    evaluated = [(v, i) for i, v in rmses.items() if v is not None]
    if not has_test:
        return ModelChoice(last, "best", "last model",
                           "no test set, so the newest checkpoint", None)
    if not evaluated:
        return ModelChoice(last, "best", "last model",
                           "no iteration evaluated on the test set yet, so the newest "
                           "checkpoint", rmses[last])
    best_rmse, best_it = min(evaluated)
    return ModelChoice(best_it, "best", "lowest test RMSE",
                       f"lowest test RMSE ({best_rmse:.4g}) of {len(evaluated)} evaluated "
                       f"iteration{'s' if len(evaluated) != 1 else ''}", best_rmse)
