"""The campaign steps called directly (no Prefect): loop, budgets, stop conditions, resume."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo
from pathlib import Path

import numpy as np
import pytest

from alcore import campaign
from alcore.config import ConfigMismatchError, load_config
from alcore.store import CampaignStore, StoreStatus

from campaign_helpers import calls, counting_config, write_toml


def _cfg(tmp_path: Path, **sections):
    return load_config(write_toml(tmp_path / "c.toml", counting_config(tmp_path, **sections)))


def test_run_labels_initial_plus_batches_once_each(tmp_path: Path, calls_file: Path) -> None:
    cfg = _cfg(tmp_path)
    out = campaign.run(cfg)
    assert out["stop_reason"] == "iterations"
    assert out["iterations_run"] == [0, 1, 2]
    assert out["labelled"] == 8 + 2 * 4
    starts, ends = calls(calls_file)
    assert sum(starts.values()) == 16 and max(starts.values()) == 1
    with CampaignStore.open(cfg.store_path, "r") as st:
        its = st.iterations
        assert [len(r["selected"]) for r in its] == [8, 4, 4]
        assert all(r["finished"] for r in its)
        assert st.checkpoint_iterations() == [0, 1, 2]
        # no test set: metrics on the training set, and the counts match the store
        assert its[-1]["metrics"]["on"] == "train"
        assert its[-1]["metrics"]["labelled"] == 16
        assert np.isfinite(its[-1]["metrics"]["rmse"])
        for k in ("select", "label", "train", "evaluate"):
            assert its[-1]["timings"][k] >= 0
        # the batches came from the NNGP strategy with scores; the initial design has none
        assert np.all(np.isnan(its[0]["scores"])) and np.all(np.isfinite(its[1]["scores"]))


def test_rerun_of_finished_campaign_does_nothing(tmp_path: Path, calls_file: Path) -> None:
    cfg = _cfg(tmp_path)
    campaign.run(cfg)
    n = sum(calls(calls_file)[0].values())
    out = campaign.run(cfg)
    assert out["iterations_run"] == [] and out["stop_reason"] == "iterations"
    assert sum(calls(calls_file)[0].values()) == n


def test_more_iterations_on_resume_extends_campaign(tmp_path: Path, calls_file: Path) -> None:
    campaign.run(_cfg(tmp_path))
    out = campaign.run(_cfg(tmp_path, budget={"iterations": 3}))
    assert out["iterations_run"] == [3]
    assert out["labelled"] == 8 + 3 * 4
    starts, _ = calls(calls_file)
    assert max(starts.values()) == 1


def test_max_labels_cuts_the_last_batch(tmp_path: Path, calls_file: Path) -> None:
    cfg = _cfg(tmp_path, budget={"iterations": 5, "max_labels": 14})
    out = campaign.run(cfg)
    assert out["labelled"] == 14
    assert out["stop_reason"] == "max_labels"
    with CampaignStore.open(cfg.store_path, "r") as st:
        assert [len(r["selected"]) for r in st.iterations] == [8, 4, 2]


def test_stop_request_stops_before_next_batch_and_resume_clears_it(tmp_path: Path, calls_file: Path) -> None:
    cfg = _cfg(tmp_path)
    session = campaign.open_campaign(cfg)
    try:
        out = campaign.drive(session, max_iterations=1)
        assert out["iterations_run"] == [0]
        with CampaignStore.open(cfg.store_path, "r") as ro:  # what `alflow stop` does
            ro.request_stop("test")
        out = campaign.drive(session)
        assert out["stop_reason"] == "stop requested" and out["iterations_run"] == []
    finally:
        session.close()
    out = campaign.run(cfg)  # the same command again resumes
    assert out["iterations_run"] == [1, 2]


def test_deadline_estimate_prevents_a_batch_that_cannot_finish(tmp_path: Path, calls_file: Path) -> None:
    cfg = _cfg(tmp_path, budget={"deadline": "06:30", "timezone": "Europe/Berlin"})
    berlin = ZoneInfo("Europe/Berlin")
    with campaign.open_campaign(cfg, now=datetime(2026, 1, 1, 22, 0, tzinfo=berlin)) as session:
        assert session.deadline == datetime(2026, 1, 2, 6, 30, tzinfo=berlin)
        session.label_seconds.append(600.0)  # label steps took 10 minutes so far
        at = lambda h, m: datetime(2026, 1, 2, h, m, tzinfo=berlin)  # noqa: E731
        assert campaign.should_stop(session, 1, now=at(6, 25)) == "deadline"
        assert campaign.should_stop(session, 1, now=at(6, 15)) is None
        assert campaign.should_stop(session, 1, now=at(6, 31)) == "deadline"
        # the same instant seen from another time zone
        assert campaign.should_stop(session, 1, now=at(6, 15).astimezone(timezone.utc)) is None
        # a batch already selected by a killed run is finished unless the deadline has passed
        assert campaign.should_stop(session, 1, now=at(6, 29), hard_only=True) is None


def test_deadline_passed_runs_nothing(tmp_path: Path, calls_file: Path) -> None:
    cfg = _cfg(tmp_path, budget={"deadline": "06:30"})
    with campaign.open_campaign(cfg) as session:
        session.deadline = datetime.now(timezone.utc) - timedelta(seconds=1)
        out = campaign.drive(session)
        assert out["stop_reason"] == "deadline" and out["labelled"] == 0
    assert not calls_file.exists()


def test_resume_sends_only_unlabelled_requested_points(tmp_path: Path, calls_file: Path) -> None:
    """A run killed mid-label: labelled points are never sent again, the rest are."""
    cfg = _cfg(tmp_path)
    session = campaign.open_campaign(cfg)
    campaign.select(session, 0)
    store = session.store
    for i in store.requested_indices()[:3]:  # three labels were acknowledged before the "kill"
        store.record_label(int(i), session.oracle(store.pool_X[i]), 0.0, "test")
    session.close()  # the kill: nothing else happens
    starts_before, _ = calls(calls_file)
    out = campaign.run(cfg)
    assert out["labelled"] == 16
    starts, _ = calls(calls_file)
    assert max(starts.values()) == 1, "a point was evaluated twice"
    assert sum(starts.values()) - sum(starts_before.values()) == 16 - 3
    with CampaignStore.open(cfg.store_path, "r") as st:
        assert len(st.iterations[0]["selected"]) == 8  # the interrupted batch was kept, not redrawn


def test_checkpoint_saved_by_train_is_reused_after_kill(tmp_path: Path, calls_file: Path) -> None:
    cfg = _cfg(tmp_path)
    with campaign.open_campaign(cfg) as session:
        campaign.select(session, 0)
        campaign.label(session, 0)
        campaign.train(session, 0)
    # killed before evaluate/checkpoint
    with campaign.open_campaign(cfg) as session:
        assert campaign.plan(session.store) == campaign.Plan(iteration=0, selected=True, trained=True,
                                                             finished=())
        out = campaign.train(session, 0)
        assert out["reused"] is True


def test_changed_oracle_on_resume_is_refused(tmp_path: Path, calls_file: Path) -> None:
    campaign.run(_cfg(tmp_path))
    with pytest.raises(ConfigMismatchError, match="oracle.bounds"):
        campaign.open_campaign(_cfg(tmp_path, oracle={"bounds": [[-2.0, 2.0], [-1.0, 1.0]]}))


def test_failures_are_recorded_and_count_against_the_budget(tmp_path: Path, calls_file: Path) -> None:
    (tmp_path / "flaky.py").write_text(
        "import numpy as np\n"
        "def g(x):\n"
        "    if x[0] > 0.5:\n"
        "        raise RuntimeError('solver diverged')\n"
        "    return float(np.sum(x ** 2))\n"
    )
    cfg = _cfg(tmp_path, oracle={"name": "flaky.py:g"})
    out = campaign.run(cfg)
    with CampaignStore.open(cfg.store_path, "r") as st:
        failed = st.failed_indices()
        assert len(failed) == out["failed"] > 0
        assert np.all(st.pool_X[failed][:, 0] > 0.5)
        assert "solver diverged" in st.failure_reasons[failed[0]]
        assert np.all(st.status[st.labelled_indices()] == StoreStatus.LABELLED)
    assert out["labelled"] + out["failed"] == 16


def test_table_oracle_pool_and_test_are_a_seeded_split(tmp_path: Path) -> None:
    X = np.random.default_rng(0).uniform(size=(120, 2))
    y = np.sin(X[:, 0]) + X[:, 1]
    np.savetxt(tmp_path / "table.csv", np.column_stack([X, y]), delimiter=",")
    raw = counting_config(tmp_path, oracle={"name": "table", "bounds": None,
                                            "params": {"path": str(tmp_path / "table.csv")}},
                          pool={"size": None, "design": "sobol"}, test={"size": 20},
                          budget={"iterations": 1})
    cfg = load_config(write_toml(tmp_path / "c.toml", raw))
    campaign.open_campaign(cfg).close()
    with CampaignStore.open(cfg.store_path, "r") as st:
        assert st.pool_X.shape == (100, 2) and st.test_X.shape == (20, 2)
        rows = {tuple(r) for r in X}
        assert {tuple(r) for r in st.pool_X} | {tuple(r) for r in st.test_X} == rows
        assert not ({tuple(r) for r in st.pool_X} & {tuple(r) for r in st.test_X})
        # the test labels are the table's own labels
        lookup = {tuple(r): v for r, v in zip(X, y)}
        assert np.allclose(st.test_y[:, 0], [lookup[tuple(r)] for r in st.test_X])


def test_stop_during_labelling_keeps_what_arrived_and_resumes(tmp_path: Path, calls_file: Path) -> None:
    """`alflow stop` mid-batch: stored labels stay, the rest of the batch is sent on resume."""
    cfg = _cfg(tmp_path)

    class StopAfterTwo(campaign.Hooks):
        def __init__(self) -> None:
            self.seen = 0
            self.label_iteration = None

        def phase(self, name, iteration, total=None):
            if name == "label":
                self.label_iteration = iteration

        def label_result(self, ok):
            if self.label_iteration == 1:
                self.seen += 1
                if self.seen == 2:
                    with CampaignStore.open(cfg.store_path, "r") as ro:
                        ro.request_stop("test")

    old = campaign.set_hooks(StopAfterTwo())
    try:
        out = campaign.run(cfg)
    finally:
        campaign.set_hooks(old)
    assert out["stop_reason"] == "stop requested"
    assert out["labelled"] == 8 + 2
    with CampaignStore.open(cfg.store_path, "r") as st:
        assert len(st.requested_indices()) == 2
        assert st.finished_iterations() == [0]
    out = campaign.run(cfg)
    assert out["labelled"] == 16 and out["iterations_run"] == [1, 2]
    starts, _ = calls(calls_file)
    assert max(starts.values()) == 1 and sum(starts.values()) == 16


@pytest.mark.parametrize("strategy", sorted(__import__("alcore.strategies", fromlist=["available"]).available()))
def test_every_registered_strategy_runs_a_batch(tmp_path: Path, calls_file: Path, strategy: str) -> None:
    cfg = _cfg(tmp_path, acquisition={"strategy": strategy}, budget={"iterations": 1})
    out = campaign.run(cfg)
    assert out["labelled"] == 8 + 4
    with CampaignStore.open(cfg.store_path, "r") as st:
        sel = st.iterations[1]["selected"]
        assert len(set(sel.tolist())) == 4
        assert not set(sel.tolist()) & set(st.iterations[0]["selected"].tolist())


def test_stored_seeds_are_the_seeds_the_steps_use(tmp_path: Path, calls_file: Path) -> None:
    """The store's seeds are provenance: the initial design and every model seed follow them."""
    cfg = _cfg(tmp_path, campaign={"seed": 3})
    campaign.run(cfg)
    with CampaignStore.open(cfg.store_path, "r") as st:
        stored = st.seeds
        assert stored == campaign.seeds(3).to_dict()
        unlabelled_at_start = np.arange(st.n_pool)
        expected_initial = np.random.default_rng(stored["initial"]).choice(
            unlabelled_at_start, size=cfg.budget.initial, replace=False)
        assert st.iterations[0]["selected"].tolist() == expected_initial.tolist()
        for it in st.checkpoint_iterations():
            assert int(st.load_checkpoint(it)["hp_seed"]) == stored["model"] + it


