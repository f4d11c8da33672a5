"""The asynchronous campaign (``[campaign] mode = "async"``): picks conditioned on pending points,
every point evaluated once, model versions as iterations, stop/resume, utilisation from export."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from alcore import campaign
from alcore.campaign.async_loop import AsyncRun
from alcore.campaign.async_select import pick
from alcore.campaign.utilisation import utilisation, utilisation_of_store
from alcore.config import ConfigError, ConfigMismatchError, load_config
from alcore.store import CampaignStore, export_labelled

from campaign_helpers import calls, counting_config, write_toml

ASYNC = {"name": "tiny-async", "store": "store.h5", "seed": 0, "mode": "async"}
FIXED = {"select": "fixed", "hidden": [16, 16], "epochs": 30, "min_steps": 200, "batch_size": 16,
         "device": "cpu"}


def _cfg(tmp_path: Path, **sections):
    sections = {"campaign": ASYNC, "model": FIXED, **sections}
    return load_config(write_toml(tmp_path / "c.toml", counting_config(tmp_path, **sections)))


# ------------------------------------------------------------------------- picks with pending
def _store_and_model(tmp_path: Path):
    from alcore.model import DropoutMLP

    rng = np.random.default_rng(0)
    pool = rng.uniform(-1, 1, (120, 2))
    store = CampaignStore.create(tmp_path / "s.h5", config={"campaign": {"name": "p"}},
                                 oracle_info={"name": "toy"}, pool_X=pool, seeds={"pool": 0})
    lab = np.arange(10)
    y = np.sin(3 * pool[lab, :1]) + pool[lab, 1:]
    store.mark_requested(lab, 0)
    for i, yi in zip(lab, y):
        store.record_label(int(i), yi)
    model = DropoutMLP(hidden=(16, 16), epochs=20, min_steps=100, seed=0, device="cpu")
    model.fit(pool[lab], y)
    return store, model


@pytest.mark.parametrize("strategy", ["nngp", "nngp_lcmd", "nngp_ivr", "nngp_sample", "mc_variance",
                                      "random"])
def test_an_async_pick_never_duplicates_a_pending_or_labelled_point(tmp_path: Path, strategy: str) -> None:
    store, model = _store_and_model(tmp_path)
    pending = np.arange(10, 30)
    store.mark_requested(pending, 1)
    for seed in range(3):
        picks, scores = pick(store, model, 4, strategy=strategy, params={}, samples=16, reg=1e-2, seed=seed)
        assert picks.size == 4 and scores.size == 4 and len(set(picks.tolist())) == 4
        assert not set(picks.tolist()) & set(range(30))
    store.close()


def test_pending_points_are_conditioned_on_exactly_as_in_a_greedy_batch(tmp_path: Path) -> None:
    """Greedy NNGP variance does not depend on labels: picking one point, marking it pending and
    picking again gives the greedy batch's second point, not the first one again."""
    store, model = _store_and_model(tmp_path)
    kw = dict(strategy="nngp", params={}, samples=16, reg=1e-2, seed=5)
    batch, _ = pick(store, model, 3, **kw)
    one_by_one = []
    for _ in range(3):
        p, _ = pick(store, model, 1, **kw)
        one_by_one.append(int(p[0]))
        store.mark_requested(p, 1)  # submitted, not labelled
    assert one_by_one == batch.tolist()
    store.close()


def test_before_the_first_model_picks_spread_out_around_the_pending_points(tmp_path: Path) -> None:
    from alcore.campaign.async_select import space_filling_picks

    store, _ = _store_and_model(tmp_path)
    X = np.asarray(store.pool_X)
    X = (X - X.min(axis=0)) / np.ptp(X, axis=0)  # the unit-scaled box the picks use
    picks = space_filling_picks(store, 3)
    assert len(set(picks.tolist())) == 3 and not set(picks.tolist()) & set(range(10))
    store.mark_requested(picks[:1], 1)  # the first pick is now pending
    again = space_filling_picks(store, 2)
    assert picks[0] not in again and again.tolist() == picks[1:].tolist()  # conditioned on it

    def gap(p):  # distance of a pick to the labelled and pending points
        known = np.union1d(store.labelled_indices(), store.requested_indices())
        return np.sqrt(((X[known] - X[p]) ** 2).sum(axis=1)).min()

    others = np.setdiff1d(store.unlabelled_indices(), again)
    assert gap(again[0]) >= max(gap(p) for p in others) - 1e-12  # the farthest candidate
    store.close()


