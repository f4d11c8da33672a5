"""The ``train`` step, and the campaign's current model (in memory, else from a checkpoint)."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from alcore.campaign.errors import CampaignSetupError
from alcore.campaign.hooks import get_hooks
from alcore.campaign.records import plan
from alcore.campaign.runtime import _rt, _Runtime
from alcore.config import CampaignConfig

__all__ = ["train"]


def _new_model(cfg: CampaignConfig, iteration: int) -> Any:
    from alcore.model import DropoutMLP  # noqa: PLC0415

    return DropoutMLP(**cfg.model.model_kwargs(seed=cfg.campaign.seed * 1000 + iteration))


def _current_model(rt: _Runtime, iteration: int) -> Any:
    """The model of ``iteration`` (in memory, else from the store's checkpoint)."""
    if rt.model is not None and rt.model_iteration == iteration:
        return rt.model
    latest = rt.store.latest_checkpoint()
    if latest is None:
        raise CampaignSetupError(f"{rt.path}: no model checkpoint to select with (iteration {iteration})")
    it, state = latest
    from alcore.model import DropoutMLP  # noqa: PLC0415

    rt.model = DropoutMLP.from_state(state)
    rt.model_iteration = int(it)
    return rt.model


def train(store_path: str | os.PathLike, iteration: int) -> dict[str, Any]:
    """Fit the DropoutMLP on every labelled point and save the checkpoint for ``iteration``.

    Warm-starts from the latest checkpoint when ``model.warm_start`` (also across a resume).
    A checkpoint already saved for this iteration (killed before ``checkpoint``) is reused.
    """
    rt = _rt(store_path)
    cfg, st = rt.config, rt.store
    t0 = time.perf_counter()
    lab = np.asarray(st.labelled_indices(), dtype=np.int64)
    if plan(store_path)["trained"]:
        _current_model(rt, iteration)
        out = {"iteration": iteration, "n_train": int(lab.size), "reused": True,
               "seconds": time.perf_counter() - t0}
        get_hooks().phase_done("train", iteration, out)
        return out
    if lab.size < 2:
        raise CampaignSetupError(
            f"iteration {iteration}: only {lab.size} labelled point(s) to train on "
            "(did every oracle evaluation fail? see `alflow status`)"
        )
    get_hooks().phase("train", iteration, cfg.model.epochs)
    X = np.asarray(st.pool_X)[lab]
    y = np.asarray(st.outputs)[lab]
    model = _new_model(cfg, iteration)
    warm = False
    if cfg.model.warm_start:
        prev = rt.model if rt.model is not None else None
        state = prev.get_state() if prev is not None else None
        if state is None:
            latest = st.latest_checkpoint()
            state = latest[1] if latest is not None else None
        if state is not None:
            model.load_state(state)
            warm = True
    report = model.fit(X, y, warm_start=warm, progress=get_hooks().train_epoch)
    st.save_checkpoint(iteration, model.get_state())
    rt.model, rt.model_iteration = model, iteration
    out = {"iteration": iteration, "n_train": int(lab.size), "warm_start": warm, "reused": False,
           "seconds": time.perf_counter() - t0}
    for k in ("epochs_run", "best_epoch", "final_train_loss", "best_val_loss", "stopped_early"):
        v = getattr(report, k, None)
        if isinstance(v, (int, float, bool, np.floating, np.integer)):
            out[k] = v.item() if hasattr(v, "item") else v
    get_hooks().phase_done("train", iteration, out)
    return out
