"""Tests of alcore.report on real stores written by alcore.store.CampaignStore.

The stores are filled the way alcore.campaign fills them (iteration 0 = initial design; each
iteration: mark_requested -> record_label/record_failure -> record_iteration with the metrics
of a real 1-nearest-neighbour model), so the report is tested against the real layout.
"""
from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from alcore.report import load_campaign, write_report
from alcore.report import figures as F
from alcore.report.data import INITIAL
from alcore.store import CampaignStore, NotHDF5Error

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _truth(X: np.ndarray) -> np.ndarray:
    """Two outputs; the first depends only on input 1 (so input 1 is the most important)."""
    return np.stack([np.sin(4 * X[:, 1]) + X[:, 1], 0.3 * X[:, 1] ** 2 + 0.05 * X[:, 0]], 1)


def _nn_rmse(Xl: np.ndarray, yl: np.ndarray, Xt: np.ndarray, yt: np.ndarray) -> np.ndarray:
    d = ((Xt[:, None, :] - Xl[None, :, :]) ** 2).sum(-1)
    pred = yl[np.argmin(d, axis=1)]
    return np.sqrt(((pred - yt) ** 2).mean(0))


def build_store(path: Path, strategy: str = "nngp", seed: int = 0, P: int = 300,
                n0: int = 20, iterations: int = 4, batch: int = 10, fail_every: int = 2,
                finish_last: bool = True, close: bool = True) -> CampaignStore:
    """Run a small fake campaign into a real store; returns the (closed unless asked) store."""
    rng = np.random.default_rng(seed)
    X = rng.random((P, 3))
    Xt = rng.random((40, 3))
    yt = _truth(Xt)
    cfg = {"campaign": {"name": f"demo-{strategy}", "seed": seed},
           "acquisition": {"strategy": strategy, "batch_size": batch},
           "budget": {"initial": n0, "iterations": iterations}}
    info = {"name": "toy", "version": "1", "input_names": ["kappa", "q", "L"],
            "output_names": ["T_max", "T_mean"], "output_units": ["K", "K"]}
    st = CampaignStore.create(path, config=cfg, oracle_info=info, pool_X=X, test_X=Xt,
                              test_y=yt, seeds={"pool": seed})
    t = datetime(2026, 11, 24, 22, 0, tzinfo=timezone.utc)
    for it in range(iterations + 1):
        free = st.unlabelled_indices()
        n = n0 if it == 0 else batch
        sel = rng.choice(free, size=n, replace=False) if strategy == "random" or it == 0 \
            else free[np.argsort(-X[free, 1])[:n]]
        st.mark_requested(sel, it, rng.random(n))
        if it == iterations and not finish_last:
            st.record_label(int(sel[0]), _truth(X[sel[:1]])[0], wall_time=1.0, worker="w0")
            break
        label_s = 0.0
        for j, i in enumerate(sel):
            wt = float(rng.lognormal(0.5, 0.4))
            label_s += wt / 2
            if fail_every and it % fail_every == 1 and j < 2:
                st.record_failure(int(i), ["TimeoutError: exceeded 30 s",
                                           "SolverDiverged: NaN at step 12"][j],
                                  wall_time=wt, worker="w1", attempts=3)
            else:
                st.record_label(int(i), _truth(X[[i]])[0], wall_time=wt, worker="w0")
        lab = st.labelled_indices()
        rm = _nn_rmse(X[lab], st.outputs[lab], Xt, yt)
        timings = {"select": 0.5 + 0.1 * it, "label": label_s, "train": 3.0, "evaluate": 0.4}
        t += timedelta(seconds=sum(timings.values()) + 2.0)
        st.record_iteration(it, {"on": "test", "rmse": float(rm.mean()),
                                 "rmse_per_output": rm.tolist(), "labelled": int(lab.size),
                                 "failed": int(st.failed_indices().size),
                                 "at": t.isoformat(timespec="seconds")}, timings)
    if close:
        st.close()
    return st


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rep") / "camp.h5"
    build_store(path)
    return path


