"""Reading and atomically replacing the HDF5 file of a store.

Why atomic replacement: HDF5 has no journal, so a process killed while h5py modifies a file
can leave it unopenable. alflow therefore never modifies the store file in place. A fold
(:func:`write_store`) copies the current file to ``<store>.tmp`` (a plain byte copy, cheap),
applies the changes to the copy with h5py, fsyncs it, ``os.replace``s it over the store and
fsyncs the directory (:func:`alcore.store.fsutil.atomic_write`). A kill at any moment leaves
either the old or the new complete file; a left-over ``.tmp`` is garbage that the next writer
deletes, and a failure before the rename (a full disk) removes it at once.

Only plain types are written (numbers, fixed arrays, UTF-8 variable-length strings, JSON
strings); no pickles, no object references, so h5dump/HDFView/pandas read the file without
alflow.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import layout as L
from .errors import ForeignHDF5Error, NotHDF5Error, SchemaVersionError, StoreCorruptError
from .fsutil import atomic_write
from .journal import dumps
from .state import IterationRecord, StoreState

STR = h5py.string_dtype("utf-8")
#: Target chunk size in bytes for row-chunked datasets.
CHUNK_BYTES = 64 * 1024


def _open_ro(path: Path) -> h5py.File:
    # HDF5's own file locking is off: alflow has its own lock, and HDF5 locking fails on NFS.
    return h5py.File(path, "r", locking=False)


def _chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    row = itemsize * int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else itemsize
    rows = max(1, min(max(shape[0], 1), CHUNK_BYTES // max(row, 1)))
    return (rows,) + tuple(shape[1:])


@dataclass(frozen=True)
class PoolColumn:
    """One per-point dataset ``/pool/<name>`` and the :class:`StoreState` array it holds."""

    name: str
    dtype: Any  # a numpy dtype, or STR for UTF-8 strings
    since: int = 1  # schema version that added it: older files read it as all-unknown

    @property
    def is_str(self) -> bool:
        return self.dtype is STR


#: Every per-point column except ``X`` and ``y`` (whose shapes differ), in h5dump order.
POOL_COLUMNS = (
    PoolColumn("status", np.int8), PoolColumn("iteration_requested", np.int32),
    PoolColumn("request_score", np.float64), PoolColumn("wall_time", np.float64),
    PoolColumn("attempts", np.int32), PoolColumn("submitted", np.float64, since=2),
    PoolColumn("started", np.float64, since=2), PoolColumn("finished", np.float64, since=2),
    PoolColumn("worker", STR), PoolColumn("failure_reason", STR),
    PoolColumn("failure_kind", STR, since=2),
)


def _rows_dataset(g: h5py.Group, name: str, data: np.ndarray, dtype=None) -> h5py.Dataset:
    """Chunked dataset whose first axis can grow (maxshape None)."""
    dtype = dtype or data.dtype
    itemsize = 16 if dtype is STR else np.dtype(dtype).itemsize
    return g.create_dataset(name, data=data, dtype=dtype, chunks=_chunks(data.shape, itemsize),
                            maxshape=(None,) + data.shape[1:])


# ------------------------------------------------------------------------------ reading
def check_file(path: Path) -> None:
    """Raise the one clear error for a path that is not a readable alflow store. Never writes."""
    if not h5py.is_hdf5(str(path)):
        raise NotHDF5Error(f"{path} is not an HDF5 file (no HDF5 signature); not an alflow store")
    try:
        with _open_ro(path) as f:
            _check_marker(f, path)
    except OSError as exc:
        raise StoreCorruptError(f"{path} is an HDF5 file that HDF5 cannot open: {exc}") from exc


def _check_marker(f: h5py.File, path: Path) -> int:
    meta = f.get(L.META)
    marker = meta.attrs.get(L.FORMAT_ATTR) if isinstance(meta, h5py.Group) else None
    if isinstance(marker, bytes):
        marker = marker.decode()
    if marker != L.FORMAT_VALUE:
        raise ForeignHDF5Error(
            f"{path} is an HDF5 file but not an alflow store (no /meta attribute "
            f"{L.FORMAT_ATTR}={L.FORMAT_VALUE!r})")
    version = int(meta.attrs.get("schema_version", -1))
    if version > L.SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} has store schema version {version}, newer than this alflow reads "
            f"({L.SCHEMA_VERSION}); upgrade alflow")
    if version < 1:
        raise StoreCorruptError(f"{path}: invalid schema_version {version}")
    return version


def _attr_str(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def read_state(path: Path) -> StoreState:
    """Load everything except checkpoint tensors into memory (pool arrays are small)."""
    check_file(path)
    try:
        with _open_ro(path) as f:
            return _read(f)
    except KeyError as exc:
        raise StoreCorruptError(f"{path}: missing object in the store ({exc})") from exc


def _json_ds(f: h5py.File, name: str) -> dict:
    return json.loads(f[name].asstr()[()])


def _read_column(f: h5py.File, col: PoolColumn, P: int) -> np.ndarray | None:
    """The column's values, or None when a file older than the column lacks it."""
    name = f"{L.POOL}/{col.name}"
    if name not in f:
        if col.since > 1:
            return None
        raise StoreCorruptError(f"{f.filename}: missing dataset /{name}")
    ds = f[name]
    if ds.shape[:1] != (P,):
        raise StoreCorruptError(f"{f.filename}: /{name} has {ds.shape} rows, the pool {P}")
    if col.is_str:
        return np.array(ds.asstr()[()], dtype=object).reshape(P)
    return ds[()].astype(col.dtype)


