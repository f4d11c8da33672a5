"""``table``: a pool-based oracle that looks labels up in a data file.

This is the "simulator" of benchmark studies: every label already exists, and active learning
only decides which ones to reveal. The candidate pool is the set of the table's inputs
(:meth:`TableOracle.fixed_points`), and a label is found by an exact match of the input row
(a hash of its float64 bytes), so a point that is not in the table is an error, never an
interpolation.

Formats: CSV (``.csv``, optional header), whitespace-separated text (``.txt``, ``.dat``, any
other suffix), NumPy ``.npy`` (2-D) / ``.npz`` (keys ``X`` and ``y``), HDF5 (``.h5``,
``.hdf5``; datasets ``x_key`` and ``y_key``, or one 2-D ``key``). Unless ``output_columns``
says otherwise, the last ``n_outputs`` columns are outputs and the rest inputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import Oracle


def _row_key(x: np.ndarray) -> bytes:
    # +0.0 folds -0.0 into 0.0 so that the two hash alike; float64 C order fixes the bytes.
    return np.ascontiguousarray(np.asarray(x, dtype=np.float64) + 0.0).tobytes()


def _read_text(path: Path, delimiter: str | None) -> tuple[np.ndarray, list[str] | None]:
    with open(path) as fh:
        first = fh.readline()
    tokens = first.strip().split(delimiter) if delimiter else first.split()
    header = None
    try:
        [float(t) for t in tokens]
        skip = 0
    except ValueError:
        header = [t.strip().strip('"') for t in tokens]
        skip = 1
    data = np.loadtxt(path, delimiter=delimiter, skiprows=skip, ndmin=2, dtype=float)
    return data, header


def load_table(
    path: str | Path, key: str | None = None, delimiter: str | None = None
) -> tuple[np.ndarray, list[str] | None]:
    """Read a 2-D numeric table and its column names (when the file has them)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"table: data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, allow_pickle=False), None
    if suffix in (".h5", ".hdf5", ".he5"):
        import h5py

        with h5py.File(path, "r") as f:
            if key is None:
                names = [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]
                if len(names) != 1:
                    raise ValueError(f"table: {path} holds datasets {names}; give key= (or x_key/y_key)")
                key = names[0]
            if key not in f:
                raise KeyError(f"table: dataset {key!r} not in {path}; it has {list(f.keys())}")
            ds = f[key]
            cols = ds.attrs.get("columns")
            return np.asarray(ds[...], dtype=float), [str(c) for c in cols] if cols is not None else None
    if suffix == ".csv":
        return _read_text(path, delimiter or ",")
    return _read_text(path, delimiter)


def _select(spec: Sequence[int | str] | None, header: list[str] | None, n_cols: int, what: str) -> list[int]:
    out = []
    for c in spec or []:
        if isinstance(c, str):
            if header is None or c not in header:
                raise ValueError(f"table: {what} column {c!r} not found; columns are {header}")
            out.append(header.index(c))
        else:
            if not -n_cols <= int(c) < n_cols:
                raise ValueError(f"table: {what} column index {c} out of range for {n_cols} columns")
            out.append(int(c) % n_cols)
    return out


