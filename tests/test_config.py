"""Config validation: every malformed config is rejected before anything runs, naming the key."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest

from alcore.config import ConfigError, load_config, next_deadline, parse_config

GOOD = textwrap.dedent(
    """
    [campaign]
    name = "t"
    store = "runs/t.h5"
    seed = 3

    [oracle]
    name = "heat2d"
    params = { n = 16 }

    [pool]
    size = 100

    [test]
    size = 10

    [model]
    hidden = [8, 8]
    epochs = 5

    [acquisition]
    strategy = "nngp"
    samples = 10
    batch_size = 5

    [budget]
    initial = 10
    iterations = 2
    """
)


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def _replace(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new)


# (id, config text, fragment the one-line message must contain)
BAD = [
    ("unknown-section", GOOD + "\n[modle]\nhidden = [1]\n", "modle: unknown key (did you mean 'model'?)"),
    ("unknown-key", _replace("hidden = [8, 8]", "hiden = [8, 8]"), "model.hiden: unknown key (did you mean 'hidden'?)"),
    ("strategy-typo", _replace('strategy = "nngp"', 'strategy = "nggp"'),
     "acquisition.strategy: 'nggp' is not one of random, mc_variance, nngp"),
    ("strategy-suggestion", _replace('strategy = "nngp"', 'strategy = "nggp"'), "(did you mean 'nngp'?)"),
    ("design", _replace("size = 100", 'size = 100\ndesign = "halton"'), "pool.design: 'halton' is not one of sobol, lhs, random"),
    ("activation", _replace("epochs = 5", 'epochs = 5\nactivation = "rleu"'), "model.activation: 'rleu' is not one of relu"),
    ("dropout-range", _replace("epochs = 5", "epochs = 5\ndropout = 1.5"), "model.dropout"),
    ("negative-epochs", _replace("epochs = 5", "epochs = -1"), "model.epochs"),
    ("hidden-type", _replace("hidden = [8, 8]", 'hidden = "8x8"'), "model.hidden"),
    ("hidden-zero", _replace("hidden = [8, 8]", "hidden = [8, 0]"), "model.hidden: layer sizes must be >= 1"),
    ("deadline", _replace("iterations = 2", 'iterations = 2\ndeadline = "25:00"'), 'budget.deadline: \'25:00\' is not a time of day as "HH:MM"'),
    ("initial-type", _replace("initial = 10", 'initial = "ten"'), "budget.initial"),
    ("missing-oracle", GOOD.replace('[oracle]\nname = "heat2d"\nparams = { n = 16 }\n', ""), "oracle: required key is missing"),
    ("missing-store", _replace('store = "runs/t.h5"\n', ""), "campaign.store: required key is missing"),
    ("initial-over-pool", _replace("initial = 10", "initial = 500"), "budget.initial (500) exceeds pool.size (100)"),
    ("initial-over-max", _replace("initial = 10", "initial = 10\nmax_labels = 5"), "initial (10) exceeds max_labels (5)"),
    ("pool-size-and-file", _replace("size = 100", 'size = 100\nfile = "pool.npy"'), "pool: give either size or file, not both"),
    ("dask-both", GOOD + '\n[dask]\nworkers = 2\naddress = "tcp://127.0.0.1:8786"\n', "dask: give either workers"),
    ("dask-address", GOOD + '\n[dask]\naddress = "localhost:8786"\n', "dask.address: 'localhost:8786' is not a scheduler address"),
    ("bounds-order", _replace("params = { n = 16 }", "params = { n = 16 }\nbounds = [[1.0, 0.0]]"), "oracle.bounds: entry 0: lo must be < hi"),
    ("strategy-param", _replace("batch_size = 5", "batch_size = 5\nparams = { greedyy = true }"),
     "params.greedyy: not a parameter of strategy 'nngp' (did you mean 'greedy'?)"),
    ("campaign-name", _replace('name = "t"', 'name = "a/b"'), "campaign.name"),
    ("negative-seed", _replace("seed = 3", "seed = -1"), "campaign.seed"),
    ("samples-too-few", _replace("samples = 10", "samples = 1"), "acquisition.samples"),
    ("bad-toml", GOOD + "\n[budget\n", "not valid TOML"),
    ("device", _replace("epochs = 5", 'epochs = 5\ndevice = "tpu"'), "model.device: 'tpu' is not one of auto, cpu, cuda"),
]


@pytest.mark.parametrize("text,fragment", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_config_names_the_problem(tmp_path: Path, text: str, fragment: str) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert fragment in msg
    assert "\n" not in msg  # one line for the CLI
    assert str(p) in msg  # names the file


def test_table_has_at_least_15_cases() -> None:
    assert len(BAD) >= 15


def test_good_config_resolves_paths_against_its_folder(tmp_path: Path) -> None:
    sub = tmp_path / "cfgs"
    sub.mkdir()
    text = GOOD.replace('name = "heat2d"', 'name = "oracle_fn.py:f"')
    p = sub / "c.toml"
    p.write_text(text)
    cfg = load_config(p)
    assert cfg.store_path == (sub / "runs" / "t.h5").resolve()
    assert cfg.oracle.name == f"{(sub / 'oracle_fn.py').resolve()}:f"
    assert cfg.report_dir == (sub / "runs" / "t_report").resolve()
    assert cfg.label_budget == 10 + 2 * 5
    assert cfg.model.model_kwargs(seed=4)["hidden"] == (8, 8)


def test_strategy_params_in_section_are_gathered() -> None:
    raw = {"campaign": {"name": "x", "store": "/tmp/x.h5"}, "oracle": {"name": "heat2d"},
           "acquisition": {"strategy": "nngp_sample", "beta": 2.0}}
    cfg = parse_config(raw)
    assert cfg.acquisition.params == {"beta": 2.0}
    with pytest.raises(ConfigError, match="acquisition.beta: unknown key"):
        parse_config({**raw, "acquisition": {"strategy": "nngp", "beta": 2.0}})


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_max_labels_caps_budget(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, _replace("initial = 10", "initial = 10\nmax_labels = 13")))
    assert cfg.label_budget == 13


@pytest.mark.parametrize("now,expected", [
    (datetime(2026, 1, 1, 22, 0), datetime(2026, 1, 2, 6, 30)),   # overnight run
    (datetime(2026, 1, 1, 5, 0), datetime(2026, 1, 1, 6, 30)),    # started early morning
    (datetime(2026, 1, 1, 6, 30), datetime(2026, 1, 2, 6, 30)),   # exactly at the deadline
])
def test_next_deadline(now: datetime, expected: datetime) -> None:
    assert next_deadline("06:30", now) == expected
    assert next_deadline(None, now) is None


def test_validate_command_exit_codes(tmp_path: Path) -> None:
    good = _write(tmp_path, GOOD)
    ok = subprocess.run([sys.executable, "-m", "flows.cli", "validate", str(good)],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "ok" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(_replace('strategy = "nngp"', 'strategy = "nggp"'))
    r = subprocess.run([sys.executable, "-m", "flows.cli", "validate", str(bad)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "did you mean 'nngp'" in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.toml")) + [
    Path(__file__).resolve().parents[1] / "deployments" / "nightly.toml"]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_shipped_configs_validate_and_build_their_oracle(path: Path) -> None:
    from alcore.campaign import resolve_oracle
    from oracles.datasets import candidate_paths

    cfg = load_config(path)
    if cfg.oracle.name == "california" and not any(p.exists() for p in candidate_paths()):
        pytest.skip("cal_housing.data is not on this machine (../shared/data exists only here and in CI)")
    oracle = resolve_oracle(cfg)
    assert oracle.input_dim >= 1
    if cfg.oracle.bounds is not None:
        assert oracle.input_dim == len(cfg.oracle.bounds)


def test_nightly_config_has_the_morning_deadline() -> None:
    cfg = load_config(Path(__file__).resolve().parents[1] / "deployments" / "nightly.toml")
    assert cfg.budget.deadline == "06:30"
