"""Issue 13 "how is it going?": rates, ETAs, the deadline and failures from the store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from alcore.campaign.progress import (PAUSE_S, campaign_progress, format_duration, progress_rows,
                                      stored_deadline, writer_running)
from alcore.store import CampaignStore
from tests.store_helpers import make_store

T0 = 1_800_000_000.0  # a fixed unix time


def _label(st: CampaignStore, i: int, finished: float, wall: float = 2.0) -> None:
    st.record_label(i, [1.0, 2.0], wall_time=wall, worker="worker-0", finished=finished)


def test_rate_eta_and_last_label_come_from_finish_times(tmp_path: Path) -> None:
    with make_store(tmp_path / "s.h5") as st:
        st.mark_requested(np.arange(12), 0, np.zeros(12))
        for k in range(10):  # one evaluation every 36 s: 100 per hour
            _label(st, k, T0 + 36.0 * k, wall=3.0)
        p = campaign_progress(st, budget=30, now=T0 + 360.0, running=True)
    assert p.labelled == 10 and p.failed == 0 and p.pending == 2
    assert p.labels_per_hour == pytest.approx(100.0)
    assert p.sim_seconds_per_label == pytest.approx(3.0)
    assert p.sim_seconds_total == pytest.approx(30.0)
    assert p.last_label_at == pytest.approx(T0 + 324.0)
    # 20 labels left at 100 per hour: 12 minutes after now
    assert p.eta_budget == pytest.approx(T0 + 360.0 + 20 * 36.0)
    assert p.ends_by == "budget"


def test_a_long_pause_starts_a_new_stretch_for_the_rate(tmp_path: Path) -> None:
    with make_store(tmp_path / "s.h5") as st:
        st.mark_requested(np.arange(10), 0, np.zeros(10))
        for k in range(5):  # last night: one per second
            _label(st, k, T0 + k)
        later = T0 + 4 + PAUSE_S * 10
        for k in range(5):  # tonight: one every 60 s
            _label(st, 5 + k, later + 60.0 * k)
        p = campaign_progress(st, budget=20, now=later + 300.0)
    assert p.labels_per_hour == pytest.approx(60.0)


def test_no_eta_when_not_running_or_budget_spent(tmp_path: Path) -> None:
    with make_store(tmp_path / "s.h5") as st:
        st.mark_requested(np.arange(4), 0, np.zeros(4))
        for k in range(4):
            _label(st, k, T0 + 10.0 * k)
        stopped = campaign_progress(st, budget=10, now=T0 + 100, running=False)
        spent = campaign_progress(st, budget=4, now=T0 + 100, running=True)
    assert stopped.eta_budget is None
    assert dict(progress_rows(stopped))["ETA to the budget"].startswith("not running")
    assert spent.eta_budget is None
    assert dict(progress_rows(spent))["ETA to the budget"] == "budget spent"


def test_deadline_rows_and_labels_by_deadline(tmp_path: Path) -> None:
    tz = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 1, 1, 22, 0, tzinfo=tz)
    deadline = datetime(2026, 1, 2, 6, 30, tzinfo=tz)
    with make_store(tmp_path / "s.h5") as st:
        st.mark_requested(np.arange(3), 0, np.zeros(3))
        for k in range(3):  # 2 per hour
            _label(st, k, now.timestamp() - 3600 + 1800.0 * k)
        p = campaign_progress(st, budget=40, deadline=deadline, now=now.timestamp(), running=True)
    assert p.labels_per_hour == pytest.approx(2.0)
    assert p.labels_by_deadline == 3 + 17  # 8.5 h at 2 per hour
    assert p.ends_by == "deadline"
    rows = dict(progress_rows(p))
    assert rows["Deadline"].startswith("2026-01-02 06:30 CET (Europe/Berlin) (in 8 h 30 min)")
    assert "about 20 of 40 labels by then" in rows["Deadline"]
    assert rows["Last label"].startswith("2026-01-01 22:00:00 CET")


def test_failures_grouped_by_kind_and_first_line_of_reason(tmp_path: Path) -> None:
    with make_store(tmp_path / "s.h5") as st:
        st.mark_requested(np.arange(6), 0, np.zeros(6))
        _label(st, 0, T0)
        for k in (1, 2, 3):
            st.record_failure(k, f"solver diverged at x0=0.9{k}\nstderr tail: step {k}", 1.0, "w", 1,
                              kind="error", finished=T0 + k)
        st.record_failure(4, "timed out after 5 s", 5.0, "w", 3, kind="timeout", finished=T0 + 4)
        p = campaign_progress(st, budget=10, now=T0 + 10)
    assert [(g.kind, g.reason, g.count) for g in p.failures] == [
        ("error", "solver diverged at x0=0.91 (and similar)", 3), ("timeout", "timed out after 5 s", 1)]
    assert p.failed_share == pytest.approx(4 / 5)
    d = p.to_dict()
    assert d["failures_by_reason"][0] == {"kind": "error", "reason": "solver diverged at x0=0.91 (and similar)",
                                          "count": 3}
    assert "80% of evaluations" in dict(progress_rows(p))["Labels"]


def test_deadline_recorded_with_an_iteration_is_read_back_in_its_zone(tmp_path: Path) -> None:
    with make_store(tmp_path / "s.h5") as st:
        assert stored_deadline(st) is None
        st.record_iteration(0, {"rmse": 1.0, "deadline": "2026-07-02T06:30+02:00",
                                "deadline_zone": "Europe/Berlin"})
        d = stored_deadline(st)
    assert d == datetime(2026, 7, 2, 4, 30, tzinfo=timezone.utc)
    assert getattr(d.tzinfo, "key", None) == "Europe/Berlin"


def test_writer_running_sees_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    make_store(path).close()
    with CampaignStore.open(path, mode="a"):
        with CampaignStore.open(path, mode="r") as ro:
            assert writer_running(ro)
    with CampaignStore.open(path, mode="r") as ro:
        assert not writer_running(ro)


def test_format_duration() -> None:
    assert format_duration(12.4) == "12 s"
    assert format_duration(2.54) == "2.5 s" and format_duration(0.04) == "40 ms"
    assert format_duration(250) == "4 min 10 s"
    assert format_duration(timedelta(hours=3, minutes=5).total_seconds()) == "3 h 05 min"
    assert format_duration(None) == "–"
    assert format_duration(3 * 86400 + 4 * 3600 + 59) == "3 d 04 h"