def test_target_rmse_stops_at_the_first_iteration_that_meets_it(tmp_path: Path, calls_file: Path) -> None:
    (tmp_path / "ref").mkdir()
    ref = _cfg(tmp_path / "ref", budget={"iterations": 4})
    campaign.run(ref)
    with CampaignStore.open(ref.store_path, "r") as st:
        rmse = [r["metrics"]["rmse"] for r in st.iterations]
    # the first iteration that improves on every earlier one; its RMSE is the target
    k = next(i for i in range(1, len(rmse)) if rmse[i] < min(rmse[:i]))
    cfg = _cfg(tmp_path, budget={"iterations": 4, "target_rmse": rmse[k]})
    out = campaign.run(cfg)
    assert out["stop_reason"] == "target_rmse"
    assert out["iterations_run"] == list(range(k + 1))


@pytest.mark.parametrize("warm", [True, False])
def test_warm_start_continues_from_the_previous_model(tmp_path: Path, calls_file: Path, warm: bool) -> None:
    """With a learning rate too small to move the weights, a warm-started model of iteration 1
    computes what iteration 0's model did; a fresh one does not."""
    from alcore.model import DropoutMLP

    cfg = _cfg(tmp_path, budget={"iterations": 1},
               model={"lr": 1e-12, "epochs": 1, "min_steps": 0, "warm_start": warm})
    campaign.run(cfg)
    with CampaignStore.open(cfg.store_path, "r") as st:
        m0, m1 = (DropoutMLP.from_state(st.load_checkpoint(i)) for i in (0, 1))
        X = np.asarray(st.pool_X)
    same = np.allclose(m0.predict(X), m1.predict(X), rtol=1e-4, atol=1e-6)
    assert same is warm
