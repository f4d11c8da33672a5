"""Build a new campaign's candidate pool and test set from its config.

Three sources: a pool-based oracle's fixed points (a seeded pool/test split of the table), a
pool file, or a seeded design over the oracle's bounds; the test set comes from a file, the
table split, or random points labelled through the dispatcher.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from alcore.campaign.errors import CampaignSetupError
from alcore.campaign.hooks import say
from alcore.campaign.seeds import Seeds
from alcore.config import CampaignConfig

if TYPE_CHECKING:
    from oracles import Dispatcher, Oracle

__all__ = ["build_pool_and_test"]


def _load_array_file(path: Path, what: str) -> np.ndarray:
    if not path.exists():
        raise CampaignSetupError(f"{what}: file not found: {path}")
    try:
        if path.suffix == ".npy":
            arr = np.load(path)
        elif path.suffix == ".npz":
            with np.load(path) as z:
                arr = z["X"] if "X" in z else z[z.files[0]]
        else:
            delim = "," if path.suffix == ".csv" else None
            arr = np.loadtxt(path, delimiter=delim, ndmin=2)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
        raise CampaignSetupError(f"{what}: cannot read {path}: {exc}") from None
    return np.atleast_2d(np.asarray(arr, dtype=float))


def _load_test_file(path: Path, d: int) -> tuple[np.ndarray, np.ndarray]:
    """A test set file: .npz with X and y, or a table whose first d columns are inputs."""
    if path.suffix == ".npz" and path.exists():
        with np.load(path) as z:
            if "X" not in z or "y" not in z:
                raise CampaignSetupError(f"test.file: {path} must hold arrays 'X' and 'y'")
            X, y = np.asarray(z["X"], float), np.asarray(z["y"], float)
        return np.atleast_2d(X), y.reshape(len(X), -1)
    arr = _load_array_file(path, "test.file")
    if arr.shape[1] <= d:
        raise CampaignSetupError(
            f"test.file: {path} has {arr.shape[1]} columns; need {d} inputs then the outputs"
        )
    return arr[:, :d], arr[:, d:]


def _label_directly(oracle: Oracle, dispatcher: Dispatcher, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label a test set through the dispatcher (simulators), dropping failed points.

    An error that is the same for every point (kind ``setup``: wrong output shape, missing
    parameter, import error) ends the labelling at once: the store is not created.
    """
    ys: dict[int, np.ndarray] = {}
    for r in dispatcher.evaluate(oracle, X, np.arange(len(X))):
        if r.ok:
            ys[int(r.index)] = np.asarray(r.y, float).reshape(-1)
        elif getattr(r, "kind", "error") == "setup":
            raise CampaignSetupError(f"oracle '{oracle.name}': {r.reason}")
    keep = np.array(sorted(ys), dtype=int)
    if keep.size < len(X):
        say(f"test set: {len(X) - keep.size} of {len(X)} points failed and were dropped")
    if keep.size == 0:
        return X[:0], np.zeros((0, oracle.output_dim))
    return X[keep], np.stack([ys[i] for i in keep])


def build_pool_and_test(cfg: CampaignConfig, oracle: Oracle, seeds: Seeds,
                        get_dispatcher: Callable[[], Dispatcher],
                        ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The pool and test set of a new campaign: ``(pool_X, test_X, test_y)``.

    ``get_dispatcher`` is called only when a simulator test set must be labelled, so a
    campaign on a table or with a test file never starts a Dask cluster here.
    """
    d = int(oracle.input_dim)
    fixed = oracle.fixed_points()
    test_X = test_y = None
    if fixed is not None:
        # Pool-based oracle (a table): pool and test set are a seeded split of its points.
        fixed = np.asarray(fixed, dtype=float)
        n = len(fixed)
        perm = np.random.default_rng(seeds.table_split).permutation(n)
        n_test = cfg.test.size
        if cfg.test.file is not None:
            test_X, test_y = _load_test_file(Path(cfg.test.file), d)
            n_test = 0
        if n_test >= n:
            raise CampaignSetupError(f"test.size ({n_test}) must be smaller than the table ({n} rows)")
        rest = perm[n_test:]
        if cfg.pool.size is not None:
            if cfg.pool.size > rest.size:
                raise CampaignSetupError(
                    f"pool.size ({cfg.pool.size}) exceeds the {rest.size} table rows left after "
                    f"the test split"
                )
            rest = rest[: cfg.pool.size]
        pool_X = fixed[rest]
        if n_test:
            test_X = fixed[perm[:n_test]]
            test_y = np.asarray(oracle.evaluate_batch(test_X), dtype=float).reshape(n_test, -1)
        return pool_X, test_X, test_y
    if cfg.pool.file is not None:
        pool_X = _load_array_file(Path(cfg.pool.file), "pool.file")
        if pool_X.shape[1] != d:
            raise CampaignSetupError(
                f"pool.file: {cfg.pool.file} has {pool_X.shape[1]} columns, oracle "
                f"'{oracle.name}' takes {d} inputs"
            )
    else:
        if cfg.pool.size is None:
            raise CampaignSetupError(
                f"pool.size: required for oracle '{oracle.name}' (it has no fixed points)"
            )
        from alcore.design import make_design  # noqa: PLC0415

        pool_X = np.asarray(make_design(cfg.pool.design, cfg.pool.size, oracle.bounds, seeds.pool))
    if cfg.test.file is not None:
        test_X, test_y = _load_test_file(Path(cfg.test.file), d)
    elif cfg.test.size:
        from alcore.design import make_design  # noqa: PLC0415

        X = np.asarray(make_design("random", cfg.test.size, oracle.bounds, seeds.test))
        test_X, test_y = _label_directly(oracle, get_dispatcher(), X)
    return pool_X, test_X, test_y
