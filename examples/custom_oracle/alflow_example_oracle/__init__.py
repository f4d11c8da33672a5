"""A third-party alflow oracle: the damped harmonic oscillator, solved in closed form.

x'' + 2 zeta omega x' + omega^2 x = 0, x(0) = 1, x'(0) = 0. Inputs (omega, zeta) in
[0.5, 5] x [0.05, 0.9] (underdamped); outputs x(t_end) and the time of the first zero crossing.
"""

from __future__ import annotations

import numpy as np

from oracles import Oracle


class DampedOscillator(Oracle):
    """Underdamped oscillator x(t) in closed form: (omega, zeta) -> x(t_end), first zero time."""

    name = "damped_oscillator"
    version = "0.1.0"
    description = "underdamped oscillator (omega, zeta) -> x(t_end), first zero crossing (example plug-in)"

    def __init__(self, t_end: float = 2.0) -> None:
        if not t_end > 0:
            raise ValueError(f"damped_oscillator: t_end must be > 0, got t_end={t_end!r}")
        self.t_end = float(t_end)
        self._setup(bounds=[[0.5, 5.0], [0.05, 0.9]], output_names=("x_end", "t_zero"),
                    input_names=("omega", "zeta"), params={"t_end": self.t_end})

    def _evaluate(self, x: np.ndarray) -> np.ndarray:
        omega, zeta = x
        wd = omega * np.sqrt(1.0 - zeta**2)
        phi = np.arctan2(zeta, np.sqrt(1.0 - zeta**2))
        t = self.t_end
        x_end = np.exp(-zeta * omega * t) * np.cos(wd * t - phi) / np.cos(phi)
        t_zero = (np.pi / 2 + phi) / wd
        return np.array([x_end, t_zero])
