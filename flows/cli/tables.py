"""Reading the points of ``alflow predict`` and writing its predictions (CSV, .npy, .npz).

Why not pandas: it is optional for alflow; the csv module and numpy read these files exactly
and let every problem be reported with its file, line and column. Errors are UserErrors (one
line, exit 2), raised before anything is written.

Input forms: CSV whose header names the inputs (any order; other columns are carried through
to the output unchanged, e.g. an id) or CSV without header (columns in the surrogate's input
order); ``.npy`` with an (n, d) array; ``.npz`` with an array ``X`` (n, d), one 1-D array per
input name, or a single array.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from flows.cli.errors import UserError

INPUT_SUFFIXES = (".csv", ".npy", ".npz")
OUTPUT_SUFFIXES = (".csv", ".npz")


@dataclass
class Points:
    """Parsed input points: ``X`` (n, d) in input order, carried-through columns, and where
    each row came from (for messages: "line 7", "row 6")."""

    X: np.ndarray
    where: list[str]
    extra: dict[str, list[str]] = field(default_factory=dict)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _float(cell: str, src: str, line: int, column: str) -> float:
    text = cell.strip()
    if not text:
        raise UserError(f"{src} line {line}, column {column}: empty value")
    try:
        return float(text)
    except ValueError:
        raise UserError(f"{src} line {line}, column {column}: {text!r} is not a number") from None


def _read_csv(path: Path, names: Sequence[str]) -> Points:
    src = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{src} is not a text (CSV) file") from None
    reader = csv.reader(io.StringIO(text))
    rows: list[tuple[int, list[str]]] = []
    for row in reader:
        if any(cell.strip() for cell in row):
            rows.append((reader.line_num, row))
    if not rows:
        raise UserError(f"{src} is empty: no points to predict")
    d = len(names)
    first_line, first = rows[0]
    header = None if all(_is_number(c) for c in first) else [c.strip() for c in first]
    if header is None:  # positional: the surrogate's input order
        if len(first) != d:
            raise UserError(f"{src} has no header and {len(first)} columns; the surrogate takes "
                            f"{d} inputs ({', '.join(names)}): add a header or fix the columns")
        data, cols, extra_names = rows, list(names), []
    else:
        dup = sorted({h for h in header if header.count(h) > 1})
        if dup:
            raise UserError(f"{src} header repeats column(s) {', '.join(dup)}")
        missing = [n for n in names if n not in header]
        if missing:
            raise UserError(f"{src}: missing input column(s) {', '.join(missing)}; the surrogate "
                            f"takes {', '.join(names)} (the header has {', '.join(header)})")
        data, cols = rows[1:], header
        extra_names = [h for h in header if h not in names]
        if not data:
            raise UserError(f"{src} has a header but no points")
    pos = {c: j for j, c in enumerate(cols)}
    X = np.empty((len(data), d))
    extra: dict[str, list[str]] = {c: [] for c in extra_names}
    where = []
    for r, (line, row) in enumerate(data):
        if len(row) != len(cols):
            raise UserError(f"{src} line {line} has {len(row)} values, expected {len(cols)}")
        for j, n in enumerate(names):
            X[r, j] = _float(row[pos[n]], src, line, n)
        for c in extra_names:
            extra[c].append(row[pos[c]])
        where.append(f"{src} line {line}")
    return Points(X, where, extra)


def _numeric(a: np.ndarray, src: str, what: str) -> np.ndarray:
    if a.dtype.kind not in "iufb":
        raise UserError(f"{src}: {what} is not numeric (dtype {a.dtype})")
    return np.asarray(a, dtype=np.float64)


def _matrix(a: np.ndarray, names: Sequence[str], src: str, what: str) -> np.ndarray:
    A = _numeric(a, src, what)
    d = len(names)
    if A.ndim == 1 and d == 1:
        A = A[:, None]
    if A.ndim != 2 or A.shape[1] != d:
        raise UserError(f"{src}: {what} has shape {A.shape}; the surrogate takes (n, {d}) "
                        f"inputs ({', '.join(names)})")
    return A


def _read_npz(path: Path, names: Sequence[str]) -> Points:
    src = str(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError) as exc:
        raise UserError(f"{src} is not a readable .npz file ({exc})") from None
    if "X" in arrays:
        X = _matrix(arrays["X"], names, src, "array 'X'")
    elif all(n in arrays for n in names):
        cols = [_numeric(arrays[n], src, f"array {n!r}").reshape(-1) for n in names]
        if len({c.size for c in cols}) > 1:
            raise UserError(f"{src}: the input arrays differ in length "
                            f"({', '.join(f'{n}={c.size}' for n, c in zip(names, cols))})")
        X = np.stack(cols, axis=1)
    elif len(arrays) == 1:
        (key, a), = arrays.items()
        X = _matrix(a, names, src, f"array {key!r}")
    else:
        raise UserError(f"{src} holds arrays {', '.join(arrays) or '(none)'}; expected 'X' "
                        f"(n, {len(names)}) or one array per input ({', '.join(names)})")
    return Points(X, [f"{src} row {r}" for r in range(len(X))])


def read_points(path: Path, names: Sequence[str]) -> Points:
    """The points in ``path`` (by suffix: .csv, .npy, .npz) as (n, d) in ``names`` order."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, names)
    if suffix == ".npz":
        return _read_npz(path, names)
    if suffix == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise UserError(f"{path} is not a readable .npy file ({exc})") from None
        X = _matrix(a, names, str(path), "the array")
        return Points(X, [f"{path} row {r}" for r in range(len(X))])
    raise UserError(f"input {path} must be .csv, .npy or .npz (got {path.suffix or 'no suffix'})")


def output_columns(input_names: Sequence[str], extra: Sequence[str],
                   output_names: Sequence[str]) -> list[str]:
    """Header of the CSV output: inputs, carried-through columns, mean/std per output, flag."""
    cols = [*input_names, *extra]
    for n in output_names:
        cols += [f"{n}_mean", f"{n}_std"]
    cols.append("extrapolated")
    dup = sorted({c for c in cols if cols.count(c) > 1})
    if dup:
        raise UserError(f"input column(s) {', '.join(dup)} clash with the output columns; "
                        "rename them")
    return cols


def write_csv(fh: IO[str], points: Points, input_names: Sequence[str],
              output_names: Sequence[str], mean: np.ndarray, std: np.ndarray,
              extrapolated: np.ndarray) -> None:
    """CSV with full float precision (``repr``: reads back to the same float64)."""
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(output_columns(input_names, list(points.extra), output_names))
    extra = list(points.extra.values())
    for r in range(points.X.shape[0]):
        cells = [repr(float(v)) for v in points.X[r]] + [col[r] for col in extra]
        for j in range(mean.shape[1]):
            cells += [repr(float(mean[r, j])), repr(float(std[r, j]))]
        cells.append("1" if extrapolated[r] else "0")
        w.writerow(cells)


def write_npz(fh: IO[bytes], points: Points, input_names: Sequence[str],
              output_names: Sequence[str], mean: np.ndarray, std: np.ndarray,
              extrapolated: np.ndarray, iteration: int) -> None:
    np.savez(fh, X=points.X, mean=mean, std=std, extrapolated=extrapolated.astype(bool),
             input_names=np.array(list(input_names), dtype=str),
             output_names=np.array(list(output_names), dtype=str),
             iteration=np.array(iteration, dtype=np.int64))
