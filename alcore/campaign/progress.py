""""How is it going?": throughput, ETAs and failures of a campaign, computed from its store.

One pure function, :func:`campaign_progress`, reads what the store holds (per point: when its
evaluation finished, its simulator wall time, its failure kind and reason; per iteration: the
resolved deadline the run recorded) and returns a small frozen :class:`Progress`. ``alflow
status`` and the Prefect summary artifact both show it, so they always agree.

Rules (documented in the README, "status fields"):

* **Labels per hour** is the campaign's throughput, not the simulator's: evaluations (labels and
  failures, both cost a simulator run) per hour of wall-clock time between the first and the
  last evaluation of the *current stretch*. A stretch ends at a pause longer than
  :data:`PAUSE_S` (an hour) or three times the longest single evaluation, whichever is longer,
  so last night's run does not dilute tonight's rate. Select/train time between batches counts.
* **ETA to the budget** = now + (labels left in the budget) / (labels per hour), while the
  campaign runs; the **deadline** is the one the run resolved at its start (date, time, zone)
  and ``labels_by_deadline`` what the same rate reaches by then, capped by the budget.
* **Failures by reason**: counts per failure kind and first line of the reason, most common
  first.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from alcore.store import CampaignStore

__all__ = ["PAUSE_S", "FailureGroup", "Progress", "campaign_progress", "stored_deadline",
           "writer_running", "format_duration"]

#: A gap between two evaluations longer than this (or 3× the longest evaluation) starts a new
#: stretch for the rate: the campaign was not running (a stopped run, the day between nights).
PAUSE_S = 3600.0


@dataclass(frozen=True)
class FailureGroup:
    """Failed evaluations that share a failure kind and the first line of their reason."""

    kind: str
    reason: str
    count: int


@dataclass(frozen=True)
class Progress:
    """A snapshot of a campaign's pace; times are unix seconds, ``None`` where unknown."""

    now: float
    labelled: int
    failed: int
    pending: int
    budget: int
    first_label_at: float | None          # first evaluation (label or failure) of the campaign
    last_label_at: float | None           # newest successful label
    labels_per_hour: float | None         # evaluations per hour in the current stretch
    sim_seconds_per_label: float | None   # mean simulator wall time per evaluation
    sim_seconds_total: float              # simulator wall time of every evaluation so far
    eta_budget: float | None              # when the budget is expected to be spent (running only)
    deadline: datetime | None             # the run's resolved deadline (timezone-aware)
    labels_by_deadline: int | None        # expected spent labels at the deadline (capped)
    running: bool | None                  # a writer holds the store (None: not checked)
    failures: tuple[FailureGroup, ...] = field(default_factory=tuple)

    @property
    def spent(self) -> int:
        """Labels spent: labelled plus failed (a failure costs a simulator run too)."""
        return self.labelled + self.failed

    @property
    def failed_share(self) -> float | None:
        return self.failed / self.spent if self.spent else None

    @property
    def seconds_to_deadline(self) -> float | None:
        return None if self.deadline is None else self.deadline.timestamp() - self.now

    @property
    def ends_by(self) -> str | None:
        """What ends the campaign first by the current pace: ``"budget"`` or ``"deadline"``."""
        if self.eta_budget is None:
            return "deadline" if self.deadline is not None and self.running else None
        if self.deadline is not None and self.deadline.timestamp() < self.eta_budget:
            return "deadline"
        return "budget"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (``alflow status --json``): unix times as ISO text, plus the raw numbers."""
        def iso(t: float | None) -> str | None:
            return None if t is None else datetime.fromtimestamp(t, timezone.utc).astimezone().isoformat(
                timespec="seconds")

        return {
            "now": iso(self.now), "labelled": self.labelled, "failed": self.failed,
            "pending": self.pending, "spent": self.spent, "budget": self.budget,
            "failed_share": self.failed_share,
            "first_label_at": iso(self.first_label_at), "last_label_at": iso(self.last_label_at),
            "seconds_since_last_label": None if self.last_label_at is None else self.now - self.last_label_at,
            "labels_per_hour": self.labels_per_hour,
            "sim_seconds_per_label": self.sim_seconds_per_label,
            "sim_seconds_total": self.sim_seconds_total,
            "eta_budget": iso(self.eta_budget),
            "deadline": None if self.deadline is None else self.deadline.isoformat(timespec="minutes"),
            "deadline_zone": None if self.deadline is None else getattr(self.deadline.tzinfo, "key",
                                                                          self.deadline.tzname()),
            "seconds_to_deadline": self.seconds_to_deadline,
            "labels_by_deadline": self.labels_by_deadline,
            "ends_by": self.ends_by,
            "running": self.running,
            "failures_by_reason": [{"kind": g.kind, "reason": g.reason, "count": g.count}
                                   for g in self.failures],
        }


def _finite(a: Any) -> np.ndarray:
    v = np.asarray(a, dtype=np.float64).reshape(-1)
    return v[np.isfinite(v)]


def _current_stretch_rate(times: np.ndarray, longest_eval: float) -> float | None:
    """Evaluations per hour between the first and last evaluation after the latest pause."""
    if times.size < 2:
        return None
    t = np.sort(times)
    pause = max(PAUSE_S, 3.0 * longest_eval)
    gaps = np.flatnonzero(np.diff(t) > pause)
    start = int(gaps[-1]) + 1 if gaps.size else 0
    stretch = t[start:]
    span = float(stretch[-1] - stretch[0])
    if stretch.size < 2 or span <= 0:
        return None
    return (stretch.size - 1) / span * 3600.0


def _failure_groups(kinds: np.ndarray, reasons: np.ndarray, limit: int = 8) -> tuple[FailureGroup, ...]:
    """:func:`alcore.failures.group_failures` (the one grouping rule) as at most ``limit``
    groups, the rest summed into one "other" group."""
    from alcore.failures import group_failures  # noqa: PLC0415

    ordered = group_failures(np.arange(len(reasons)), reasons, kinds)
    groups = [FailureGroup(kind=g["kind"], reason=g["reason"], count=g["count"]) for g in ordered[:limit]]
    rest = sum(g["count"] for g in ordered[limit:])
    if rest:
        groups.append(FailureGroup(kind="other", reason=f"{len(ordered) - limit} other reason(s)", count=rest))
    return tuple(groups)


def stored_deadline(store: CampaignStore) -> datetime | None:
    """The resolved deadline the newest run recorded with its iterations (aware), if any."""
    for rec in reversed(list(store.iterations)):
        text = (rec.get("metrics") or {}).get("deadline")
        if text:
            try:
                d = datetime.fromisoformat(str(text))
            except ValueError:
                return None
            zone = (rec.get("metrics") or {}).get("deadline_zone")
            if zone and d.tzinfo is not None:
                try:
                    from zoneinfo import ZoneInfo

                    d = d.astimezone(ZoneInfo(str(zone)))
                except Exception:  # noqa: BLE001 - an unknown zone name: keep the offset
                    pass
            return d
    return None


def writer_running(store: CampaignStore) -> bool:
    """A live process holds the store's writer lock (a campaign is running on it)."""
    from alcore.store.lock import is_stale, read_lock  # noqa: PLC0415

    path = store.files.lock
    info = read_lock(path)
    return info is not None and not is_stale(path, info)


