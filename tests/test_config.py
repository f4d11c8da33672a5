"""Config validation: every malformed config is rejected before anything runs, naming the key."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import numpy as np
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
    # issue 16 item 7: counts are TOML integers (lax pydantic read true as 1, 1e8 as a width)
    ("pool-size-bool", _replace("size = 100", "size = true"), "pool.size: must be an integer, got true (a boolean)"),
    ("hidden-floats", _replace("hidden = [8, 8]", "hidden = [1e8, 1e8]"), "model.hidden: must be an integer, got 1e+08 (a float"),
    ("epochs-float", _replace("epochs = 5", "epochs = 1e20"), "model.epochs: must be an integer, got 1e+20 (a float"),
    ("epochs-huge", _replace("epochs = 5", "epochs = 100000000000000000000"),
     "model.epochs: 100000000000000000000 is too large (at most 1000000000"),
    ("pool-size-float", _replace("size = 100", "size = 1e14"), "pool.size: must be an integer, got 1e+14 (a float"),
    ("seed-huge", _replace("seed = 3", "seed = 99999999999999999999"),
     "campaign.seed: 99999999999999999999 is too large (at most 4294967295: seeds are 32-bit"),
    ("seed-33-bits", _replace("seed = 3", "seed = 4294967296"), "campaign.seed: 4294967296 is too large (at most 4294967295"),
    ("iterations-bool", _replace("iterations = 2", "iterations = false"), "budget.iterations: must be an integer, got false"),
    ("batch-int64", _replace("batch_size = 5", "batch_size = 9223372036854775808"), "acquisition.batch_size: 9223372036854775808 is too large"),
    # issue 13: the deadline's time zone is an IANA name
    ("timezone", _replace("iterations = 2", 'iterations = 2\ndeadline = "06:30"\ntimezone = "Europe/Berln"'),
     "budget.timezone: 'Europe/Berln' is not an IANA time zone name like \"Europe/Berlin\" (did you mean 'Europe/Berlin'?)"),
    ("timezone-mars", _replace("iterations = 2", 'iterations = 2\ntimezone = "Mars/Olympus"'),
     "budget.timezone: 'Mars/Olympus' is not an IANA time zone name"),
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
    # without ``strategy`` the parameters are those of the default strategy (nngp_lcmd)
    default = parse_config({**raw, "acquisition": {"kernel": "prior"}})
    assert default.acquisition.strategy == "nngp_lcmd"
    assert default.acquisition.params == {"kernel": "prior"}


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
    from alcore.config import preflight
    from oracles.datasets import candidate_paths

    cfg = load_config(path)
    if cfg.oracle.name == "california" and not any(p.exists() for p in candidate_paths()):
        pytest.skip("cal_housing.data is not on this machine (../shared/data exists only here and in CI)")
    checked = preflight(cfg)  # what `alflow validate` and the start of `alflow run` check
    oracle = checked.oracle
    assert checked.pool_size is not None and cfg.label_budget <= checked.pool_size
    assert oracle.input_dim >= 1
    if cfg.oracle.bounds is not None:
        assert oracle.input_dim == len(cfg.oracle.bounds)


def test_nightly_config_has_the_morning_deadline() -> None:
    cfg = load_config(Path(__file__).resolve().parents[1] / "deployments" / "nightly.toml")
    assert cfg.budget.deadline == "06:30"


# ----------------------------------------------------------------- file encoding (issue 16 item 8)
def test_config_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    p = tmp_path / "latin1.toml"
    p.write_bytes(("# Température de consigne\n" + GOOD).encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert msg == f"{p}: not UTF-8 text (byte 0xe9 on line 1); save the file as UTF-8"


# --------------------------------------------------- relative paths inside oracle.params (issue 16)
def test_path_params_of_the_oracle_resolve_against_the_config_folder(tmp_path: Path, monkeypatch) -> None:
    from alcore.config import build_oracle

    sub = tmp_path / "cfgs"
    (sub / "data").mkdir(parents=True)
    X = np.random.default_rng(0).uniform(size=(30, 2))
    np.savetxt(sub / "data" / "table.csv", np.column_stack([X, X.sum(axis=1)]), delimiter=",")
    table = GOOD.replace("size = 100", "size = 20").replace("size = 10\n", "size = 5\n")

    def config(params: str) -> Path:
        p = sub / "c.toml"
        p.write_text(table.replace('name = "heat2d"\nparams = { n = 16 }', f'name = "table"\nparams = {{ {params} }}'))
        return p

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory must not matter
    params = load_config(config('path = "data/table.csv", name = "data/not-a-path", workdir = "~/runs", '
                                'results_dir = "out", source = "s3://bucket/table.csv"')).oracle.params
    assert params["path"] == str((sub / "data" / "table.csv").resolve())
    assert params["results_dir"] == str((sub / "out").resolve())
    assert params["workdir"] == str(Path("~/runs").expanduser())
    assert params["name"] == "data/not-a-path"  # not a path-named key: passed as written
    assert params["source"] == "s3://bucket/table.csv"  # URLs are left alone
    oracle = build_oracle(load_config(config('path = "data/table.csv"')))
    assert oracle.input_dim == 2 and len(oracle.fixed_points()) == 30


def test_path_param_rule() -> None:
    from alcore.config.loading import is_path_param

    for key in ("path", "file", "dir", "workdir", "directory", "x_path", "data_file", "results_dir", "PATH"):
        assert is_path_param(key), key
    for key in ("name", "n", "argv", "paths", "filename_pattern", "timeout", "pathology"):
        assert not is_path_param(key), key


# ------------------------------------------------------------------- deadlines (issue 13)
def _budget(deadline: str | None, timezone: str | None = "Europe/Berlin"):
    from alcore.config import BudgetSection

    return BudgetSection(deadline=deadline, timezone=timezone)


def test_resolve_deadline_is_timezone_aware_and_the_next_one() -> None:
    from zoneinfo import ZoneInfo

    from alcore.config import resolve_deadline

    berlin = ZoneInfo("Europe/Berlin")
    d = resolve_deadline(_budget("06:30"), datetime(2026, 1, 1, 22, 0))  # naive: wall time in Berlin
    assert d == datetime(2026, 1, 2, 6, 30, tzinfo=berlin) and d.utcoffset().total_seconds() == 3600
    # an aware `now` in another zone: 21:00 UTC is 22:00 in Berlin
    from datetime import timezone as tz

    assert resolve_deadline(_budget("06:30"), datetime(2026, 1, 1, 21, 0, tzinfo=tz.utc)) == d
    assert resolve_deadline(_budget("06:30"), datetime(2026, 1, 1, 5, 0)) == datetime(2026, 1, 1, 6, 30, tzinfo=berlin)
    assert resolve_deadline(_budget(None), datetime(2026, 1, 1, 5, 0)) is None


def test_resolve_deadline_across_a_dst_change() -> None:
    from datetime import timezone as tz

    from alcore.config import resolve_deadline

    # Berlin springs forward on 2026-03-29 at 02:00 -> 03:00: a night run is one hour shorter
    d = resolve_deadline(_budget("06:30"), datetime(2026, 3, 28, 22, 0))
    assert d.isoformat() == "2026-03-29T06:30:00+02:00"
    start = datetime(2026, 3, 28, 22, 0, tzinfo=d.tzinfo)
    assert (d.astimezone(tz.utc) - start.astimezone(tz.utc)).total_seconds() == 7.5 * 3600
    # 02:30 does not exist that night: it moves forward to 03:30 CEST
    assert resolve_deadline(_budget("02:30"), datetime(2026, 3, 28, 22, 0)).isoformat() == "2026-03-29T03:30:00+02:00"


def test_deadline_defaults_to_the_machines_time_zone(monkeypatch) -> None:
    from alcore.config import machine_timezone_name, resolve_deadline

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert machine_timezone_name() == "Asia/Tokyo"
    d = resolve_deadline(_budget("06:30", timezone=None), datetime(2026, 1, 1, 22, 0))
    assert d.isoformat() == "2026-01-02T06:30:00+09:00"


def test_deadline_more_than_20_hours_away_warns() -> None:
    from alcore.config import deadline_warning, describe_deadline, resolve_deadline

    # "18:44" given at 18:44:05 silently meant tomorrow (issue 13)
    now = datetime(2026, 6, 1, 18, 44, 5)
    w = deadline_warning(_budget("18:44"), now)
    assert w is not None
    assert w.startswith('budget.deadline "18:44" is 23 h 59 min away (2026-06-02 18:44 CEST (Europe/Berlin))')
    assert "if you meant today, that time has already passed" in w and "\n" not in w
    assert deadline_warning(_budget("06:30"), datetime(2026, 6, 1, 22, 0)) is None  # 8.5 h: a night run
    assert deadline_warning(_budget("06:30"), datetime(2026, 6, 1, 10, 30)) is None  # exactly 20 h
    assert deadline_warning(_budget("06:30"), datetime(2026, 6, 1, 10, 29)) is not None
    assert deadline_warning(_budget(None), now) is None
    assert describe_deadline(resolve_deadline(_budget("06:30"), datetime(2026, 1, 1, 22, 0))) == \
        "2026-01-02 06:30 CET (Europe/Berlin)"
