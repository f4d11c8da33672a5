"""The ``<name>-utilisation`` artifact: how busy the workers were and how fast labels came.

Why its own artifact: utilisation is the figure that says whether the paid-for workers were
used (the reason for ``[campaign] mode = "async"``), for either mode. It is computed from the
store's per-evaluation times, as ``alcore.campaign.utilisation`` documents, over this flow
run's evaluations, and refreshed with the other artifacts.
"""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_markdown_artifact

from flows.artifacts import artifact_key

__all__ = ["utilisation_markdown", "publish_utilisation"]


def _pct(x: Any) -> str:
    return f"{100 * x:.1f}%" if isinstance(x, (int, float)) else "–"


def _num(x: Any, fmt: str = ".0f") -> str:
    return format(x, fmt) if isinstance(x, (int, float)) else "–"


def utilisation_markdown(name: str, mode: str, u: dict[str, Any]) -> str:
    """Markdown for the figures of :func:`alcore.campaign.utilisation.utilisation`."""
    available = u["workers"] * u["span_s"] if isinstance(u.get("span_s"), (int, float)) else None
    return "\n".join([
        f"# Worker utilisation of `{name}` ({mode} mode, this flow run)", "",
        "| Quantity | Value |", "|---|---|",
        f"| Utilisation (busy / available worker-seconds) | {_pct(u.get('utilisation'))} |",
        f"| Utilisation while points were left to submit | {_pct(u.get('utilisation_while_submitting'))} |",
        f"| Busy worker-seconds | {_num(u.get('busy_s'), '.1f')} |",
        f"| Available worker-seconds ({u['workers']} workers x {_num(u.get('span_s'), '.1f')} s) | "
        f"{_num(available, '.1f')} |",
        f"| Labels per hour | {_num(u.get('labels_per_hour'))} |",
        f"| Evaluations | {u['evaluations']} |", "",
        "Busy: the sum of each evaluation's `finished - started`; available: workers x the time from "
        "the first submission to the last result (`alflow export` has these columns).",
    ]) + "\n"


def publish_utilisation(name: str, mode: str, store: Any, workers: int | None, since: float) -> dict[str, Any]:
    """Create or refresh the artifact from the open ``store``; returns the figures."""
    from alcore.campaign.utilisation import utilisation_of_store  # noqa: PLC0415

    u = utilisation_of_store(store, workers, since=since)
    rate = u.get("labels_per_hour")
    create_markdown_artifact(
        utilisation_markdown(name, mode, u), key=artifact_key(name, "utilisation"),
        description=f"Utilisation {_pct(u.get('utilisation'))}, {_num(rate)} labels/h ({u['evaluations']} evaluations)")
    return u
