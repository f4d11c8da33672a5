"""Failure reasons a person can read: one headline per reason, grouped with counts.

The store keeps the full reason of every failed point (for a ``command`` oracle: its message,
then ``--- stderr (tail) ---`` and the end of what the program wrote to stderr). Every place
that shows failures — ``alflow status``, the UI log line, the report, the Prefect summary —
groups them by :func:`headline` so that they agree; the full text stays in ``alflow export
--include-failed`` and, per group, as an example.
"""

from __future__ import annotations

import re

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["STDERR_MARK", "headline", "stderr_tail", "group_failures", "describe_groups", "describe_counts",
           "failed_share_note", "failures_markdown"]

#: How :class:`oracles.command.CommandError` separates its message from the stderr tail.
STDERR_MARK = "--- stderr (tail) ---"
_MAX_HEADLINE = 200
#: a number in a reason (masked when grouping)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
SIMILAR = " (and similar)"


def stderr_tail(reason: str) -> str:
    """The program's stderr tail carried by a ``command`` oracle's reason ("" if none)."""
    _, sep, tail = str(reason).partition(STDERR_MARK)
    return tail.strip("\n") if sep else ""


def headline(reason: str) -> str:
    """One line for a reason: its first line and, for a program's failure, the last line it
    wrote to stderr (where solvers say why they stopped)."""
    text = str(reason or "").strip()
    lines = [ln.strip() for ln in text.partition(STDERR_MARK)[0].splitlines() if ln.strip()]
    head = lines[0] if lines else "(no reason recorded)"
    err = [ln.strip() for ln in stderr_tail(text).splitlines() if ln.strip()]
    if err:
        head = f"{head} — stderr: {err[-1]}"
    return head if len(head) <= _MAX_HEADLINE else head[: _MAX_HEADLINE - 1] + "…"


def group_failures(indices: Sequence[int] | np.ndarray, reasons: Sequence[str] | np.ndarray,
                   kinds: Sequence[str] | np.ndarray | None = None, first: int = 8) -> list[dict[str, Any]]:
    """Failed points grouped by (headline with its numbers masked, kind), most frequent first.

    Numbers are masked so that "diverged at x0=0.91" and "diverged at x0=0.87" are one reason
    (a region of the box fails, each point with its own coordinates); the group shows its first
    headline as written, with " (and similar)" when its members' headlines differ.
    Each group: ``reason`` (the headline), ``kind``, ``count``, ``indices`` (the first
    ``first`` pool indices) and ``example`` (the full reason of the first point, stderr tail
    included). ``reasons``/``kinds`` are per point, aligned with ``indices``.
    """
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for n, i in enumerate(np.asarray(indices, dtype=np.int64).tolist()):
        reason = str(reasons[n])
        kind = str(kinds[n]) if kinds is not None and str(kinds[n]) else "error"
        head = headline(reason)
        g = groups.setdefault((_NUMBER.sub("#", head), kind),
                              {"reason": head, "kind": kind, "count": 0, "indices": [], "example": reason})
        if head != g["reason"] and not g["reason"].endswith(SIMILAR):
            g["reason"] += SIMILAR
        g["count"] += 1
        if len(g["indices"]) < first:
            g["indices"].append(int(i))
    return sorted(groups.values(), key=lambda g: (-g["count"], g["reason"]))


def describe_groups(groups: Sequence[dict[str, Any]], limit: int = 3) -> str:
    """``2× exception: ValueError: diverged; 1× timeout: ...`` for one log line."""
    parts = [f"{g['count']}× {g['reason']}" for g in groups[:limit]]
    more = sum(g["count"] for g in groups[limit:])
    if more:
        parts.append(f"{more} more")
    return "; ".join(parts)


def describe_counts(counts: dict[str, int], limit: int = 3) -> str:
    """The same line from ``{headline: count}`` (what the label step returns)."""
    groups = [{"reason": r, "count": n} for r, n in sorted(counts.items(), key=lambda t: (-t[1], t[0]))]
    return describe_groups(groups, limit) or "no reason recorded"


def failed_share_note(failed: int, spent: int) -> str:
    """``"18% of evaluations failed (18 of 100)"``, or "" when none failed: appended to the
    state of a finished campaign, so that "complete" is never said of a run that lost labels
    without saying how many."""
    if failed <= 0 or spent <= 0:
        return ""
    pct = 100.0 * failed / spent
    shown = f"{pct:.0f}" if pct >= 1 else f"{pct:.1g}"
    return f"{shown}% of evaluations failed ({failed} of {spent})"


def failures_markdown(groups: Sequence[dict[str, Any]], limit: int = 10) -> list[str]:
    """Markdown lines: a table of the failure groups and the stderr tail of each group's
    example (``command`` oracles); nothing when no point failed."""
    if not groups:
        return []
    lines = ["| points | kind | reason | pool indices |", "|---|---|---|---|"]
    for g in groups[:limit]:
        reason = g["reason"].replace("|", "\\|")
        lines.append(f"| {g['count']} | {g['kind']} | {reason} | {', '.join(map(str, g['indices']))} |")
    rest = groups[limit:]
    if rest:
        lines.append(f"| {sum(g['count'] for g in rest)} | | {len(rest)} other reasons (`alflow status --json`) | |")
    for g in groups[:limit]:
        tail = stderr_tail(g.get("example", ""))
        if tail:
            lines += ["", f"stderr of point {g['indices'][0]} (tail):", "", "```",
                      *tail.splitlines()[-15:], "```"]
    return lines
