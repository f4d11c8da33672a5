"""A plain-function oracle: the simplest way to plug in your own simulator.

Use it from a config as ``[oracle] name = "my_oracle.py:damped_oscillator"`` (the path is
relative to the config file) with ``bounds`` giving the input domain; alflow wraps the
function in a ``FunctionOracle`` and ships it to the Dask workers. Return a float or a 1-d
array (one value per output). Raise an exception (or return NaN) for a failed evaluation: the
dispatcher retries it and records a failure, the campaign goes on.
"""

from __future__ import annotations

import numpy as np


def damped_oscillator(x: np.ndarray) -> float:
    """Peak displacement of a damped oscillator after an impulse.

    x = (log10 stiffness k in [0, 2], damping ratio zeta in [0.05, 0.9]); the response is
    integrated with a small fixed-step scheme to stand in for a real solver.
    """
    k = 10.0 ** float(x[0])
    zeta = float(x[1])
    m = 1.0
    c = 2.0 * zeta * np.sqrt(k * m)
    dt = 0.002
    u, v = 0.0, 1.0
    peak = 0.0
    for _ in range(2500):
        a = (-c * v - k * u) / m
        v += dt * a
        u += dt * v
        peak = max(peak, abs(u))
    return peak
