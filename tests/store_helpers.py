"""Shared helpers of the store tests (small stores, file hashing)."""
from __future__ import annotations

import hashlib
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
