"""Resume rules (``alcore.config.MUTABLE_KEYS``, ``check_resume``): what a resumed campaign may change.

Issue 16's mutation check: letting a resume change the strategy, seed, ``model.hidden`` or the
pool (by adding them to the mutable keys) must fail a test. Each refusal is tested on the rules
alone and on a real store, through ``alflow run`` / ``alflow validate`` and ``open_campaign``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from alcore.config import MUTABLE_KEYS, ConfigError, ConfigMismatchError, check_resume, load_config, parse_config
from campaign_helpers import counting_config, write_toml

# (dotted key, a different value): keys that define the campaign
IMMUTABLE = [
    ("acquisition.strategy", "random"),
    ("acquisition.reg", 0.5),
    ("campaign.seed", 1),
    ("model.hidden", [32, 32]),
    ("model.activation", "tanh"),
    ("model.dropout", 0.3),
    ("pool.size", 65),
    ("pool.design", "lhs"),
    ("test.size", 3),
    ("oracle.bounds", [[-2.0, 2.0], [-1.0, 1.0]]),
    ("model.select", "auto"),
]
MUTABLE = [
    ("budget.iterations", 7),
    ("budget.deadline", "06:30"),
    ("dask.workers", 3),
    ("model.epochs", 99),
    ("model.tuning_budget_s", 12.5),
    ("model.device", "auto"),
    ("acquisition.batch_size", 5),
    ("campaign.name", "renamed"),
]


def _raw(folder: Path) -> dict[str, Any]:
    return counting_config(folder)


def _with(raw: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    section, name = key.split(".")
    out[section][name] = value
    return out


def _config(raw: dict[str, Any]) -> dict[str, Any]:
    return parse_config(raw).to_dict()


@pytest.mark.parametrize("key,value", IMMUTABLE, ids=[k for k, _ in IMMUTABLE])
def test_resume_refuses_a_key_that_defines_the_campaign(tmp_path: Path, key: str, value: Any) -> None:
    raw = _raw(tmp_path)
    with pytest.raises(ConfigMismatchError) as err:
        check_resume(_config(raw), _config(_with(raw, key, value)), source="camp.h5")
    assert isinstance(err.value, ConfigError)  # one line, exit code 2 in the CLI
    assert err.value.keys == [key]
    msg = str(err.value)
    assert msg.startswith(f"camp.h5: config does not match the stored campaign in 1 key(s) that define it ({key}: stored ")
    assert "\n" not in msg


@pytest.mark.parametrize("key,value", MUTABLE, ids=[k for k, _ in MUTABLE])
def test_resume_accepts_and_names_a_mutable_key(tmp_path: Path, key: str, value: Any) -> None:
    raw = _raw(tmp_path)
    assert check_resume(_config(raw), _config(_with(raw, key, value))) == [key]


def test_refusal_names_every_differing_key_and_ignores_mutable_ones(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    new = _with(_with(_with(raw, "model.hidden", [8]), "campaign.seed", 9), "budget.iterations", 5)
    with pytest.raises(ConfigMismatchError) as err:
        check_resume(_config(raw), _config(new))
    assert err.value.keys == ["campaign.seed", "model.hidden"]
    assert err.value.differences["model.hidden"] == ([16, 16], [8])


def test_the_pool_file_is_part_of_the_campaign(tmp_path: Path) -> None:
    raw = _with(_with(_raw(tmp_path), "pool.size", None), "pool.file", str(tmp_path / "a.npy"))
    with pytest.raises(ConfigMismatchError, match="pool.file"):
        check_resume(_config(raw), _config(_with(raw, "pool.file", str(tmp_path / "b.npy"))))


def test_a_key_added_after_the_store_was_written_counts_at_its_default(tmp_path: Path) -> None:
    """An older store lacks keys added since; the new key's default is what the old version did."""
    stored = _config(_raw(tmp_path))
    del stored["model"]["activation"]  # as if the store predates model.activation
    assert check_resume(stored, _config(_raw(tmp_path))) == []  # "relu", the default
    with pytest.raises(ConfigMismatchError, match=r"model.activation: stored \(absent\), given 'tanh'"):
        check_resume(stored, _config(_with(_raw(tmp_path), "model.activation", "tanh")))


def test_mutable_keys_leave_what_defines_the_campaign() -> None:
    from alcore.config.resume import is_mutable

    for key, _ in IMMUTABLE:
        assert not is_mutable(key), key
    assert not any(is_mutable(k) for k in ("oracle.name", "oracle.params.n", "pool.file", "test.file",
                                           "model.n_members", "acquisition.params.beta"))


# ------------------------------------------------------------------ on a real store
@pytest.fixture(scope="module")
def stored_campaign(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    """A finished tiny campaign (in-process oracle, no Prefect)."""
    from alcore import campaign

    folder = tmp_path_factory.mktemp("resume")
    raw = counting_config(folder, budget={"iterations": 1})
    campaign.run(load_config(write_toml(folder / "c.toml", raw)))
    return folder, raw


@pytest.mark.parametrize("key,value", [IMMUTABLE[0], IMMUTABLE[2], IMMUTABLE[3], IMMUTABLE[6]],
                         ids=["strategy", "seed", "model.hidden", "pool"])
def test_a_real_resume_is_refused_in_one_line_and_touches_nothing(stored_campaign, key: str, value: Any,
                                                                   capsys) -> None:
    from alcore import campaign
    from alcore.store import CampaignStore
    from flows.cli import main

    folder, raw = stored_campaign
    store = folder / "store.h5"
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    cfg = write_toml(folder / f"changed-{key}.toml", _with(raw, key, value))
    for command in ("validate", "run"):
        assert main([command, str(cfg)]) == 2, command
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"alflow: error: {store}: config does not match the stored campaign") and key in err
        assert len(err.splitlines()) == 1
    with pytest.raises(ConfigMismatchError, match=key):
        campaign.open_campaign(load_config(cfg))
    after = {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.name != cfg.name}
    assert after == before
    with CampaignStore.open(store, "r") as st:
        assert st.n_labelled == 12 and json.dumps(st.config["model"]["hidden"]) == "[16, 16]"


def test_a_real_resume_with_mutable_changes_validates(stored_campaign, capsys) -> None:
    from flows.cli import main

    folder, raw = stored_campaign
    cfg = write_toml(folder / "longer.toml", _with(_with(raw, "budget.iterations", 2), "model.epochs", 40))
    assert main(["validate", str(cfg)]) == 0
    assert "resumes the existing store; changes budget.iterations, model.epochs" in capsys.readouterr().out
