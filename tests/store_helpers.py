"""Shared helpers of the store tests (small stores, file hashing, simulated kills)."""
from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np

from alcore.store import CampaignStore

CONFIG = {"campaign": {"name": "t", "deadline": "07:00"}, "model": {"hidden": [8, 8]},
          "budget": {"max_labels": 50}, "dask": {"workers": 2}}
ORACLE = {"name": "toy", "version": "1.2", "input_names": ["a", "b", "c"],
          "output_names": ["u", "v"]}


def make_store(path: Path, P: int = 40, seed: int = 0, **kw) -> CampaignStore:
    rng = np.random.default_rng(seed)
    args = dict(config=CONFIG, oracle_info=ORACLE, pool_X=rng.random((P, 3)),
                test_X=rng.random((5, 3)), test_y=rng.random((5, 2)),
                seeds={"pool": seed, "model": 7})
    args.update(kw)
    return CampaignStore.create(path, **args)


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dir_state(d: Path) -> dict[str, str]:
    """Name -> hash of every file in a directory (to prove nothing was touched)."""
    return {p.name: sha(p) for p in sorted(Path(d).iterdir()) if p.is_file()}


def abandon(store: CampaignStore) -> None:
    """Leave ``store`` as a ``kill -9`` would: journal not folded, lock file removed so that
    this (still living) process can open the store again."""
    store._journal.close()
    store._closed = True
    if store._lock is not None:
        lock_path = store._lock.path
        store._lock.info = None
        lock_path.unlink(missing_ok=True)


def journal_path(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".journal")


def record_offsets(journal: Path, header_size: int) -> list[tuple[int, int]]:
    """(start, end) byte range of every framed record (u32 length | u32 crc | payload)."""
    data = journal.read_bytes()
    out, pos = [], header_size
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from("<I", data, pos)
        out.append((pos, pos + 8 + length))
        pos += 8 + length
    return out


def labelled_unfolded_store(path: Path, n: int = 8) -> CampaignStore:
    """A store with ``n`` requested points labelled one record each, then 'killed'.

    Journal records: #1 the request, #2..#n+1 the labels of points 0..n-1 (value [i, i+0.25]).
    """
    s = make_store(path)
    s.mark_requested(list(range(n)), 0)
    for i in range(n):
        s.record_label(i, [float(i), i + 0.25], wall_time=1.0 + i, worker=f"w{i}")
    abandon(s)
    return s
