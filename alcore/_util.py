"""Small helpers shared by several alcore modules (numpy only, no heavy imports here).

Why one module: input checks and array/seed conventions that the model, the metrics, the NNGP
core and the strategies all need would otherwise be written once per caller (and drift).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

__all__ = ["flatten", "as_2d", "seed_int", "check_float", "check_batch_size"]


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


def as_2d(name: str, a: Any, dtype: Any = np.float64) -> np.ndarray:
    """``a`` as a 2-D float array (a 1-D array becomes one column); ValueError naming ``name``."""
    a = np.asarray(a, dtype=dtype)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D; got shape {a.shape}")
    return a


def seed_int(*parts: int) -> int:
    """A 63-bit seed derived from integer parts (independent streams for (seed, member, purpose)).

    63 bits: what ``torch.Generator.manual_seed`` and numpy both accept.
    """
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0]
               & 0x7FFF_FFFF_FFFF_FFFF)


def check_float(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (>= 0 with ``allow_zero``); ValueError naming ``name``."""
    bound = ">= 0" if allow_zero else "> 0"
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a float {bound}, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a float {bound}, got {value!r}") from None
    if not np.isfinite(v) or v < 0.0 or (v == 0.0 and not allow_zero):
        raise ValueError(f"{name} must be a finite float {bound}, got {value!r}")
    return v


def check_batch_size(batch_size: Any, n_pool: int) -> int:
    """A batch size as an int in [1, n_pool] (a bool is not an int here)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(f"batch_size must be an int, got {batch_size!r}")
    if not 1 <= int(batch_size) <= n_pool:
        raise ValueError(f"batch_size must be between 1 and the pool size {n_pool}, got {batch_size}")
    return int(batch_size)