def test_load_campaign_reads_the_real_store(store: Path) -> None:
    c = load_campaign(store)
    with CampaignStore.open(store, "r") as st:
        its = [it for it in st.iterations if it["finished"]]
        status = st.status
        init = set(its[0]["selected"].tolist())
        assert c.n_labelled == st.n_labelled and c.n_failed == st.failed_indices().size
        # iteration 0 is the initial design, later selections keep their iteration number
        assert set(np.flatnonzero(c.acquired_in == INITIAL)) == init
        for it in its[1:]:
            assert (c.acquired_in[it["selected"]] == it["iteration"]).all()
        assert [r.n_labels for r in c.iterations] == [it["metrics"]["labelled"] for it in its]
        for r, it in zip(c.iterations, its, strict=True):
            np.testing.assert_allclose(r.test_rmse, it["metrics"]["rmse_per_output"])
        np.testing.assert_array_equal(c.status, status)
    assert c.strategy == "nngp" and c.output_units == ["K", "K"]
    assert c.input_names == ["kappa", "q", "L"]


def test_write_report_writes_self_contained_html_pngs_and_markdown(store: Path,
                                                                   tmp_path: Path) -> None:
    out = write_report(store, tmp_path / "rep")
    for key in ("html", "markdown", "learning_curve", "labels_over_time", "input_space",
                "oracle_wall_time", "failures"):
        assert out[key].is_file(), key
    pngs = {k: p for k, p in out.items() if p.suffix == ".png"}
    for p in pngs.values():
        assert p.read_bytes()[:8] == PNG_MAGIC
        img = imread(p)
        assert img.shape[0] > 200 and img.shape[1] > 400
    html = out["html"].read_text()
    # every figure is embedded, byte for byte, and nothing is linked from outside
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert sorted(base64.b64decode(e) for e in embedded) == \
        sorted(p.read_bytes() for p in pngs.values())
    assert not re.search(r'src="(?!data:)', html) and "<link" not in html
    md = out["markdown"].read_text()
    for p in pngs.values():
        assert f"]({p.name})" in md


def test_report_numbers_match_the_store(store: Path, tmp_path: Path) -> None:
    out = write_report(store, tmp_path / "rep")
    md = out["markdown"].read_text()
    with CampaignStore.open(store, "r") as st:
        n_lab, n_fail = st.n_labelled, st.failed_indices().size
        reasons = st.failure_reasons[st.failed_indices()]
        n_iter = len(st.finished_iterations())
    assert f"| labelled | {n_lab} (20 initial design, {n_lab - 20} acquired) |" in md
    assert f"| failed | {n_fail} |" in md
    for reason in set(reasons):
        assert f"| {reason} | {int((reasons == reason).sum())} |" in md
    iter_table = md.split("## Iterations")[1].split("## Failures")[0]
    assert len([ln for ln in iter_table.splitlines() if re.match(r"\| \d+ \|", ln)]) == n_iter


def test_labels_over_time_rises_only_while_labelling(store: Path) -> None:
    c = load_campaign(store)
    t, n, ti, ni, how = F.label_timeline(c)
    assert how == "since iteration 0 started"
    assert np.all(np.diff(t) >= 0) and np.all(np.diff(n) >= 0)
    assert n[0] == 0 and n[-1] == c.n_labelled
    np.testing.assert_array_equal(ni, [r.n_labels for r in c.iterations])
    # the time axis spans the recorded iterations: from the start of iteration 0 to the last
    # iteration's timestamp
    first = c.iterations[0]
    span = c.iterations[-1].end_time - first.end_time + sum(first.timings.values())
    assert t[-1] == pytest.approx(span)


def test_input_importance_ranks_the_driving_input_first(store: Path) -> None:
    c = load_campaign(store)
    imp = F.input_importance(c)
    assert int(np.argmax(imp)) == 1  # the outputs depend on input 1 ("q") above all
    assert F.top_pairs(c)[0][0] == 1


