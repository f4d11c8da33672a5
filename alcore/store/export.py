"""Export of a store's evaluations to CSV or NPZ (used by ``alflow export``).

Reads the store read-only (journal replayed in memory), so it works while a campaign runs.
The output path is checked before anything is read or created: it may never be the store or
one of its companion files (also through a symlink), and an existing file is replaced only
with ``force=True``; the file appears complete or not at all (temp file + rename).
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .campaign_store import CampaignStore
from .errors import ExportTargetError
from .files import StoreFiles
from .fsutil import atomic_write
from .layout import StoreStatus

FORMATS = ("csv", "npz")
#: Per-evaluation columns after inputs and outputs, in this order (CSV header and NPZ keys).
EVAL_COLUMNS = ("wall_time", "worker", "attempts", "submitted", "started", "finished")
#: Added with ``include_failed``.
FAILURE_COLUMNS = ("status", "kind", "reason")


def _names(info: dict, key: str, n: int, prefix: str) -> list[str]:
    names = info.get(key)
    if names and len(names) == n:
        return [str(x) for x in names]
    return [f"{prefix}{j}" for j in range(n)]


def check_target(store_path: str | os.PathLike, out_path: str | os.PathLike,
                 force: bool = False) -> Path:
    """The output path, or :class:`ExportTargetError` naming why it may not be written.

    The one rule for every file a command writes next to a store (``alflow export``,
    ``predict -o``, ``export-model``): never the store or one of its files (also through a
    symlink), never a directory, an existing file only with ``force``.
    """
    out = Path(out_path)
    files = StoreFiles.of(store_path)
    if files.owns(out):
        raise ExportTargetError(
            f"refusing to write {out}: it is the campaign store {files.given} or one of its "
            "files (journal, lock, temp, stop); choose another output path")
    if out.is_dir():
        raise ExportTargetError(f"output {out} is a directory; give a file name")
    if os.path.lexists(out) and not force:
        raise ExportTargetError(f"output {out} already exists; pass --force to overwrite it")
    return out


@dataclass
class _Table:
    """The exported rows, column by column (pool order)."""

    index: np.ndarray
    iteration: np.ndarray
    X: np.ndarray
    y: np.ndarray
    columns: dict[str, np.ndarray]
    input_names: list[str]
    output_names: list[str]


def _read(store: CampaignStore, include_failed: bool) -> _Table:
    status = store.status
    wanted = [StoreStatus.LABELLED] + ([StoreStatus.FAILED] if include_failed else [])
    idx = np.flatnonzero(np.isin(status, wanted))
    X = np.asarray(store.pool_X)[idx]
    Y = store.outputs[idx]
    columns = {"wall_time": store.wall_times[idx], "worker": store.workers[idx],
               "attempts": store.attempts[idx], "submitted": store.submitted_times[idx],
               "started": store.started_times[idx], "finished": store.finished_times[idx]}
    if include_failed:
        columns["status"] = np.array([StoreStatus(int(s)).text for s in status[idx]], dtype=str)
        columns["kind"] = store.failure_kinds[idx]
        columns["reason"] = store.failure_reasons[idx]
    info = store.oracle_info
    k = Y.shape[1] if Y.ndim == 2 else 0
    return _Table(index=idx, iteration=store.iteration_requested[idx], X=X, y=Y,
                  columns=columns, input_names=_names(info, "input_names", X.shape[1], "x"),
                  output_names=_names(info, "output_names", k, "y"))


def _cell(v: object) -> str:
    """Floats in ``repr`` precision (round-trip exact), integers and text as they are."""
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return str(v)


def _write_csv(t: _Table, path: Path) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "iteration", *t.input_names, *t.output_names, *t.columns])
        for r in range(t.index.size):
            w.writerow([int(t.index[r]), int(t.iteration[r]), *map(_cell, t.X[r]),
                        *map(_cell, t.y[r]), *(_cell(c[r]) for c in t.columns.values())])


def _write_npz(t: _Table, path: Path) -> None:
    cols = {k: (v.astype(str) if v.dtype.kind in "OU" else v) for k, v in t.columns.items()}
    with open(path, "wb") as fh:
        np.savez(fh, index=t.index, iteration=t.iteration, X=t.X, y=t.y, **cols,
                 input_names=np.array(t.input_names, dtype=str),
                 output_names=np.array(t.output_names, dtype=str))


def export_labelled(store_path: str | os.PathLike, out_path: str | os.PathLike,
                    format: str = "csv", *, include_failed: bool = False,
                    force: bool = False) -> dict:
    """Write every labelled point (and with ``include_failed`` every failed one) of the store
    to ``out_path``; return ``{"path", "rows", "format"}``.

    CSV columns: ``index, iteration, <input names>, <output names>, wall_time, worker,
    attempts, submitted, started, finished`` and, with ``include_failed``, ``status``
    ("labelled"/"failed"), ``kind`` and ``reason`` (the full text); outputs of failed points are
    NaN. Input and output names come from the oracle info, else ``x0..``/``y0..``. NPZ holds
    the same columns as arrays plus ``X`` (n, d), ``y`` (n, k), ``input_names``,
    ``output_names``. Rows are in pool order. Raises :class:`ExportTargetError` for an output
    path that is a store file or a companion, or an existing file without ``force``.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    out = check_target(store_path, out_path, force)
    with CampaignStore.open(store_path, "r") as store:
        table = _read(store, include_failed)
    out.parent.mkdir(parents=True, exist_ok=True)
    write = _write_csv if format == "csv" else _write_npz
    try:
        atomic_write(out, lambda tmp: write(table, tmp), tmp=out.with_name(out.name + ".part"),
                     overwrite=force)
    except FileExistsError:
        raise ExportTargetError(f"{out} already exists; pass --force to overwrite it") from None
    return {"path": str(out), "rows": int(table.index.size), "format": format}
