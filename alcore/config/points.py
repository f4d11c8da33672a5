"""Reading ``pool.file`` and ``test.file``: the arrays, checked before anything is created.

Formats (the README's config table): ``.npy`` (one array), ``.npz`` (array ``X``, or its first
array; a test file needs ``X`` and ``y``), ``.csv`` (comma-separated) or any other text file
(whitespace-separated, ``#`` comments). A test table holds the ``d`` inputs then the ``k``
outputs of each point.

Every value must be finite: a NaN in the pool would be selected and sent to the simulator, a
NaN in the test set turns every metric into NaN. Found here, it costs nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alcore.config.errors import ConfigError

__all__ = ["read_pool_file", "read_test_file"]


def read_pool_file(path: Path, d: int, oracle: str) -> np.ndarray:
    """The ``(n, d)`` candidate points of ``pool.file``; ``ConfigError`` naming the problem."""
    X = _read_array(path, "pool.file")
    if X.shape[1] != d:
        raise ConfigError([f"pool.file: {path} has {X.shape[1]} column(s), oracle '{oracle}' takes {d} input(s)"])
    _finite(X, path, "pool.file")
    return X


def read_test_file(path: Path, d: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``(n, d)`` inputs and ``(n, k)`` outputs of ``test.file``; ``ConfigError`` otherwise."""
    if path.suffix == ".npz" and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                if "X" not in z or "y" not in z:
                    raise ConfigError([f"test.file: {path} must hold arrays 'X' and 'y' (has {', '.join(z.files)})"])
                X = np.atleast_2d(np.asarray(z["X"], dtype=float))
                y = np.asarray(z["y"], dtype=float).reshape(len(X), -1)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
            raise ConfigError([f"test.file: cannot read {path}: {_first_line(exc)}"]) from None
        if X.shape[1] != d or y.shape[1] != k:
            raise ConfigError([f"test.file: {path} has X with {X.shape[1]} column(s) and y with "
                               f"{y.shape[1]}; the oracle takes {d} input(s) and gives {k} output(s)"])
    else:
        table = _read_array(path, "test.file")
        if table.shape[1] != d + k:
            raise ConfigError([f"test.file: {path} has {table.shape[1]} column(s); need {d} input(s) then "
                               f"{k} output(s), {d + k} columns"])
        X, y = table[:, :d], table[:, d:]
    _finite(np.column_stack([X, y]), path, "test.file")
    return X, y


def _read_array(path: Path, key: str) -> np.ndarray:
    if not path.exists():
        raise ConfigError([f"{key}: file not found: {path}"])
    if path.is_dir():
        raise ConfigError([f"{key}: {path} is a folder, not a file"])
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if not z.files:
                    raise ValueError("holds no arrays")
                arr = z["X"] if "X" in z else z[z.files[0]]
        else:
            arr = np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None, ndmin=2)
        arr = np.atleast_2d(np.asarray(arr, dtype=float))
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
        raise ConfigError([f"{key}: cannot read {path}: {_first_line(exc)}"]) from None
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ConfigError([f"{key}: {path} holds no points (shape {arr.shape})"])
    return arr


def _finite(a: np.ndarray, path: Path, key: str) -> None:
    bad = np.flatnonzero(~np.isfinite(a).all(axis=1))
    if bad.size:
        raise ConfigError([f"{key}: {path} has NaN or inf in {bad.size} row(s) (first: row {bad[0] + 1})"])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