# ------------------------------------------------------------------------------- the run
def test_async_run_labels_the_budget_once_each_and_records_versions(tmp_path: Path, calls_file: Path) -> None:
    cfg = _cfg(tmp_path, budget={"initial": 8, "iterations": 3}, acquisition={"strategy": "nngp", "samples": 16,
                                                                              "batch_size": 4},
               test={"size": 20})
    out = campaign.run(cfg)
    assert out["stop_reason"] == "budget spent"
    assert out["labelled"] == 8 + 3 * 4 and out["requested"] == 0
    starts, ends = calls(calls_file)  # the 20 test points are labelled once, at creation
    assert sum(starts.values()) == 20 + 20 and max(starts.values()) == 1 and starts == ends
    st = campaign.status(cfg.store_path)
    versions = [m["iteration"] for m in st["metrics"]]
    assert versions == list(range(len(versions))) and len(versions) >= 2
    n_train = [m["labelled"] for m in st["metrics"]]
    assert n_train == sorted(n_train) and n_train[-1] == 20  # the last version saw every label
    assert all(isinstance(m["rmse"], float) and m["on"] == "test" for m in st["metrics"])
    with CampaignStore.open(cfg.store_path, "r") as s:
        assert s.checkpoint_iterations() == versions
        req = np.asarray(s.iteration_requested)[s.labelled_indices()]
        assert (req >= 0).all() and (req <= versions[-1]).all()
        # each evaluation's times and worker are in the store
        lab = s.labelled_indices()
        sub, start, fin = s.submitted_times[lab], s.started_times[lab], s.finished_times[lab]
        assert np.isfinite(sub).all() and (sub <= start + 1e-6).all() and (start <= fin).all()
        assert set(s.workers[lab]) == {"local"}
    # a rerun of the finished campaign does nothing
    again = campaign.run(cfg)
    assert again["iterations_run"] == [] and sum(calls(calls_file)[0].values()) == 40


def test_stop_keeps_the_labels_and_the_resume_sends_the_pending_points_again(tmp_path: Path,
                                                                             calls_file: Path) -> None:
    cfg = _cfg(tmp_path, budget={"initial": 8, "iterations": 2}, acquisition={"strategy": "nngp", "samples": 16,
                                                                              "batch_size": 4})

    class StopAfter(campaign.Hooks):
        def __init__(self, session, n):
            self.session, self.n = session, n

        def label_result(self, ok: bool) -> None:
            self.n -= 1
            if self.n == 0:
                self.session.request_stop()

    with campaign.open_campaign(cfg) as session:
        old = campaign.set_hooks(StopAfter(session, 3))
        try:
            out = campaign.async_loop.drive_async(session)
        finally:
            campaign.set_hooks(old)
        assert out["stop_reason"] == "stop requested"
        pending = set(session.store.requested_indices().tolist())
        labelled = set(session.store.labelled_indices().tolist())
    assert len(labelled) == 3 and len(pending) == 5  # the rest of the initial design
    assert sum(calls(calls_file)[0].values()) == 3  # in-process: the queued points never ran

    out = campaign.run(cfg)  # the resume
    assert out["labelled"] == 16 and out["requested"] == 0
    starts, _ = calls(calls_file)
    assert sum(starts.values()) == 16 and max(starts.values()) == 1
    with CampaignStore.open(cfg.store_path, "r") as s:
        assert pending <= set(s.labelled_indices().tolist())
        assert (np.asarray(s.iteration_requested)[sorted(pending)] == 0).all()


def test_resume_trains_again_a_checkpoint_saved_without_its_record(tmp_path: Path, calls_file: Path) -> None:
    cfg = _cfg(tmp_path, budget={"initial": 8, "iterations": 1}, acquisition={"strategy": "nngp", "samples": 16,
                                                                              "batch_size": 4})
    with campaign.open_campaign(cfg) as session:
        run = AsyncRun(session).open()
        try:
            seg = run.label_segment(0)
            assert seg["event"] == "model"
            session.store.save_checkpoint(0, run.results[0].state)  # killed before the record
        finally:
            run.close()
    out = campaign.run(cfg)
    assert out["iterations_run"][0] == 0 and out["labelled"] == 12
    assert sum(calls(calls_file)[0].values()) == 12


