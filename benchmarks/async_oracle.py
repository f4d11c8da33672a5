"""The oracle of ``benchmarks/async.py``: a smooth function of 3 inputs that takes a log-normal time.

The time is deterministic in x (median ``median`` seconds, log-standard deviation ``sigma``), so
two campaigns that pick the same point pay the same, and slow points are slow for both modes.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

BOUNDS = [[-1.0, 1.0]] * 3


def smooth(x: np.ndarray) -> float:
    """The simulated quantity (also used to label the test set without sleeping)."""
    x = np.asarray(x, dtype=float)
    return float(np.sin(3.0 * x[0]) + 0.5 * np.cos(2.0 * x[1]) + 0.3 * x[0] * x[2] + 0.2 * x[2] ** 2)


def duration(x: np.ndarray, median: float = 1.0, sigma: float = 1.0) -> float:
    """Seconds the simulation of x takes: median * exp(sigma * z), z ~ N(0, 1) seeded by x."""
    key = int.from_bytes(hashlib.sha256(np.asarray(x, dtype=np.float64).tobytes()).digest()[:8], "little")
    return float(median * np.exp(sigma * np.random.default_rng(key).standard_normal()))


def f(x: np.ndarray, median: float = 1.0, sigma: float = 1.0) -> float:
    time.sleep(duration(x, median, sigma))
    return smooth(x)