def _read(f: h5py.File) -> StoreState:
    ma = f[L.META].attrs
    meta = {k: (v.item() if isinstance(v, np.generic) else _attr_str(v) if isinstance(v, (bytes, str)) else v)
            for k, v in ma.items()}
    meta = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in meta.items()}
    P = f[L.POOL_X].shape[0]
    columns = StoreState.empty_columns(P)
    for col in POOL_COLUMNS:
        values = _read_column(f, col, P)
        if values is not None:
            columns[col.name] = values
    st = StoreState(
        store_id=bytes.fromhex(meta["store_id"]),
        meta=meta,
        config=_json_ds(f, L.CONFIG_JSON),
        oracle_info=_json_ds(f, L.ORACLE_JSON),
        seeds=_json_ds(f, L.SEEDS_JSON),
        pool_X=f[L.POOL_X][()],
        y=f[L.POOL_Y][()] if L.POOL_Y in f else None,
        test_X=f["test/X"][()] if "test/X" in f else None,
        test_y=f["test/y"][()] if "test/y" in f else None,
        **columns,
    )
    for name, g in f[L.ITERATIONS].items():
        it = IterationRecord(selected=[int(i) for i in g["selected"][()]],
                             scores=[float(s) for s in g["scores"][()]])
        if int(g.attrs.get("finished", 0)):
            it.metrics = json.loads(_attr_str(g.attrs["metrics_json"]))
            it.timings = json.loads(_attr_str(g.attrs["timings_json"]))
            it.info = json.loads(_attr_str(g.attrs.get("info_json", "{}")))
        st.iterations[int(name)] = it
    st.checkpoint_iterations = sorted(int(n) for n in f[L.CHECKPOINTS])
    st.folded_seq = st.last_seq = int(meta.get("journal_seq", 0))
    return st


def read_checkpoint(path: Path, iteration: int) -> dict[str, np.ndarray]:
    """Tensors of one checkpoint, keys and dtypes as they were saved."""
    with _open_ro(path) as f:
        g = f[f"{L.CHECKPOINTS}/{L.iteration_name(iteration)}"]
        out: dict[str, np.ndarray] = {}
        for ds in g.values():
            key = _attr_str(ds.attrs.get("key", ds.name.rsplit("/", 1)[-1]))
            kind = _attr_str(ds.attrs.get("kind", "num"))
            if kind == "str":
                out[key] = np.array(ds.asstr()[()], dtype=str)
            elif kind == "bool":
                out[key] = ds[()].astype(bool)
            else:
                out[key] = ds[()]
        return out


# ------------------------------------------------------------------------------ writing
def write_store(path: Path, tmp: Path, st: StoreState, *, fresh: bool = False) -> None:
    """Fold ``st`` into the store file by atomic replacement, building it at ``tmp``.

    ``path`` is the store's real path (symlinks resolved: the link stays a link).
    ``fresh=True`` writes a new file from scratch (creation, or a full rewrite that drops the
    garbage in-place updates leave behind); otherwise the current file is copied and only what
    is dirty is rewritten. A failure (a full disk) leaves no ``<store>.tmp`` behind.
    """
    def build(tmp: Path) -> None:
        if fresh or not path.exists():
            with h5py.File(tmp, "w", locking=False) as f:
                _write_all(f, st)
        else:
            shutil.copyfile(path, tmp)
            with h5py.File(tmp, "r+", locking=False) as f:
                _write_dirty(f, st)

    atomic_write(path, build, tmp=tmp)


