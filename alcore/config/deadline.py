"""``[budget] deadline = "HH:MM"``: the wall-clock time a campaign must stop, made explicit.

Rule (documented in the README's config table): the deadline is the first time ``HH:MM`` in
``[budget] timezone`` (an IANA name; default: the machine's time zone) that is strictly after
the moment the run starts. So a night run started at 22:00 with ``deadline = "06:30"`` stops at
06:30 the next morning, and ``deadline = "18:44"`` given at 18:44:05 means 18:44 *tomorrow*.
That last case is almost always a mistake, so when the resolved deadline is more than
:data:`FAR_AWAY` (20 h) away, :func:`deadline_warning` says so and the CLI prints it at start
(``alflow run``) and in ``alflow validate``.

Deadlines are timezone-aware datetimes: a deployment's cron has its own time zone, and a
campaign that crosses a DST change must still stop at the wall-clock time that was meant.
"""

from __future__ import annotations

import difflib
import os
from functools import lru_cache
from datetime import datetime, time as dtime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

if TYPE_CHECKING:
    from alcore.config.sections import BudgetSection

__all__ = [
    "FAR_AWAY",
    "resolve_deadline",
    "deadline_warning",
    "describe_deadline",
    "deadline_timezone",
    "machine_timezone",
    "machine_timezone_name",
    "timezone_problem",
    "next_deadline",
]

#: A resolved deadline further away than this gets a warning (it probably meant "today").
FAR_AWAY = timedelta(hours=20)


def timezone_problem(name: str) -> str | None:
    """``None`` for an IANA time zone name, else a one-line reason with a close match."""
    try:
        ZoneInfo(name)
        return None
    except (ZoneInfoNotFoundError, ValueError):
        pass
    close = difflib.get_close_matches(name, _timezone_names(), n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"'{name}' is not an IANA time zone name like \"Europe/Berlin\"{hint}"


@lru_cache(maxsize=1)
def _timezone_names() -> list[str]:
    return sorted(available_timezones())


def machine_timezone_name() -> str | None:
    """The IANA name of this machine's time zone (``TZ``, then ``/etc/localtime``), if known."""
    candidates: list[str] = []
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        candidates.append(tz)
    try:
        link = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in link:
            candidates.append(link.split("zoneinfo/", 1)[1])
    except OSError:  # pragma: no cover
        pass
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    for name in candidates:
        if name and ("/" in name or name == "UTC"):
            try:
                ZoneInfo(name)
                return name
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return None


def machine_timezone() -> tzinfo:
    """This machine's time zone: a ``ZoneInfo`` when its name is known (DST-aware), else the
    current fixed UTC offset."""
    name = machine_timezone_name()
    if name is not None:
        return ZoneInfo(name)
    return datetime.now().astimezone().tzinfo or timezone.utc


def deadline_timezone(budget: BudgetSection) -> tzinfo:
    """The time zone of ``budget.deadline``: ``budget.timezone`` or the machine's."""
    return ZoneInfo(budget.timezone) if budget.timezone else machine_timezone()


def _hhmm(text: str) -> dtime:
    h, m = (int(x) for x in text.split(":"))
    return dtime(h, m)


def resolve_deadline(budget: BudgetSection, now: datetime | None = None) -> datetime | None:
    """The deadline of a run starting at ``now``, timezone-aware; ``None`` without a deadline.

    ``budget`` is a :class:`~alcore.config.BudgetSection` (``deadline`` "HH:MM", ``timezone``).
    ``now`` defaults to the current time; an aware ``now`` is converted to the deadline's time
    zone, a naive one is read as wall-clock time in that zone. The result is the first
    ``HH:MM`` strictly after ``now`` (a non-existent time on a DST change moves forward).
    """
    if budget.deadline is None:
        return None
    tz = deadline_timezone(budget)
    if now is None:
        now = datetime.now(tz)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=tz)
    else:
        now = now.astimezone(tz)
    at = _hhmm(budget.deadline)
    day = now.date()
    for _ in range(3):
        # Round-trip through UTC: normalises a wall time that does not exist (DST gap).
        candidate = datetime.combine(day, at, tzinfo=tz).astimezone(timezone.utc).astimezone(tz)
        if candidate.astimezone(timezone.utc) > now.astimezone(timezone.utc):
            return candidate
        day += timedelta(days=1)
    raise AssertionError("unreachable: a wall-clock time recurs every day")  # pragma: no cover


def deadline_warning(budget: BudgetSection, now: datetime | None = None) -> str | None:
    """A warning text when ``budget.deadline`` resolves to more than :data:`FAR_AWAY` ahead."""
    now_aware = _aware_now(budget, now)
    deadline = resolve_deadline(budget, now_aware)
    if deadline is None:
        return None
    ahead = deadline.astimezone(timezone.utc) - now_aware.astimezone(timezone.utc)
    if ahead <= FAR_AWAY:
        return None
    local_now = now_aware.astimezone(deadline.tzinfo)
    return (f"budget.deadline \"{budget.deadline}\" is {_span(ahead)} away ({describe_deadline(deadline)}): "
            f"the next {budget.deadline} after now ({local_now:%H:%M:%S}); if you meant today, that "
            "time has already passed")


def describe_deadline(deadline: datetime) -> str:
    """``2026-01-02 06:30 CET (Europe/Berlin)``: date, time and time zone, as the CLI shows it."""
    key = getattr(deadline.tzinfo, "key", None)
    abbrev = deadline.tzname() or deadline.strftime("%z")
    return deadline.strftime("%Y-%m-%d %H:%M ") + abbrev + (f" ({key})" if key and key != abbrev else "")


def _aware_now(budget: BudgetSection, now: datetime | None) -> datetime:
    tz = deadline_timezone(budget)
    if now is None:
        return datetime.now(tz)
    return now.replace(tzinfo=tz) if now.tzinfo is None else now


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def next_deadline(hhmm: str | None, now: datetime | None = None) -> datetime | None:
    """The next local wall-clock time ``hhmm`` after ``now`` (a run started at 22:00 with
    deadline "06:30" ends at 06:30 the next morning). Naive local datetimes.

    Kept for the campaign core, which compares it with ``datetime.now()``; it ignores
    ``[budget] timezone``: new code uses :func:`resolve_deadline` (aware).
    """
    if hhmm is None:
        return None
    now = now or datetime.now()
    candidate = datetime.combine(now.date(), _hhmm(hhmm))
    if candidate <= now:
        candidate += timedelta(days=1)
    return candidate
