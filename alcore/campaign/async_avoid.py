"""Avoiding failures in an asynchronous campaign (``[acquisition] avoid_failures``), as in batch mode.

Batch mode calls :func:`alcore.feasibility.avoidance` once per select step: the failed points
(of a learned kind, when they depend on x) count as visited, and every strategy weights its
acquisition by the estimated P(success), dropping the candidates below ``MIN_SUCCESS_PROB``.
An async run picks a few points whenever a worker frees up; refitting the failure estimate for
each pick would cost a fit per result for nothing while no new failure arrived. So the estimate
is refitted, with the same function, when the picks would see a different one: when the set of
learned failures changed (a failure arrived) or a new model version was installed (the
labelled points it was trained on: the cadence of batch mode's select step). In between, the
success probabilities of the remaining candidates are read from the last fit (the
never-requested candidates only shrink).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["FailureAvoidance"]


class FailureAvoidance:
    """The last :func:`~alcore.feasibility.avoidance` of a run and when it must be redone."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.fits = 0                               # refits done (for tests and logs)
        self._key: tuple[Any, bytes] | None = None  # (model version, learned failures)
        self._visited_failed = np.zeros(0, np.int64)
        self._p: np.ndarray | None = None           # (pool,) P(success), NaN: not a candidate then

    def current(self, store: Any, candidates: np.ndarray,
                version: int | None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(failed points to count as visited, P(success) of candidates or None)``.

        Call with the store's lock held (it reads the store when the estimate is refitted).
        ``None`` for the probabilities while nothing failed in a learned way: then the picks
        are exactly those without avoidance.
        """
        from alcore.feasibility import avoidance, learned_failures  # noqa: PLC0415

        candidates = np.asarray(candidates, dtype=np.int64)
        failures = learned_failures(store)
        if failures.size == 0:
            return np.zeros(0, np.int64), None
        key = (version, failures.tobytes())
        stale = self._key != key or self._p is None or np.isnan(self._p[candidates]).any()
        if stale:
            visited, p = avoidance(store, candidates, seed=self.seed)
            self._visited_failed = np.setdiff1d(visited, store.labelled_indices()).astype(np.int64)
            self._p = np.full(len(store.pool_X), np.nan)
            if p is not None:
                self._p[candidates] = p
            self._key = key
            self.fits += 1
        return self._visited_failed, self._p[candidates]