def _write_meta_attrs(f: h5py.File, st: StoreState) -> None:
    a = f[L.META].attrs
    a[L.FORMAT_ATTR] = L.FORMAT_VALUE
    a["schema_version"] = np.int32(L.SCHEMA_VERSION)
    a["store_id"] = st.store_id.hex()
    for k in ("alflow_version", "created", "oracle_name", "oracle_version"):
        a[k] = str(st.meta.get(k, ""))
    for k, v in st.seeds.items():
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            a[f"seed_{k}"] = np.int64(v)
    a["journal_seq"] = np.int64(st.last_seq)
    a["n_pool"] = np.int64(st.n_pool)
    a["n_outputs"] = np.int64(-1 if st.n_outputs is None else st.n_outputs)
    for k in ("input_names", "output_names"):
        names = st.oracle_info.get(k)
        if names:
            a[k] = np.array([str(n) for n in names], dtype=STR)


def _scalar_str(g: h5py.Group, name: str, text: str) -> None:
    if name in g:
        del g[name]
    g.create_dataset(name, data=text, dtype=STR)


def _write_all(f: h5py.File, st: StoreState) -> None:
    meta = f.create_group(L.META)
    _scalar_str(meta, "config_json", dumps(st.config))
    _scalar_str(meta, "oracle_info_json", dumps(st.oracle_info))
    _scalar_str(meta, "seeds_json", dumps(st.seeds))
    _write_meta_attrs(f, st)
    pool = f.create_group(L.POOL)
    _rows_dataset(pool, "X", st.pool_X.astype(np.float64))
    if st.y is not None:
        _rows_dataset(pool, "y", st.y)
    for col in POOL_COLUMNS:
        _create_column(pool, col, st)
    if st.test_X is not None:
        test = f.create_group(L.TEST)
        _rows_dataset(test, "X", np.asarray(st.test_X, np.float64))
        if st.test_y is not None:
            _rows_dataset(test, "y", np.asarray(st.test_y, np.float64))
    f.create_group(L.ITERATIONS)
    f.create_group(L.CHECKPOINTS)
    for i in st.iterations:
        _write_iteration(f, i, st.iterations[i])
    _write_history(f, st)
    for i, state in st.pending_checkpoints.items():
        _write_checkpoint(f, i, state)


def _runs(rows: np.ndarray):
    """Split sorted row indices into (start, stop) runs of consecutive rows."""
    if rows.size == 0:
        return
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    for chunk in np.split(rows, breaks):
        yield int(chunk[0]), int(chunk[-1]) + 1


def _create_column(pool: h5py.Group, col: PoolColumn, st: StoreState) -> None:
    values = getattr(st, col.name)
    if col.is_str:
        _rows_dataset(pool, col.name, values, dtype=STR)
    else:
        _rows_dataset(pool, col.name, values.astype(col.dtype))
    if col.name == "status":
        pool["status"].attrs["codes"] = L.STATUS_CODES_TEXT


def _write_dirty(f: h5py.File, st: StoreState) -> None:
    if st.dirty_config:
        _scalar_str(f[L.META], "config_json", dumps(st.config))
    _write_meta_attrs(f, st)
    pool = f[L.POOL]
    for col in POOL_COLUMNS:  # a file from before a column existed gains it now
        if col.name not in pool:
            _create_column(pool, col, st)
    if st.dirty_rows:
        # Numeric columns: a full rewrite of contiguous uncompressed data is in place and cheap.
        for col in POOL_COLUMNS:
            if not col.is_str:
                pool[col.name][...] = getattr(st, col.name)
        if st.y is not None:
            if L.POOL_Y not in f:
                _rows_dataset(pool, "y", st.y)
            else:
                f[L.POOL_Y][...] = st.y
        # Strings live in HDF5's global heap: rewriting a row leaves its old string behind as
        # garbage, so only the rows that changed are rewritten.
        rows = np.array(sorted(st.dirty_rows), dtype=np.int64)
        for a, b in _runs(rows) if rows.size < 8 else ((rows, None),):
            sel = slice(a, b) if b is not None else a  # few runs: slices; else one point set
            for col in POOL_COLUMNS:
                if col.is_str:
                    pool[col.name][sel] = getattr(st, col.name)[sel]
    for i in sorted(st.dirty_iterations):
        _write_iteration(f, i, st.iterations[i])
    if st.dirty_iterations:
        _write_history(f, st)
    for i, state in st.pending_checkpoints.items():
        _write_checkpoint(f, i, state)


