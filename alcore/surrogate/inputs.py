"""Turn what a user passes as inputs into the (n, d) float64 matrix the model takes.

Accepted: a 2-D array-like (columns in the surrogate's input order), a 1-D array (one point,
or n points of a one-input surrogate), a mapping of columns by input name (a dict), or a
data frame (anything with ``.columns`` and ``frame[name]``: pandas, polars), matched by input
name, so column order does not matter and extra columns are ignored. pandas is never
imported here. Every check raises :class:`InputError` with one line naming the culprit.

Points outside the oracle's bounds are allowed (the surrogate extrapolates) but flagged:
:func:`outside_bounds` gives the per-row flag and :func:`extrapolation_message` the warning.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .choice import SurrogateError

__all__ = ["ExtrapolationWarning", "InputError", "as_input_matrix", "extrapolation_message",
           "outside_bounds"]


class InputError(SurrogateError):
    """Inputs of the wrong shape, names or values. ``row``/``column`` locate the first bad
    value (0-based row, input name) when there is one, for callers that map rows to lines."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None):
        super().__init__(message)
        self.row = row
        self.column = column


class ExtrapolationWarning(UserWarning):
    """Some points lie outside the oracle's bounds: the surrogate was never trained there."""


def _is_frame(X: Any) -> bool:
    return (not isinstance(X, np.ndarray) and hasattr(X, "columns")
            and hasattr(X, "__getitem__"))


def _column(values: Any, name: str) -> np.ndarray:
    try:
        col = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"input column {name!r} is not numeric ({exc})", column=name) from None
    if col.ndim == 0:  # {"u": 0.3, "v": 1.0}: one point
        col = col[None]
    if col.ndim != 1:
        raise InputError(f"input column {name!r} must be 1-D; got shape {col.shape}", column=name)
    return col


def _from_columns(X: Any, names: Sequence[str]) -> np.ndarray:
    have = [str(c) for c in (X.keys() if isinstance(X, Mapping) else X.columns)]
    missing = [n for n in names if n not in have]
    if missing:
        raise InputError(f"missing input column(s) {', '.join(missing)}; the surrogate takes "
                         f"{', '.join(names)} (got {', '.join(have) or 'no columns'})",
                         column=missing[0])
    cols = [_column(X[n], n) for n in names]
    lengths = {c.size for c in cols}
    if len(lengths) > 1:
        raise InputError(f"input columns differ in length: "
                         f"{', '.join(f'{n}={c.size}' for n, c in zip(names, cols))}")
    return np.stack(cols, axis=1) if cols else np.zeros((0, 0))


def _from_array(X: Any, names: Sequence[str]) -> np.ndarray:
    d = len(names)
    try:
        A = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"inputs are not numeric ({exc})") from None
    if A.ndim == 1:
        if d == 1:
            A = A[:, None]
        elif A.size == d:
            A = A[None, :]
        else:
            raise InputError(f"a 1-D input must hold one point of {d} values "
                             f"({', '.join(names)}); got {A.size} values")
    if A.ndim != 2:
        raise InputError(f"inputs must be a 2-D array (n, {d}); got shape {A.shape}")
    if A.shape[1] != d:
        raise InputError(f"inputs have {A.shape[1]} columns; the surrogate takes {d} "
                         f"({', '.join(names)})")
    return A


def as_input_matrix(X: Any, input_names: Sequence[str]) -> np.ndarray:
    """``X`` as an (n, d) float64 array in ``input_names`` order; finite values only."""
    names = [str(n) for n in input_names]
    A = _from_columns(X, names) if isinstance(X, Mapping) or _is_frame(X) else _from_array(X, names)
    bad = ~np.isfinite(A)
    if bad.any():
        r, c = (int(v) for v in np.argwhere(bad)[0])
        what = "NaN" if np.isnan(A[r, c]) else "infinite"
        raise InputError(f"inputs contain NaN or infinite values ({int(bad.sum())} in all; the "
                         f"first is {what} in row {r}, input {names[c]!r})", row=r, column=names[c])
    return np.ascontiguousarray(A)


def outside_bounds(X: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """(n, d) bool: where a value lies outside ``bounds`` (d, 2) (the bounds themselves are in)."""
    return (X < bounds[:, 0]) | (X > bounds[:, 1])


def extrapolation_message(outside: np.ndarray, input_names: Sequence[str]) -> str | None:
    """One line for the warning, or None when every point lies inside the bounds."""
    rows = outside.any(axis=1)
    if not rows.any():
        return None
    per_input = outside.sum(axis=0)
    which = ", ".join(f"{n} ({int(c)})" for n, c in zip(input_names, per_input) if c)
    return (f"{int(rows.sum())} of {rows.size} points lie outside the oracle's bounds (points "
            f"per input: {which}); the surrogate extrapolates there, trust those predictions "
            "less")
