"""Regression metrics for surrogate evaluation, as JSON-serialisable plain floats.

Per-output lists matter because outputs of a simulator often live on very different scales;
the scalar means are what a campaign log or a study table shows.  R² is per output (so scale
free), RMSE/MAE are in original units.

With a predictive std, two checks of the uncertainty (issue 15): the Gaussian NLL (mean per
point, nats) and the coverage of the central 90% interval ``|y - mean| <= 1.645 std`` — a
calibrated model covers about 90% of test points, and its NLL is close to that of a Gaussian
whose std is the observed RMSE, ``nll_at_rmse = 0.5 log(2 pi RMSE^2) + 0.5``.  With ``dof``
(a calibrated model's Student-t degrees of freedom, :mod:`alcore.predictive`) the NLL is the
t's and the interval is ``|y - mean| <= interval_z(dof) * std`` (1.359 std for dof 3); the
reference stays the Gaussian at the RMSE.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from alcore._util import as_2d
from alcore.predictive import check_dof, interval_z, log_density

#: half-width of the central 90% interval of a standard normal
Z90 = 1.6448536269514722


def regression_metrics(y_true, y_pred, y_std=None, output_names: Sequence[str] | None = None,
                       dof: float | None = None) -> dict:
    """RMSE, MAE and R² per output plus their means; Gaussian NLL when ``y_std`` is given.

    Returns ``{"n": int, "output_names": [...], "rmse": float, "rmse_per_output": [...], ...}``
    with keys ``rmse``, ``mae``, ``r2`` and, with ``y_std``, ``nll`` (mean negative log density
    per point and output), ``coverage90`` (share of points inside the central 90% interval) and
    ``nll_at_rmse`` (the NLL a Gaussian with std = the observed RMSE would get), each also
    ``*_per_output``.  ``dof`` (None or inf: Gaussian) is the predictive's Student-t degrees of
    freedom; ``y_std`` is its standard deviation either way.  R² of a constant target (zero variance) is defined, not NaN: 1 for
    an exact fit, 0 otherwise, so that the result stays JSON-serialisable.
    """
    yt = as_2d("y_true", y_true)
    yp = as_2d("y_pred", y_pred)
    if yt.shape != yp.shape:
        raise ValueError(f"y_pred has shape {yp.shape} but y_true has {yt.shape}")
    n, k = yt.shape
    if n == 0:
        raise ValueError("y_true is empty")
    if not np.all(np.isfinite(yt)):
        raise ValueError("y_true contains NaN or infinite values")
    if not np.all(np.isfinite(yp)):
        raise ValueError("y_pred contains NaN or infinite values")
    if output_names is None:
        names = [f"y{i}" for i in range(k)]
    else:
        names = [str(s) for s in output_names]
        if len(names) != k:
            raise ValueError(f"output_names has {len(names)} names for {k} outputs")
    err = yp - yt
    rmse = np.sqrt(np.mean(err ** 2, axis=0))
    mae = np.mean(np.abs(err), axis=0)
    sse = np.sum(err ** 2, axis=0)
    sst = np.sum((yt - yt.mean(axis=0)) ** 2, axis=0)
    r2 = np.empty(k)
    for i in range(k):
        if sst[i] > 0:
            r2[i] = 1.0 - sse[i] / sst[i]
        else:
            r2[i] = 1.0 if sse[i] == 0 else 0.0
    out: dict = {
        "n": int(n),
        "output_names": names,
        "rmse": float(np.mean(rmse)), "rmse_per_output": [float(v) for v in rmse],
        "mae": float(np.mean(mae)), "mae_per_output": [float(v) for v in mae],
        "r2": float(np.mean(r2)), "r2_per_output": [float(v) for v in r2],
    }
    if y_std is not None:
        s = as_2d("y_std", y_std)
        if s.shape != yt.shape:
            raise ValueError(f"y_std has shape {s.shape} but y_true has {yt.shape}")
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError("y_std must be finite and > 0")
        nu = math.inf if dof is None else check_dof(dof)
        nll = -log_density(err, s, nu)
        nll_out = nll.mean(axis=0)
        out["nll"] = float(np.mean(nll_out))
        out["nll_per_output"] = [float(v) for v in nll_out]
        cov = np.mean(np.abs(err) <= interval_z(nu, 0.9) * s, axis=0)
        out["coverage90"] = float(np.mean(cov))
        out["coverage90_per_output"] = [float(v) for v in cov]
        ref = 0.5 * np.log(2 * math.pi * np.maximum(rmse, 1e-300) ** 2) + 0.5
        out["nll_at_rmse"] = float(np.mean(ref))
        out["nll_at_rmse_per_output"] = [float(v) for v in ref]
    return out
