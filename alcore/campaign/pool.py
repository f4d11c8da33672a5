"""Build a new campaign's candidate pool and test set from its checked config.

Three sources for the pool: a pool-based oracle's fixed points (a seeded pool/test split of the
table), ``pool.file`` (read and checked by :func:`~alcore.config.preflight`), or a seeded design
over the oracle's bounds. The test set comes from ``test.file`` (read by preflight), the table
split, or random points labelled through the dispatcher.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from alcore.campaign.errors import CampaignSetupError
from alcore.campaign.hooks import say
from alcore.campaign.seeds import Seeds
from alcore.config import CampaignConfig, Preflight

if TYPE_CHECKING:
    from oracles import Dispatcher, Oracle

__all__ = ["build_pool_and_test", "TEST_FAILURES_KEY"]

Points = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]
#: Key of the store's oracle info under which the failures of a labelled test set are kept
#: (``{"sent", "failed", "points": [{inputs, reason, kind, attempts, worker}, ...]}``).
TEST_FAILURES_KEY = "test_set_failures"
_MAX_KEPT = 200  # failed test points kept with their reason (the count is always exact)


def build_pool_and_test(cfg: CampaignConfig, checked: Preflight, seeds: Seeds,
                        get_dispatcher: Callable[[], Dispatcher],
                        test_failures: dict | None = None) -> Points:
    """The pool and test set of a new campaign: ``(pool_X, test_X, test_y)``.

    ``get_dispatcher`` is called only when a simulator test set must be labelled, so a
    campaign on a table or with a test file never starts a Dask cluster here. The failures
    of that labelling go into ``test_failures`` (see :data:`TEST_FAILURES_KEY`).
    """
    from alcore.design import make_design  # noqa: PLC0415

    oracle = checked.oracle
    fixed = oracle.fixed_points()
    if fixed is not None:
        return _table_split(cfg, checked, oracle, np.asarray(fixed, dtype=float), seeds)
    if checked.pool_X is not None:
        pool_X = checked.pool_X
    elif cfg.pool.size is not None:
        pool_X = np.asarray(make_design(cfg.pool.design, cfg.pool.size, oracle.bounds, seeds.pool))
    else:  # preflight refuses this config; a direct caller gets the same line
        raise CampaignSetupError(f"pool.size: required for oracle '{oracle.name}' (it has no fixed points)")
    if checked.test_X is not None:
        return pool_X, checked.test_X, checked.test_y
    if cfg.test.size:
        X = np.asarray(make_design("random", cfg.test.size, oracle.bounds, seeds.test))
        return (pool_X, *_label_directly(oracle, get_dispatcher(), X, test_failures))
    return pool_X, None, None


def _table_split(cfg: CampaignConfig, checked: Preflight, oracle: Oracle, fixed: np.ndarray,
                 seeds: Seeds) -> Points:
    """A table oracle: the pool and the test set are a seeded split of its rows."""
    perm = np.random.default_rng(seeds.table_split).permutation(len(fixed))
    n_test = 0 if checked.test_X is not None else cfg.test.size
    rest = perm[n_test:]
    if cfg.pool.size is not None:
        rest = rest[: cfg.pool.size]
    if checked.test_X is not None:
        return fixed[rest], checked.test_X, checked.test_y
    if not n_test:
        return fixed[rest], None, None
    test_X = fixed[perm[:n_test]]
    test_y = np.asarray(oracle.evaluate_batch(test_X), dtype=float).reshape(n_test, -1)
    return fixed[rest], test_X, test_y


def _label_directly(oracle: Oracle, dispatcher: Dispatcher, X: np.ndarray,
                    failures: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Label a test set through the dispatcher (simulators), dropping failed points.

    An error that is the same for every point (kind ``setup``: wrong output shape, missing
    parameter, import error) ends the labelling at once: the store is not created.
    """
    say(f"start-up: labelling the test set: {len(X)} points with '{oracle.name}' ...")
    t0 = time.perf_counter()
    ys: dict[int, np.ndarray] = {}
    failed: list[dict] = []
    for r in dispatcher.evaluate(oracle, X, np.arange(len(X))):
        if r.ok:
            ys[int(r.index)] = np.asarray(r.y, float).reshape(-1)
        elif getattr(r, "kind", "error") == "setup":
            raise CampaignSetupError(f"oracle '{oracle.name}': {r.reason}")
        else:
            failed.append({"inputs": [float(v) for v in X[int(r.index)]], "reason": r.reason or "failed",
                           "kind": getattr(r, "kind", "error"), "attempts": int(r.attempts),
                           "worker": str(r.worker)})
    keep = np.array(sorted(ys), dtype=int)
    say(f"start-up: test set labelled in {time.perf_counter() - t0:.0f} s")
    if failures is not None:
        failures.update(sent=int(len(X)), failed=len(failed), points=failed[:_MAX_KEPT])
    if keep.size < len(X):
        from alcore.failures import describe_groups, group_failures  # noqa: PLC0415

        groups = group_failures(range(len(failed)), [f["reason"] for f in failed],
                                [f["kind"] for f in failed])
        say(f"test set: {len(X) - keep.size} of {len(X)} points failed and were dropped "
            f"({describe_groups(groups)}; see `alflow status`)")
    if keep.size == 0:
        return X[:0], np.zeros((0, oracle.output_dim))
    return X[keep], np.stack([ys[i] for i in keep])
