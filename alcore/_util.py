"""Small helpers shared by several alcore modules (no heavy imports here)."""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["flatten"]


def flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``).

    Why: config comparisons (resume checks) name the exact key that differs. An empty nested
    mapping stays a value of its own, so ``{"params": {}}`` is not lost.
    """
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