def campaign_progress(store: CampaignStore, *, budget: int, deadline: datetime | None = None,
                      now: float | None = None, running: bool | None = None) -> Progress:
    """The pace of the campaign in ``store`` (read-only; a snapshot store works).

    ``budget`` is the label budget (the config's ``label_budget``); ``deadline`` the run's
    resolved deadline (default: the one recorded in the store); ``now`` unix seconds (default:
    the clock); ``running`` whether a campaign is writing now (ETAs are only given then; None
    counts as running).
    """
    now = time.time() if now is None else float(now)
    status = np.asarray(store.status)
    from alcore.store import StoreStatus  # noqa: PLC0415

    ok = status == int(StoreStatus.LABELLED)
    bad = status == int(StoreStatus.FAILED)
    pending = int(np.count_nonzero(status == int(StoreStatus.REQUESTED)))
    done = ok | bad
    finished = np.asarray(store.finished_times, dtype=np.float64)
    walls = np.asarray(store.wall_times, dtype=np.float64)
    times_all = _finite(finished[done])
    times_ok = _finite(finished[ok])
    wall_done = _finite(walls[done])
    longest = float(wall_done.max()) if wall_done.size else 0.0
    rate = _current_stretch_rate(times_all, longest)
    labelled, failed = int(ok.sum()), int(bad.sum())
    spent = labelled + failed
    left = max(0, int(budget) - spent)
    active = running is None or running
    eta = None
    if active and rate and left > 0:
        eta = now + left / rate * 3600.0
    if deadline is None:
        deadline = stored_deadline(store)
    by_deadline = None
    if deadline is not None and rate and active:
        ahead = max(0.0, deadline.timestamp() - now)
        by_deadline = int(min(int(budget), spent + math.floor(rate * ahead / 3600.0)))
    kinds = np.asarray(store.failure_kinds)[bad]
    reasons = np.asarray(store.failure_reasons)[bad]
    return Progress(
        now=now, labelled=labelled, failed=failed, pending=pending, budget=int(budget),
        first_label_at=float(times_all.min()) if times_all.size else None,
        last_label_at=float(times_ok.max()) if times_ok.size else None,
        labels_per_hour=rate,
        sim_seconds_per_label=float(wall_done.mean()) if wall_done.size else None,
        sim_seconds_total=float(wall_done.sum()),
        eta_budget=eta, deadline=deadline, labels_by_deadline=by_deadline,
        running=running, failures=_failure_groups(kinds, reasons),
    )


