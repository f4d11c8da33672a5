"""alcore: the science of alflow (model, MC sampling, NNGP selection, store, campaign steps).

``alcore.load_surrogate(store, model="best")`` is the entry point for using a campaign's
product; it is resolved lazily (PEP 562), so ``import alcore`` stays light (no torch).
"""
from __future__ import annotations

from typing import Any

__all__ = ["load_surrogate"]


def __getattr__(name: str) -> Any:
    if name == "load_surrogate":
        from alcore.surrogate import load_surrogate

        return load_surrogate
    raise AttributeError(f"module 'alcore' has no attribute {name!r}")