def test_a_passed_deadline_sends_nothing(tmp_path: Path, calls_file: Path) -> None:
    cfg = _cfg(tmp_path, budget={"deadline": "06:30"})
    with campaign.open_campaign(cfg) as session:
        session.deadline = datetime.now(timezone.utc) - timedelta(seconds=1)
        out = campaign.async_loop.drive_async(session)
        assert out["stop_reason"] == "deadline" and out["labelled"] == 0
    assert not calls_file.exists()


def test_the_deadline_stops_submissions_and_keeps_every_label(tmp_path: Path, calls_file: Path) -> None:
    cfg = _cfg(tmp_path, budget={"deadline": "06:30", "initial": 8, "iterations": 4},
               oracle={"params": {"sleep": 0.25}})
    with campaign.open_campaign(cfg) as session:
        session.deadline = datetime.now(timezone.utc) + timedelta(seconds=1.2)
        out = campaign.async_loop.drive_async(session)
        labelled = session.store.n_labelled
        assert out["stop_reason"] == "deadline" and 0 < labelled < 8
    starts, ends = calls(calls_file)
    assert sum(starts.values()) == sum(ends.values()) == labelled  # nothing paid and dropped


def test_async_mode_is_part_of_the_campaign_and_retrain_every_may_change(tmp_path: Path,
                                                                         calls_file: Path) -> None:
    raw = counting_config(tmp_path, campaign=ASYNC, model=FIXED, budget={"initial": 4, "iterations": 0})
    cfg = write_toml(tmp_path / "c.toml", raw)
    campaign.run(load_config(cfg))
    raw["campaign"] = {**ASYNC, "retrain_every": 3}
    write_toml(cfg, raw)
    campaign.run(load_config(cfg))  # accepted
    raw["campaign"] = {**ASYNC, "mode": "batch"}
    write_toml(cfg, raw)
    with pytest.raises(ConfigMismatchError, match="campaign.mode"):
        campaign.run(load_config(cfg))
    raw["campaign"] = {**ASYNC, "mode": "asynch"}
    write_toml(cfg, raw)
    with pytest.raises(ConfigError, match="campaign.mode"):
        load_config(cfg)


# ---------------------------------------------------------------------------- utilisation
def test_utilisation_of_known_intervals() -> None:
    # two workers over [0, 10]: a busy 0-10, b busy 0-4 and 5-8; last start at 5
    cols = {"submitted": [0.0, 0.0, 4.5], "started": [0.0, 0.0, 5.0], "finished": [10.0, 4.0, 8.0],
            "worker": ["a", "b", "b"]}
    u = utilisation(cols)
    assert u["workers"] == 2 and u["busy_s"] == pytest.approx(17.0) and u["span_s"] == pytest.approx(10.0)
    assert u["utilisation"] == pytest.approx(17.0 / 20.0)
    assert u["utilisation_while_submitting"] == pytest.approx((5.0 + 4.0) / 10.0)
    assert u["labels_per_hour"] == pytest.approx(3 * 360.0)
    assert utilisation(cols, n_workers=4)["utilisation"] == pytest.approx(17.0 / 40.0)
    assert utilisation({**cols, "started": [np.nan] * 3})["utilisation"] is None


def test_utilisation_computed_from_the_export(tmp_path: Path, calls_file: Path) -> None:
    cfg = _cfg(tmp_path, budget={"initial": 6, "iterations": 1}, acquisition={"strategy": "random", "samples": 16,
                                                                              "batch_size": 3},
               oracle={"params": {"sleep": 0.05}})
    campaign.run(cfg)
    export_labelled(cfg.store_path, tmp_path / "e.csv")
    with open(tmp_path / "e.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {"submitted", "started", "finished", "worker"} <= set(rows[0])
    cols = {k: [r[k] if k == "worker" else float(r[k]) for r in rows]
            for k in ("submitted", "started", "finished", "worker")}
    from_export = utilisation(cols, n_workers=1)
    with CampaignStore.open(cfg.store_path, "r") as s:
        assert from_export == utilisation_of_store(s, n_workers=1)
    # one in-process worker sleeping 0.05 s per point, with training and selection in between
    assert from_export["evaluations"] == 9 and 0.0 < from_export["utilisation"] <= 1.0
    assert from_export["busy_s"] >= 9 * 0.05
