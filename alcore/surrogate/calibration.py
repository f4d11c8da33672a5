"""The calibrated predictive standard deviation: the ONE place that computes it.

# --- MERGE SEAM ------------------------------------------------------------------------------
# INTERFACES.md section 5: the surrogate engineer adds ``DropoutMLP.predict_with_std(X, T, seed)``
# which applies the calibration stored in the model state. Until it lands, this module applies
# the state's ``calib_std_scale`` / ``calib_std_floor`` (k,) itself, with the formula of that
# section. At merge time, replace the body of :func:`calibrated_std` with
#
#     return model.predict_with_std(X, T=T, seed=seed)[1]
#
# and delete :func:`calibration_of` (nothing else calls it). ``Surrogate.predict`` keeps the
# dropout-off ``model.predict`` as its mean either way: that is what the campaign's stored test
# metrics and the exported ONNX graph compute.
# ----------------------------------------------------------------------------------------------

Why calibrate at all: the raw spread of MC-dropout samples is a kernel (it ranks points for
acquisition), not a predictive standard deviation; its scale is set by the dropout rate.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["calibrated_std", "calibration_of"]


def calibration_of(state: Mapping[str, np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(scale, floor)``, each (k,), from the model state; absent keys mean scale 1, floor 0."""
    scale = np.broadcast_to(np.asarray(state.get("calib_std_scale", 1.0), dtype=np.float64)
                            .reshape(-1), (k,)).copy()
    floor = np.broadcast_to(np.asarray(state.get("calib_std_floor", 0.0), dtype=np.float64)
                            .reshape(-1), (k,)).copy()
    return scale, floor


def calibrated_std(model: Any, state: Mapping[str, np.ndarray], X: np.ndarray, *, T: int,
                   seed: int) -> np.ndarray:
    """(n, k) calibrated std ``sqrt((scale * mc_std)**2 + floor**2)`` in original units.

    ``mc_std`` is the standard deviation (ddof 0, as in ``alcore.campaign.evaluate``) of ``T``
    MC-dropout samples with shared masks drawn from ``seed``, so a row's value does not depend
    on the other rows of ``X``.
    """
    mc_std = model.sample(X, T, seed=seed).std(axis=1)
    scale, floor = calibration_of(state, mc_std.shape[1])
    return np.sqrt((scale * mc_std) ** 2 + floor ** 2)
