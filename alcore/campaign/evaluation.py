"""The ``evaluate`` step: metrics of the current model on the test set (else the training set)."""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np

from alcore.campaign.hooks import get_hooks
from alcore.campaign.runtime import _rt
from alcore.campaign.training import _current_model

__all__ = ["evaluate"]


def _scalar(v: Any) -> float | None:
    """One finite float from a metric given as a number, a per-output list or a dict (else None)."""
    if v is None:
        return None
    if isinstance(v, dict):
        for k in ("mean", "value", "all"):
            if k in v:
                return _scalar(v[k])
        return _scalar(list(v.values()))
    arr = np.asarray(v, dtype=float)
    if arr.size == 0:
        return None
    val = float(arr.mean())
    return val if math.isfinite(val) else None


def evaluate(store_path: str | os.PathLike, iteration: int) -> dict[str, Any]:
    """Test metrics of the current model (training-set metrics when there is no test set).

    Returns a small JSON-safe dict: scalar ``rmse``, ``mae``, ``r2``, ``nll`` (means over
    outputs), per-output lists, label counts, and which set was used.
    """
    rt = _rt(store_path)
    cfg, st = rt.config, rt.store
    t0 = time.perf_counter()
    get_hooks().phase("evaluate", iteration)
    model = _current_model(rt, iteration)
    from alcore.metrics import regression_metrics  # noqa: PLC0415

    if st.test_X is not None and len(st.test_X):
        X, y, on = np.asarray(st.test_X), np.asarray(st.test_y), "test"
    else:
        lab = st.labelled_indices()
        X, y, on = np.asarray(st.pool_X)[lab], np.asarray(st.outputs)[lab], "train"
    y = y.reshape(len(X), -1)
    pred = np.asarray(model.predict(X)).reshape(len(X), -1)
    T = min(cfg.acquisition.samples, 50)
    samples = np.asarray(model.sample(X, T, seed=cfg.campaign.seed + iteration)).reshape(len(X), T, -1)
    std = samples.std(axis=1)
    names = list(rt.store.oracle_info.get("output_names") or []) or None
    raw = regression_metrics(y, pred, std, output_names=names)
    metrics: dict[str, Any] = {"on": on, "n_test": int(len(X))}
    for k in ("rmse", "mae", "r2", "nll"):
        if k in raw:
            metrics[k] = _scalar(raw[k])
            per = raw.get(f"{k}_per_output", raw[k] if isinstance(raw[k], (list, tuple)) else None)
            if isinstance(per, dict):
                per = list(per.values())
            if per is not None:
                metrics[f"{k}_per_output"] = [float(x) for x in np.asarray(per, float).reshape(-1)]
    metrics["labeled"] = int(len(st.labelled_indices()))
    metrics["failed"] = int(len(st.failed_indices()))
    metrics["seconds"] = time.perf_counter() - t0
    get_hooks().phase_done("evaluate", iteration, metrics)
    return metrics
