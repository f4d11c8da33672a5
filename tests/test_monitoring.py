"""Issue 13 "how is it going?": start-up lines, the Dask dashboard, `alflow status` fields,
and the summary artifact's curve and bars."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest

from alcore import campaign
from alcore.campaign.session import start_dispatcher
from alcore.config import ConfigError, load_config
from alcore.failures import group_failures
from campaign_helpers import counting_config, write_toml
from flows.artifacts import _bar, summary_markdown
from flows.curve_image import learning_curve_svg, log_ticks


class _Lines(campaign.Hooks):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


def _with_hooks(fn):
    hooks = _Lines()
    old = campaign.set_hooks(hooks)
    try:
        fn()
    finally:
        campaign.set_hooks(old)
    return hooks.lines


def test_start_up_phases_are_announced(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ALFLOW_TEST_CALLS", str(tmp_path / "calls.log"))
    cfg = load_config(write_toml(tmp_path / "c.toml", counting_config(tmp_path, test={"size": 4})))
    lines = _with_hooks(lambda: campaign.open_campaign(cfg).close())
    assert any(re.fullmatch(r"start-up: labelling the test set: 4 points with '.+' \.\.\.", ln) for ln in lines), lines
    assert any(re.fullmatch(r"start-up: test set labelled in \d+ s", ln) for ln in lines), lines


def test_dask_dashboard_link_is_announced(tmp_path: Path) -> None:
    pytest.importorskip("bokeh", reason="Dask serves its dashboard only with bokeh (alflow[dashboard])")
    cfg = load_config(write_toml(tmp_path / "c.toml", counting_config(
        tmp_path, dask={"workers": 1, "dashboard": True})))
    box: dict = {}
    lines = _with_hooks(lambda: box.update(d=start_dispatcher(cfg)))
    try:
        assert any(ln.startswith("start-up: starting a local Dask cluster (1 worker(s))") for ln in lines), lines
        ready = next(ln for ln in lines if ln.startswith("start-up: Dask ready"))
        link = re.search(r"Dask dashboard: (http://127\.0\.0\.1:\d+/status)$", ready)
        assert link and link.group(1) == box["d"].dashboard_link, ready
    finally:
        box["d"].close()


@pytest.mark.parametrize("value, ok", [(True, True), (False, True), ("127.0.0.1:8787", True),
                                       (":8787", True), ("dashboard please", False)])
def test_dask_dashboard_config(tmp_path: Path, value, ok) -> None:
    path = write_toml(tmp_path / "c.toml", counting_config(tmp_path, dask={"dashboard": value}))
    if ok:
        assert load_config(path).dask.dashboard == value
    else:
        with pytest.raises(ConfigError, match="dask.dashboard"):
            load_config(path)


def test_status_shows_pace_deadline_and_failures(tmp_path: Path, capsys) -> None:
    from flows.cli import main
    from tests.store_helpers import make_store

    t0 = 1_790_000_000.0  # 2026-09-21 16:13:20 CEST
    config = {"campaign": {"name": "t"}, "budget": {"initial": 10, "iterations": 2},
              "acquisition": {"batch_size": 5}}
    with make_store(tmp_path / "s.h5", config=config) as st:
        st.mark_requested(np.arange(5), 0, np.zeros(5))
        for k in range(4):
            st.record_label(k, [1.0, 2.0], wall_time=2.0, finished=t0 + 30 * k)
        st.record_failure(4, "solver diverged\ntail", 1.0, "w", 1, finished=t0 + 100)
        st.record_iteration(0, {"rmse": 0.5, "labelled": 4, "deadline": "2026-09-22T06:30+02:00",
                                "deadline_zone": "Europe/Berlin"})
    assert main(["status", str(tmp_path / "s.h5")]) == 0
    out = capsys.readouterr().out
    assert "labels per hour: 144" in out, out  # 4 gaps of 30 s... 5 evaluations in 100 s
    assert "simulator time per label: 1.8 s (total 9.0 s)" in out, out  # mean of 2, 2, 2, 2, 1
    assert "last label: 2026-09-21 16:14:50 CEST" in out, out  # shown in the deadline's zone
    assert "eta to the budget: not running" in out, out  # nobody holds the store
    assert "deadline: 2026-09-22 06:30 CEST (Europe/Berlin) (passed)" in out, out
    assert "failed points by reason (1):" in out, out  # one failures table (alcore.failures)
    assert re.search(r"1\s+solver diverged\s+\[error", out), out
    assert main(["status", "--json", str(tmp_path / "s.h5")]) == 0
    import json

    js = json.loads(capsys.readouterr().out)
    assert js["progress"]["failures_by_reason"] == [{"kind": "error", "reason": "solver diverged", "count": 1}]
    assert js["progress"]["deadline_zone"] == "Europe/Berlin"


def test_bars_are_log_scaled() -> None:
    """After a tenfold drop the later rows still differ (a linear bar made them all one block)."""
    values = [1.0, 0.1, 0.05, 0.01]
    bars = [_bar(v, 0.01, 1.0) for v in values]
    blocks = [b.count("█") for b in bars]
    assert blocks[0] == 20 and blocks[-1] == 1
    assert blocks[1] == 1 + round(19 * 0.5) and blocks[1] > blocks[2] > blocks[3]
    assert all(len(b) == 20 for b in bars)


def test_curve_image_is_an_svg_data_uri_with_a_log_axis() -> None:
    history = [{"iteration": i, "metrics": {"rmse": r, "labelled": n},
                "timings": {"select": 0.5, "label": 2.0, "train": 3.0, "evaluate": 0.25}}
               for i, (r, n) in enumerate([(1.0, 10), (0.1, 20), (0.02, 30)])]
    md = summary_markdown("x", history, spent=30, budget=30, failed=0, state="complete", store="/s.h5",
                          progress=[("Labels per hour", "100")],
                          failure_groups=group_failures([3, 7], ["solver | diverged"] * 2, ["error"] * 2),
                          dashboard="http://127.0.0.1:8787/status")
    m = re.search(r"!\[learning curve[^\]]*\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", md)
    assert m, md
    svg = base64.b64decode(m.group(1)).decode()
    assert svg.startswith("<svg") and "RMSE (log)" in svg and svg.count("<circle") == 3
    assert "| Labels per hour | 100 |" in md
    assert "| 0.50 | 2.00 | 3.00 | 0.25 |" in md  # every step's mean time, not only the table's two
    assert "| 2 | error | solver \\| diverged | 3, 7 |" in md  # a pipe in a reason does not break the table
    assert "[http://127.0.0.1:8787/status](http://127.0.0.1:8787/status)" in md
    assert log_ticks(0.02, 1.0) == [0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
    with pytest.raises(ValueError):
        learning_curve_svg([1, 2], [float("nan"), 0.0])