class TableOracle(Oracle):
    """Labels from a table: exact row lookup; the pool is the table's inputs."""

    name = "table"
    version = "1.0"
    description = "pool-based lookup of labels in a data file (CSV, text, .npy/.npz, HDF5)"

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        X: Any = None,
        y: Any = None,
        n_outputs: int = 1,
        input_columns: Sequence[int | str] | None = None,
        output_columns: Sequence[int | str] | None = None,
        input_names: Sequence[str] | None = None,
        output_names: Sequence[str] | None = None,
        key: str | None = None,
        x_key: str | None = None,
        y_key: str | None = None,
        delimiter: str | None = None,
        name: str | None = None,
        source: str | None = None,
    ) -> None:
        if name:
            self.name = name
        header: list[str] | None = None
        if path is not None and (X is not None or y is not None):
            raise ValueError("table: give either path= or X= and y=, not both")
        if path is not None:
            path = Path(path)
            if x_key or y_key:
                import h5py

                with h5py.File(path, "r") as f:
                    X, y = np.asarray(f[x_key or "X"], float), np.asarray(f[y_key or "y"], float)
            elif path.suffix.lower() == ".npz":
                with np.load(path, allow_pickle=False) as z:
                    if "X" not in z or "y" not in z:
                        raise ValueError(f"table: {path} must hold arrays 'X' and 'y', has {list(z.keys())}")
                    X, y = z["X"], z["y"]
            else:
                data, header = load_table(path, key=key, delimiter=delimiter)
                if data.ndim != 2:
                    raise ValueError(f"table: {path} must hold a 2-D table, got shape {data.shape}")
                n_cols = data.shape[1]
                if output_columns is None:
                    if not 1 <= n_outputs < n_cols:
                        raise ValueError(f"table: n_outputs={n_outputs} must be in [1, {n_cols - 1}] for {n_cols} columns")
                    out_idx = list(range(n_cols - n_outputs, n_cols))
                else:
                    out_idx = _select(output_columns, header, n_cols, "output")
                if input_columns is None:
                    in_idx = [i for i in range(n_cols) if i not in out_idx]
                else:
                    in_idx = _select(input_columns, header, n_cols, "input")
                X, y = data[:, in_idx], data[:, out_idx]
                if header is not None:
                    input_names = input_names or [header[i] for i in in_idx]
                    output_names = output_names or [header[i] for i in out_idx]
        if X is None or y is None:
            raise ValueError("table: needs path= (a data file) or both X= and y= arrays")
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        if X.ndim == 1:
            X = X[:, None]
        if y.ndim == 1:
            y = y[:, None]
        if X.ndim != 2 or y.ndim != 2 or X.shape[0] != y.shape[0] or X.shape[0] == 0:
            raise ValueError(f"table: X {X.shape} and y {y.shape} must be 2-D with the same number (>0) of rows")
        if not np.all(np.isfinite(X)):
            raise ValueError("table: input columns contain NaN or inf")
        # Unique rows in order of first appearance; duplicates keep the first row's label.
        index: dict[bytes, int] = {}
        keep = []
        for i, row in enumerate(X):
            k = _row_key(row)
            if k not in index:
                index[k] = len(keep)
                keep.append(i)
        self.n_duplicates = X.shape[0] - len(keep)
        self._X = X[keep]
        self._y = y[keep]
        self._index = index
        lo, hi = self._X.min(0), self._X.max(0)
        hi = np.where(hi > lo, hi, lo + 1.0)  # a constant column still needs a proper box
        self._setup(
            bounds=np.column_stack([lo, hi]),
            output_names=output_names,
            input_names=input_names,
            params={"path": str(path) if path is not None else None, "source": source,
                    "data_sha1": hashlib.sha1(np.ascontiguousarray(X).tobytes()
                                              + np.ascontiguousarray(y).tobytes()).hexdigest(),
                    "n_rows": int(X.shape[0]), "n_unique": len(keep), "n_duplicates": self.n_duplicates},
            n_outputs=y.shape[1],
        )

    def _lookup(self, x: np.ndarray) -> int:
        i = self._index.get(_row_key(x))
        if i is None:
            raise KeyError(
                f"{self.name}: point {np.asarray(x).tolist()} is not in the table "
                f"(a table oracle can only label its own rows; use fixed_points() as the pool)"
            )
        return i

    def _evaluate(self, x: np.ndarray) -> np.ndarray:
        return self._y[self._lookup(x)]

    def evaluate_batch(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.input_dim:
            raise ValueError(f"{self.name}: batch must have shape (n, {self.input_dim}), got {X.shape}")
        return self._y[[self._lookup(x) for x in X]]

    def fixed_points(self) -> np.ndarray:
        return self._X.copy()

    @property
    def outputs(self) -> np.ndarray:
        """All labels, aligned with :meth:`fixed_points` (for benchmarks' test sets)."""
        return self._y.copy()
