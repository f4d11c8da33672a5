"""``[acquisition] avoid_failures`` in the asynchronous campaign: the same estimate as batch mode
(:func:`alcore.feasibility.avoidance`), refitted as failures arrive."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from alcore import campaign
from alcore.campaign.async_avoid import FailureAvoidance
from alcore.campaign.async_select import conditioning_sets, pick_from, space_filling_picks
from alcore.config import load_config
from alcore.store import CampaignStore, StoreStatus

from campaign_helpers import counting_config, write_toml

# Fails deterministically where x0 > 0.6 (40 % of [0, 1]^3), like a diverging solver.
REGION_ORACLE = textwrap.dedent(
    """
    import time

    import numpy as np

    def f(x, sleep=0.0):
        time.sleep(sleep)  # so that model versions train while points are evaluated
        if x[0] > 0.6:
            raise RuntimeError(f"solver diverged at x0={x[0]:.3f}")
        return float(np.sin(3.0 * x[0]) * np.cos(2.0 * x[1]) + 0.5 * x[2] ** 2)
    """
)
ASYNC = {"store": "store.h5", "seed": 0, "mode": "async"}
FIXED = {"select": "fixed", "hidden": [16, 16], "epochs": 30, "min_steps": 200, "batch_size": 16, "device": "cpu"}


def _config(tmp_path: Path, name: str, oracle: str, avoid: bool, sleep: float = 0.1):
    (tmp_path / "region.py").write_text(REGION_ORACLE)
    raw = counting_config(tmp_path, campaign={**ASYNC, "name": name, "store": f"{name}.h5"}, model=FIXED,
                          oracle={"name": oracle, "bounds": [[0.0, 1.0]] * 3,
                                  "params": {"sleep": sleep}},
                          pool={"size": 300, "design": "sobol"},
                          acquisition={"strategy": "nngp_lcmd", "samples": 16, "batch_size": 6,
                                       "avoid_failures": avoid},
                          budget={"initial": 12, "iterations": 5})
    return load_config(write_toml(tmp_path / f"{name}.toml", raw))


def _acquired(store_path: Path, initial: int = 12) -> tuple[int, int]:
    """(failed, all) points acquired after the initial random design: by a model, or spread out
    before the first model existed (iteration 0's picks after the initial design)."""
    with CampaignStore.open(store_path, "r") as st:
        design = np.asarray(st.iterations[0]["selected"])[:initial]  # pick order
        acquired = np.asarray(st.iteration_requested) >= 0
        acquired[design] = False
        failed = np.asarray(st.status) == StoreStatus.FAILED
        return int(np.count_nonzero(acquired & failed)), int(np.count_nonzero(acquired))


@pytest.fixture(scope="module")
def region_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    """The same async campaign (same seed: same pool and initial design), avoidance off and on."""
    tmp = tmp_path_factory.mktemp("async-region")
    out = {}
    for avoid in (False, True):
        cfg = _config(tmp, f"region-{avoid}", "region.py:f", avoid)
        campaign.run(cfg)
        out[avoid] = cfg.store_path
    return out


def test_async_avoidance_acquires_fewer_failing_points(region_runs: dict[bool, Path]) -> None:
    off, n_off = _acquired(region_runs[False])
    on, n_on = _acquired(region_runs[True])
    assert n_off >= 15 and n_on >= 15, (n_off, n_on)
    assert off / n_off >= 0.2, (off, n_off)  # without avoidance the picks walk into the region
    assert on <= off // 2, (off, on)
    print(f"async region x0 > 0.6: acquired failing {off}/{n_off} off, {on}/{n_on} on")


def test_the_failure_estimate_is_refitted_only_when_failures_or_the_model_change(
        region_runs: dict[bool, Path], tmp_path: Path) -> None:
    """Same failures and model version: no refit, the same P; a new failure: a refit that
    counts it as visited; P matches batch mode's function on the same store."""
    import shutil

    from alcore.feasibility import avoidance

    path = tmp_path / "copy.h5"
    shutil.copy(region_runs[True], path)
    with CampaignStore.open(path, "a") as st:
        _, candidates = conditioning_sets(st)
        av = FailureAvoidance(seed=0)
        failed, p = av.current(st, candidates, 3)
        visited, p_batch = avoidance(st, candidates, seed=0)
        assert av.fits == 1 and p is not None and np.allclose(p, p_batch)
        assert np.array_equal(np.union1d(st.labelled_indices(), failed), visited)
        again_failed, again = av.current(st, candidates[5:], 3)
        assert av.fits == 1 and np.array_equal(again, p[5:]) and np.array_equal(again_failed, failed)
        av.current(st, candidates, 4)  # a new model version
        assert av.fits == 2
        new = int(candidates[np.argmin(p)])  # the candidate most likely to fail, failing
        st.mark_requested(np.array([new]), 9)
        st.record_failure(new, "solver diverged", kind="error")
        _, rest = conditioning_sets(st)
        failed2, p2 = av.current(st, rest, 4)
        assert av.fits == 3 and new in failed2 and p2.size == rest.size


def test_without_failures_async_picks_are_unchanged(tmp_path: Path) -> None:
    """Nothing failed: the estimate gives no weights and no extra visited points, so a pick is
    the one made without avoidance (the same strategy call)."""
    from alcore.model import DropoutMLP

    rng = np.random.default_rng(0)
    pool = rng.uniform(0, 1, (150, 3))
    with CampaignStore.create(tmp_path / "s.h5", config={"campaign": {"name": "p"}}, oracle_info={"name": "toy"},
                              pool_X=pool, seeds={"pool": 0}) as st:
        lab = np.arange(12)
        y = np.sin(3 * pool[lab, :1]) + pool[lab, 1:2]
        st.mark_requested(lab, 0)
        for i, yi in zip(lab, y):
            st.record_label(int(i), yi)
        st.mark_requested(np.arange(12, 18), 1)  # pending
        model = DropoutMLP(hidden=(16, 16), epochs=20, min_steps=100, seed=0, device="cpu")
        model.fit(pool[lab], y)
        known, candidates = conditioning_sets(st)
        failed, p = FailureAvoidance(seed=0).current(st, candidates, 0)
        assert failed.size == 0 and p is None
        kw = dict(strategy="nngp_lcmd", params={}, samples=16, reg=1e-2, seed=3)
        plain = pick_from(pool, known, candidates, model, 4, **kw)
        avoiding = pick_from(pool, np.union1d(known, failed), candidates, model, 4, success_prob=p, **kw)
        assert np.array_equal(plain[0], avoiding[0]) and np.allclose(plain[1], avoiding[1])


def test_space_filling_picks_avoid_failures_before_the_first_model(tmp_path: Path) -> None:
    """Before the first model, the spread-out picks skip the candidates that will almost surely
    fail and the failed points count as known; without failures they are the plain picks."""
    rng = np.random.default_rng(1)
    pool = rng.uniform(0, 1, (200, 3))
    with CampaignStore.create(tmp_path / "s.h5", config={"campaign": {"name": "p"}}, oracle_info={"name": "toy"},
                              pool_X=pool, seeds={"pool": 0}) as st:
        design = np.arange(20)
        st.mark_requested(design, 0)
        for i in design:
            if pool[i, 0] > 0.6:
                st.record_failure(int(i), "solver diverged", kind="error")
            else:
                st.record_label(int(i), np.array([float(pool[i].sum())]))
        _, candidates = conditioning_sets(st)
        av = FailureAvoidance(seed=0)
        failed, p = av.current(st, candidates, None)
        assert failed.size == np.count_nonzero(pool[design, 0] > 0.6) > 0
        plain = space_filling_picks(st, 8)
        avoiding = space_filling_picks(st, 8, failed=failed, success_prob=p)
        assert np.count_nonzero(pool[plain, 0] > 0.6) >= 3  # maximin goes to the corners
        assert np.count_nonzero(pool[avoiding, 0] > 0.6) <= 1
        assert np.array_equal(space_filling_picks(st, 8, failed=np.zeros(0, np.int64), success_prob=None), plain)
