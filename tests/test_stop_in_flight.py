"""``alflow stop`` mid-batch on a cluster: what is running finishes and is stored.

Issue 16 ("smaller ones"): a stop cancelled the evaluations in flight, so they were paid again
on resume. Now only what has not started stays requested; what runs is waited for and stored.
A real local Dask cluster (two workers), so that evaluations are in flight when the stop comes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alcore import campaign
from alcore.config import load_config
from alcore.store import CampaignStore

from campaign_helpers import calls, counting_config, write_toml


class StopAtFirstResultOf(campaign.Hooks):
    """Asks for a stop (as ``alflow stop`` does: a reader's stop flag) at the first result of
    the label step of ``iteration``."""

    def __init__(self, store: Path, iteration: int) -> None:
        self.store, self.iteration = store, iteration
        self.label_iteration: int | None = None
        self.requested = False
        self.messages: list[str] = []

    def message(self, text):
        self.messages.append(text)

    def phase(self, name, iteration, total=None):
        if name == "label":
            self.label_iteration = iteration

    def label_result(self, ok):
        if self.label_iteration == self.iteration and not self.requested:
            self.requested = True
            with CampaignStore.open(self.store, "r") as ro:
                ro.request_stop("alflow stop")


def run_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_in: int, campaign_section: dict,
                budget: dict, batch_size: int) -> tuple[Any, dict, StopAtFirstResultOf, Path]:
    """Run a campaign on a 2-worker local cluster (0.5 s per evaluation) that is asked to stop
    at the first result of the label step of ``stop_in``: (config, run result, hooks, calls log)."""
    calls_file = tmp_path / "calls.log"
    monkeypatch.setenv("ALFLOW_TEST_CALLS", str(calls_file))  # before the workers start
    cfg = load_config(write_toml(tmp_path / "c.toml", counting_config(
        tmp_path, campaign=campaign_section, oracle={"params": {"sleep": 0.5}},
        acquisition={"strategy": "random", "batch_size": batch_size}, model={"epochs": 5, "min_steps": 0},
        budget=budget, dask={"workers": 2, "retries": 0})))
    hooks = StopAtFirstResultOf(cfg.store_path, stop_in)
    old = campaign.set_hooks(hooks)
    try:
        out = campaign.run(cfg)
    finally:
        campaign.set_hooks(old)
    assert hooks.requested and out["stop_reason"] == "stop requested"
    return cfg, out, hooks, calls_file


def test_stop_lets_the_evaluations_in_flight_finish_and_stores_them(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, out, hooks, calls_file = run_stopped(tmp_path, monkeypatch, 1, {},
                                              {"initial": 4, "iterations": 1}, 8)
    # the message names the iteration the stop came in (it was "before iteration N+1")
    assert "stopped in iteration 1 after its label step: stop requested (the same command resumes it)" \
        in hooks.messages, hooks.messages
    starts, ends = calls(calls_file)
    assert starts == ends  # every evaluation that started also ended
    with CampaignStore.open(cfg.store_path, "r") as st:
        # everything that ran is stored: the first result and the one in flight beside it
        assert st.n_labelled == sum(ends.values()) >= 4 + 2
        assert len(st.requested_indices()) == 4 + 8 - st.n_labelled  # not started: sent on resume
    out = campaign.run(cfg)  # the same command resumes and pays for no point twice
    assert out["labelled"] == 4 + 8
    starts, _ = calls(calls_file)
    assert sum(starts.values()) == 4 + 8 and max(starts.values()) == 1


def test_async_mode_stop_also_lets_the_running_evaluations_finish(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The same rule in ``[campaign] mode = "async"``: at the stop, the points waiting in the
    stream stay requested, the running ones are stored, and the resume pays for none twice."""
    cfg, out, hooks, calls_file = run_stopped(
        tmp_path, monkeypatch, 0, {"mode": "async"},
        {"initial": 8, "iterations": 1}, 4)
    starts, ends = calls(calls_file)
    assert starts == ends  # every evaluation that started also ended ...
    with CampaignStore.open(cfg.store_path, "r") as st:
        assert st.n_labelled == sum(ends.values()) >= 2  # ... and is stored: the first and its neighbour
        assert len(st.requested_indices()) > 0  # the ones not started: sent on resume
    out = campaign.run(cfg)  # the same command resumes and pays for no point twice
    assert out["labelled"] == 8 + 4
    starts, _ = calls(calls_file)
    assert sum(starts.values()) == 8 + 4 and max(starts.values()) == 1