def format_duration(seconds: float | None) -> str:
    """``3 d 04 h``, ``3 h 05 min``, ``4 min 10 s``, ``12 s``, ``2.5 s``, ``40 ms``; ``–`` unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    sign = "-" if seconds < 0 else ""
    if abs(seconds) < 1:
        return f"{sign}{abs(seconds) * 1000:.0f} ms"
    if abs(seconds) < 10:
        return f"{sign}{abs(seconds):.1f} s"
    s = int(round(abs(seconds)))
    if s >= 2 * 86400:
        return f"{sign}{s // 86400} d {s % 86400 // 3600:02d} h"
    if s >= 3600:
        return f"{sign}{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{sign}{s // 60} min {s % 60:02d} s"
    return f"{sign}{s} s"


def _clock(t: float, now: float, tz: Any = None) -> str:
    """``2026-01-02 06:30:12 CET (4 min ago)`` in ``tz`` (default: the machine's zone)."""
    d = datetime.fromtimestamp(t, timezone.utc).astimezone(tz)
    ago = now - t
    rel = f"in {format_duration(-ago)}" if ago < 0 else f"{format_duration(ago)} ago"
    return f"{d:%Y-%m-%d %H:%M:%S} {d.tzname() or ''} ({rel})".replace("  ", " ")


def progress_rows(p: Progress) -> list[tuple[str, str]]:
    """(quantity, value) rows as people read them: the summary artifact and ``alflow status``
    show exactly these."""
    from alcore.config.deadline import describe_deadline  # noqa: PLC0415

    tz = p.deadline.tzinfo if p.deadline is not None else None
    rows: list[tuple[str, str]] = []
    share = f" ({100 * p.failed_share:.0f}% of evaluations)" if p.failed_share else ""
    rows.append(("Labels", f"{p.labelled} labelled, {p.failed} failed{share}, {p.pending} pending; "
                           f"{p.spent} of {p.budget} spent"))
    rate = p.labels_per_hour
    rows.append(("Labels per hour", "–" if rate is None else f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"))
    rows.append(("Simulator time per label", format_duration(p.sim_seconds_per_label)
                 + (f" (total {format_duration(p.sim_seconds_total)})" if p.sim_seconds_total else "")))
    rows.append(("Last label", "none yet" if p.last_label_at is None else _clock(p.last_label_at, p.now, tz)))
    if p.spent >= p.budget:
        eta = "budget spent"
    elif p.running is False:
        eta = "not running (resume with `alflow run CONFIG`)"
    elif p.eta_budget is None:
        eta = "– (needs two finished evaluations)"
    else:
        eta = _clock(p.eta_budget, p.now, tz)
    rows.append(("ETA to the budget", eta))
    if p.deadline is not None:
        left = p.seconds_to_deadline or 0.0
        text = describe_deadline(p.deadline) + (f" (in {format_duration(left)})" if left > 0 else " (passed)")
        if p.labels_by_deadline is not None and p.spent < p.budget and left > 0:
            text += f"; about {p.labels_by_deadline} of {p.budget} labels by then at this pace"
        rows.append(("Deadline", text))
    else:
        rows.append(("Deadline", "none"))
    return rows
