"""Open a campaign: create its store from the config, or reopen it and check the config (resume).

Which config keys a resume may change is :data:`alcore.config.MUTABLE_KEYS` (re-exported here).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from alcore._util import flatten
from alcore.campaign.errors import CampaignSetupError
from alcore.campaign.pool import _build_pool_and_test
from alcore.campaign.records import plan
from alcore.campaign.runtime import _get_oracle, _key, _Runtime, _runtimes, _runtimes_lock, _shutdown
from alcore.config import MUTABLE_KEYS, CampaignConfig, check_resume, next_deadline

__all__ = ["MUTABLE_KEYS", "open_campaign", "initialise"]

def open_campaign(cfg: CampaignConfig, *, now: datetime | None = None) -> dict[str, Any]:
    """Create the store (new campaign) or open it and check the config (resume).

    Takes the store's single-writer lock for this process. Returns a small summary. Calling it
    again for a store already open in this process only refreshes the config and deadline.
    """
    from alcore.store import CampaignStore  # noqa: PLC0415

    path = Path(cfg.store_path)
    key = _key(path)
    with _runtimes_lock:
        rt = _runtimes.get(key)
        if rt is not None:
            rt.config = cfg
            rt.deadline = next_deadline(cfg.budget.deadline, now)
            rt.stop_event.clear()
            return _summary(rt)
    deadline = next_deadline(cfg.budget.deadline, now)
    if path.exists():
        store = CampaignStore.open(path, mode="a")
        try:
            # Raises ConfigMismatchError naming the keys; a changed budget etc. is recorded.
            check_resume(store.config, cfg.to_dict(), source=str(path))
            if flatten(store.config) != flatten(cfg.to_dict()):
                store.update_config(cfg.to_dict(), mutable=MUTABLE_KEYS)
        except BaseException:
            store.close()
            raise
        rt = _Runtime(path=path, config=cfg, store=store, created=False, deadline=deadline)
        if store.stop_requested():
            store.clear_stop()  # the user reran the command: that is the resume
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        rt = _Runtime(path=path, config=cfg, store=None, created=True, deadline=deadline)
        try:
            pool_X, test_X, test_y = _build_pool_and_test(rt)
        except BaseException:
            _shutdown(rt)
            raise
        if cfg.budget.initial > len(pool_X):
            _shutdown(rt)
            raise CampaignSetupError(
                f"budget.initial ({cfg.budget.initial}) exceeds the pool ({len(pool_X)} points)"
            )
        seeds = {
            "campaign": cfg.campaign.seed,
            "pool": cfg.campaign.seed,
            "test": cfg.campaign.seed + 7919,
            "initial": cfg.campaign.seed + 1,
            "model": cfg.campaign.seed,
            "acquisition": cfg.campaign.seed,
        }
        try:
            rt.store = CampaignStore.create(
                path, config=cfg.to_dict(), oracle_info=_get_oracle(rt).info(), pool_X=pool_X,
                test_X=test_X, test_y=test_y, seeds=seeds,
            )
        except BaseException:
            _shutdown(rt)
            raise
    with _runtimes_lock:
        _runtimes[key] = rt
    return _summary(rt)


initialise = open_campaign


def _summary(rt: _Runtime) -> dict[str, Any]:
    p = plan(rt.path)
    st = rt.store
    return {
        "store": str(rt.path),
        "created": rt.created,
        "name": rt.config.campaign.name,
        "pool": int(len(st.pool_X)),
        "labeled": int(len(st.labelled_indices())),
        "failed": int(len(st.failed_indices())),
        "pending": int(len(st.requested_indices())),
        "next_iteration": p["iteration"],
        "last_iteration": rt.config.budget.iterations,
        "deadline": rt.deadline.isoformat(timespec="minutes") if rt.deadline else None,
    }
