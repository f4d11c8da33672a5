"""The one rule for storing an evaluation's result (batch and async loops share it)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from alcore import campaign
from alcore.campaign.errors import CampaignSetupError
from alcore.campaign.results import store_result
from alcore.config import load_config
from alcore.store import StoreStatus

from campaign_helpers import counting_config, write_toml


def result(index: int, kind: str, **kw) -> SimpleNamespace:
    base = dict(index=index, ok=kind == "ok", y=[1.0] if kind == "ok" else None, wall_time=0.5,
                worker="worker-0", reason=None if kind == "ok" else f"{kind} happened", attempts=2,
                kind=kind, submitted=100.0, started=float("nan"), finished=101.0)
    return SimpleNamespace(**(base | kw))


def test_each_kind_of_result_is_stored_by_its_rule(tmp_path: Path) -> None:
    cfg = load_config(write_toml(tmp_path / "c.toml", counting_config(tmp_path)))
    with campaign.open_campaign(cfg) as session:
        store = session.store
        store.mark_requested(np.arange(5), 0, np.zeros(5))
        outcomes = [store_result(session, result(i, k))
                    for i, k in enumerate(("ok", "error", "timeout", "worker_died", "cancelled"))]
        assert outcomes == ["labelled", "failed", "failed", "failed", "cancelled"]
        status = np.asarray(store.status)[:5]
        assert status.tolist() == [StoreStatus.LABELLED, StoreStatus.FAILED, StoreStatus.FAILED,
                                   StoreStatus.FAILED, StoreStatus.REQUESTED]  # cancelled: sent again
        assert list(store.failure_kinds[1:4]) == ["error", "timeout", "worker_died"]
        assert store.attempts[1] == 2 and store.submitted_times[1] == 100.0
        assert np.isnan(store.started_times[0])  # unknown stays unknown
        with pytest.raises(CampaignSetupError, match="counting_oracle.py:f"):
            store_result(session, result(4, "setup"))
        assert np.asarray(store.status)[4] == StoreStatus.REQUESTED
