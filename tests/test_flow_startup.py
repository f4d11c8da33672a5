"""How a flow run starts: its name, and what it reads to get there (issue 12).

The run is named ``<campaign> it <first>-<last>`` from the session ``initialise`` opens, not
from a read-only open of the store (a replay of its journal) before the flow body; under
``alflow run`` the flow uses the config the CLI already loaded and checked.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from campaign_helpers import counting_config, write_toml
from flows.run_name import run_name


def _flow_run_name(state) -> str:
    from prefect.client.orchestration import get_client

    async def go():
        async with get_client() as client:
            return (await client.read_flow_run(state.state_details.flow_run_id)).name

    return asyncio.run(go())


def test_run_name_is_campaign_and_iteration_range() -> None:
    assert run_name({"name": "heat", "next_iteration": 0, "last_iteration": 10}) == "heat it 0-10"
    assert run_name({"name": "heat", "next_iteration": 4, "last_iteration": 10}) == "heat it 4-10"
    # a resume with nothing left is named after where it starts
    assert run_name({"name": "heat", "next_iteration": 11, "last_iteration": 10}) == "heat it 11-11"


def test_resume_is_named_without_a_read_only_open_before_the_session(tmp_path: Path, prefect_api,
                                                                     monkeypatch) -> None:
    """The store is opened for writing before anything reads it, and the name is the resume's."""
    from alcore.store import CampaignStore
    from flows.campaign import campaign_flow

    monkeypatch.setenv("ALFLOW_TEST_CALLS", str(tmp_path / "calls.log"))
    cfg = write_toml(tmp_path / "c.toml", counting_config(tmp_path, campaign={"name": "startup"},
                                                          budget={"iterations": 1}))
    first = campaign_flow(str(cfg), return_state=True)
    assert first.is_completed(), first
    assert _flow_run_name(first) == "startup it 0-1"

    # a longer budget on resume: the run starts at iteration 2 and is named so
    write_toml(cfg, counting_config(tmp_path, campaign={"name": "startup"}, budget={"iterations": 2}))
    modes: list[str] = []
    real_open = CampaignStore.open.__func__

    def recording_open(cls, path, mode="r"):
        modes.append(mode)
        return real_open(cls, path, mode)

    monkeypatch.setattr(CampaignStore, "open", classmethod(recording_open))
    second = campaign_flow(str(cfg), return_state=True)
    assert second.is_completed(), second
    assert second.result()["iterations_run"] == [2]
    assert _flow_run_name(second) == "startup it 2-2"
    assert modes and modes[0] == "a", modes  # no read-only open (journal replay) before initialise


def test_a_config_handed_over_is_not_read_again(tmp_path: Path, prefect_api, monkeypatch) -> None:
    """``alflow run`` hands its loaded, preflighted config to the flow: the file is not reread."""
    from alcore.config import ConfigError, load_config, preflight
    from flows.campaign import campaign_flow
    from flows.handoff import handed_over, take

    monkeypatch.setenv("ALFLOW_TEST_CALLS", str(tmp_path / "calls.log"))
    path = write_toml(tmp_path / "c.toml", counting_config(tmp_path, campaign={"name": "handed"},
                                                           budget={"iterations": 0}))
    cfg = load_config(path)
    checked = preflight(cfg)
    path.write_text("this is [not TOML")  # only a reread could see this
    with handed_over(str(path), cfg, checked):
        state = campaign_flow(str(path.resolve()), return_state=True)
        assert take(path) is None  # handed over once, to that run's initialise
    assert state.is_completed(), state
    assert state.result()["labelled"] == 8
    assert _flow_run_name(state) == "handed it 0-0"

    # without a handover the flow reads the file itself (and fails on it, named provisionally)
    again = campaign_flow(str(path.resolve()), return_state=True)
    assert again.is_failed()
    with pytest.raises(ConfigError, match="not valid TOML"):
        again.result()
    assert _flow_run_name(again) == "campaign c"