def test_comparison_has_one_line_per_strategy(tmp_path: Path) -> None:
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    build_store(a, "nngp", seed=1, iterations=3, fail_every=0)
    build_store(b, "random", seed=2, iterations=3, fail_every=0)
    fig = F.learning_curve([load_campaign(a), load_campaign(b)])
    for ax in fig.axes:
        labels = [ln.get_label() for ln in ax.get_lines()]
        assert labels == ["nngp", "random"]
        assert all(len(ln.get_xdata()) == 4 for ln in ax.get_lines())
    out = write_report([a, b], tmp_path / "cmp")
    assert {"input_space_nngp", "input_space_random"} <= set(out)
    assert "failures" not in out  # nothing failed: no empty chart
    md = out["markdown"].read_text()
    assert "No oracle call failed." in md and "comparison report: 2 campaigns" in md


def test_report_of_a_running_campaign(tmp_path: Path) -> None:
    """A reader can report while the writer holds the store; the unfinished iteration is not
    drawn as a point, its requested labels are counted as pending."""
    path = tmp_path / "live.h5"
    writer = build_store(path, iterations=2, fail_every=0, finish_last=False, close=False)
    try:
        c = load_campaign(path)
        assert [r.iteration for r in c.iterations] == [0, 1]
        assert c.n_requested == 9
        out = write_report(path)
        assert out["html"].parent == tmp_path / "live_report"
        assert "| requested, not finished | 9 |" in out["markdown"].read_text()
    finally:
        writer.close()


def test_report_of_a_fresh_store_without_iterations(tmp_path: Path) -> None:
    path = tmp_path / "fresh.h5"
    CampaignStore.create(path, config={"campaign": {"name": "fresh"}},
                         oracle_info={"name": "toy", "output_names": ["y"]},
                         pool_X=np.random.default_rng(0).random((50, 2))).close()
    out = write_report(path, tmp_path / "r")
    assert "No finished iteration yet." in out["markdown"].read_text()
    assert out["learning_curve"].read_bytes()[:8] == PNG_MAGIC


def test_bad_paths_give_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.h5"
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        write_report(missing)
    junk = tmp_path / "junk.h5"
    junk.write_text("not a store")
    with pytest.raises(NotHDF5Error):
        write_report(junk, tmp_path / "r")
    with pytest.raises(ValueError, match="no store path"):
        write_report([])


def test_labels_over_time_with_whole_second_timestamps() -> None:
    """Two fast iterations stamped in the same second still appear one after the other; a
    long pause (campaign stopped overnight, resumed) stays visible as a gap."""
    from alcore.report.data import build_campaign

    P = 30
    status = np.zeros(P, np.int8)
    status[:18] = 2
    tim = {"select": 0.1, "label": 0.3, "train": 0.4, "evaluate": 0.2}
    its = [{"iteration": i, "selected": list(range(6 * i, 6 * i + 6)), "timings": tim,
            "metrics": {"on": "test", "rmse": 1.0, "labelled": 6 * (i + 1),
                        "at": f"2026-11-25T08:00:{s:02d}"}}
           for i, s in zip(range(3), (1, 1, 1), strict=True)]
    its[2]["metrics"]["at"] = "2026-11-25T09:00:01"  # resumed an hour later
    c = build_campaign(path=Path("x.h5"), config={}, oracle_info={},
                       pool_X=np.random.default_rng(0).random((P, 2)), status=status,
                       outputs=np.ones((P, 1)), iterations=its)
    t, n, ti, ni, _ = F.label_timeline(c)
    assert ti[1] == pytest.approx(ti[0] + 1.0)  # the previous end plus its 1.0 s of steps
    assert ti[2] == pytest.approx(ti[0] + 3600.0)
    assert list(ni) == [6, 12, 18] and np.all(np.diff(t) >= 0)