def flatten_numbers(d: dict, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested metrics dict as ``{"rmse": .., "rmse.0": .., "train.s": ..}``."""
    out: dict[str, float] = {}
    for k, v in d.items():
        key = f"{prefix}{k}".replace("/", "_")
        if isinstance(v, dict):
            out.update(flatten_numbers(v, key + "."))
        elif isinstance(v, (list, tuple, np.ndarray)):
            for j, x in enumerate(np.asarray(v).reshape(-1).tolist()):
                if isinstance(x, (int, float)) and not isinstance(x, bool):
                    out[f"{key}.{j}"] = float(x)
        elif isinstance(v, (bool, np.bool_)):
            out[key] = float(v)
        elif isinstance(v, (int, float, np.integer, np.floating)):
            out[key] = float(v)
    return out


def _write_iteration(f: h5py.File, i: int, it: IterationRecord) -> None:
    name = f"{L.ITERATIONS}/{L.iteration_name(i)}"
    if name in f:
        del f[name]
    g = f.create_group(name)
    g.attrs["iteration"] = np.int64(i)
    _rows_dataset(g, "selected", np.asarray(it.selected, dtype=np.int64))
    _rows_dataset(g, "scores", np.asarray(it.scores, dtype=np.float64))
    g.attrs["finished"] = np.int8(it.finished)
    if it.finished:
        g.attrs["metrics_json"] = dumps(it.metrics)
        g.attrs["timings_json"] = dumps(it.timings)
        g.attrs["info_json"] = dumps(it.info)
        for k, v in flatten_numbers({"metrics": it.metrics, "timings": it.timings}).items():
            g.attrs[k] = v


def _write_history(f: h5py.File, st: StoreState) -> None:
    """``/history``: one column dataset per metric, one row per iteration (a flat table)."""
    if L.HISTORY in f:
        del f[L.HISTORY]
    g = f.create_group(L.HISTORY)
    its = sorted(st.iterations)
    flat = [flatten_numbers({"metrics": st.iterations[i].metrics or {},
                             "timings": st.iterations[i].timings or {}}) for i in its]
    cols = sorted({k for row in flat for k in row})
    g.attrs["columns"] = np.array(["iteration", "n_selected", "finished"] + cols, dtype=STR)
    _rows_dataset(g, "iteration", np.asarray(its, dtype=np.int32))
    _rows_dataset(g, "n_selected", np.asarray([len(st.iterations[i].selected) for i in its],
                                              dtype=np.int32))
    _rows_dataset(g, "finished", np.asarray([st.iterations[i].finished for i in its], np.int8))
    for c in cols:
        _rows_dataset(g, c, np.asarray([row.get(c, np.nan) for row in flat], dtype=np.float64))


def _write_checkpoint(f: h5py.File, i: int, state: dict[str, np.ndarray]) -> None:
    name = f"{L.CHECKPOINTS}/{L.iteration_name(i)}"
    if name in f:
        del f[name]
    g = f.create_group(name)
    g.attrs["iteration"] = np.int64(i)
    for key, value in state.items():
        arr = np.asarray(value)
        dsname = key.replace("/", "|")
        if arr.dtype.kind in "USO":
            ds = g.create_dataset(dsname, data=arr.astype(str).astype(object), dtype=STR)
            kind = "str"
        elif arr.dtype.kind == "b":
            ds = g.create_dataset(dsname, data=arr.astype(np.uint8))
            kind = "bool"
        else:
            if arr.dtype.kind not in "iuf":
                raise TypeError(f"checkpoint tensor {key!r} has unsupported dtype {arr.dtype}")
            ds = g.create_dataset(dsname, data=arr)
            kind = "num"
        ds.attrs["key"] = key
        ds.attrs["kind"] = kind
