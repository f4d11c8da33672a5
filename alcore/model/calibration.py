"""Post-hoc calibration of the MC-dropout std, fitted on out-of-fold residuals.

Why: the spread of MC-dropout samples is set by the dropout rate and the network, not by the
size of the errors; a model with dropout only on its last hidden layer and a small rate has a
tiny raw std (the acquisition strategies do not care: they use relative noise and only the
*shape* of the kernel).  A user's predictive std must match the errors, so for each output j we
fit a scale ``a_j`` and a floor ``b_j`` such that

    sigma_j(x) = sqrt((a_j * s_j(x))^2 + b_j^2)

(``s_j`` the raw MC std) maximises the Gaussian likelihood of out-of-fold residuals r_ij, i.e.
minimises  sum_i  log sigma_j(x_i) + r_ij^2 / (2 sigma_j(x_i)^2).  The floor absorbs error that
the MC spread does not see (label noise on tabular data, the bias of a smooth fit).  Held-out
residuals are what makes this honest: in-sample residuals of a network that can interpolate
are near zero.

Optional ``weights`` (one per held-out row, e.g. :func:`alcore.model.shift_weights.cell_weights`)
turn the mean over rows into a weighted mean: the held-out rows of an active-learning campaign
sit where the model was unsure, and weighting them by how many pool points they stand for fits
the calibration for the pool rather than for the hard regions.

Tails: with the scale and floor of every output, one shared number of degrees of freedom ``dof``
of a Student-t predictive (:mod:`alcore.predictive`) is chosen from ``DOF_GRID`` by the same
held-out likelihood (for each grid value, every output's scale and floor are fitted by the t
likelihood; the value with the lowest total NLL wins; ``inf`` — the Gaussian fit above — is one
of them).  Why: burgers1d's errors near its fronts are heavy-tailed, and no Gaussian scale
met both the coverage and the NLL check there (:mod:`alcore.predictive` has the numbers).  The
fitted ``std_scale`` and ``std_floor`` always give the predictive *std*
``sqrt((a s)^2 + b^2)``, whatever ``dof``; one dof for all outputs because 20-50 held-out rows
per output are too few to fit a tail each.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import optimize

from alcore.predictive import DOF_GRID, interval_z, log_density

__all__ = ["fit_std_calibration", "calibrated_std", "Z90"]

#: half-width of the central 90% interval of a standard normal
Z90 = 1.6448536269514722


def calibrated_std(mc_std: np.ndarray, scale: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """sqrt((scale * mc_std)^2 + floor^2), broadcasting (n, k) against (k,)."""
    return np.sqrt((np.asarray(scale) * np.asarray(mc_std)) ** 2 + np.asarray(floor) ** 2)


def _nll(r2: np.ndarray, var: np.ndarray, w: np.ndarray) -> float:
    return float(np.average(0.5 * np.log(2 * math.pi * var) + 0.5 * r2 / var, weights=w))


def _fit_one(r: np.ndarray, s: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """(scale, floor) for one output, by L-BFGS on their logarithms from the floor-free optimum."""
    r2 = r * r
    rms = float(np.sqrt(np.average(r2, weights=w)))
    if rms == 0.0:
        return 1.0, 0.0
    tiny = 1e-12 * rms
    pos = (s > tiny) & (w > 0)
    a0 = float(np.sqrt(np.average(r2[pos] / s[pos] ** 2, weights=w[pos]))) if np.any(pos) else 1.0
    s2 = s * s

    def f(theta: np.ndarray) -> float:
        var = math.exp(2 * theta[0]) * s2 + math.exp(2 * theta[1]) + tiny ** 2
        return _nll(r2, var, w)

    starts = [np.array([math.log(max(a0, 1e-12)), math.log(0.1 * rms)]),
              np.array([math.log(max(0.5 * a0, 1e-12)), math.log(0.5 * rms)]),
              np.array([math.log(1e-6 * max(a0, 1e-6)), math.log(rms)])]
    # bounded: an unbounded line search once stepped to exp(1220) (OverflowError, 30 rows, 3 folds)
    box = [(-100.0, 100.0), (math.log(tiny) - 5.0, math.log(rms) + 5.0)]
    best = min((optimize.minimize(f, x0, method="L-BFGS-B", bounds=box) for x0 in starts),
               key=lambda res: res.fun)
    a, b = math.exp(best.x[0]), math.exp(best.x[1])
    # a floor-free fit that is (numerically) as good is preferred: simpler and scale-free
    if np.any(pos) and f(np.array([math.log(max(a0, 1e-12)), math.log(tiny)])) <= best.fun + 1e-9:
        return a0, 0.0
    return a, b


def _fit_one_t(r: np.ndarray, s: np.ndarray, w: np.ndarray, dof: float,
               start: tuple[float, float]) -> tuple[float, float, float]:
    """(scale, floor, weighted mean NLL) of one output under a Student-t with ``dof``, by L-BFGS on
    the logarithms, started from the Gaussian fit ``start`` and two narrower points (heavy
    tails put the bulk of the residuals in a narrower std)."""
    rms = float(np.sqrt(np.average(r * r, weights=w)))
    tiny = 1e-12 * max(rms, 1e-300)
    s2 = s * s

    def f(theta: np.ndarray) -> float:
        std = np.sqrt(math.exp(2 * theta[0]) * s2 + math.exp(2 * theta[1]) + tiny ** 2)
        return -float(np.average(log_density(r, std, dof), weights=w))

    a0, b0 = max(start[0], 1e-12), max(start[1], tiny)
    box = [(-100.0, 100.0), (math.log(tiny) - 5.0, math.log(max(rms, tiny)) + 5.0)]
    starts = [np.array([math.log(c * a0), math.log(max(c * b0, tiny))]) for c in (1.0, 0.5, 0.25)]
    best = min((optimize.minimize(f, x0, method="L-BFGS-B", bounds=box) for x0 in starts),
               key=lambda res: res.fun)
    return math.exp(best.x[0]), math.exp(best.x[1]), float(best.fun)


def fit_std_calibration(residuals: np.ndarray, mc_std: np.ndarray, weights: np.ndarray | None = None,
                        dof_grid: tuple[float, ...] = DOF_GRID) -> dict:
    """Fit scale and floor per output and one shared ``dof`` on held-out ``residuals`` (n, k) and
    raw ``mc_std`` (n, k), each row weighted by ``weights`` (n,) (default: equal).

    Returns a JSON-able dict: ``std_scale``, ``std_floor`` (k lists, original units; they give
    the predictive std), ``dof`` (the Student-t's degrees of freedom, None for the Gaussian),
    ``n``, ``effective_n`` (Kish: (sum w)^2 / sum w^2), and the held-out diagnostics
    before/after (``nll_raw``, ``nll``, ``coverage90_raw``, ``coverage90``; per output,
    weighted like the fit: NLL per point in nats, coverage of the central 90% interval; "raw"
    is the uncalibrated MC std as a Gaussian).  ``dof_grid=(inf,)`` fits a Gaussian only.
    """
    r = np.asarray(residuals, dtype=np.float64)
    s = np.asarray(mc_std, dtype=np.float64)
    if r.ndim == 1:
        r, s = r[:, None], s.reshape(-1, 1)
    if r.shape != s.shape or r.ndim != 2 or r.shape[0] < 2:
        raise ValueError(f"residuals {r.shape} and mc_std {s.shape} must be equal (n >= 2, k) arrays")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(s)) and np.all(s >= 0)):
        raise ValueError("residuals and mc_std must be finite, mc_std >= 0")
    w = np.ones(r.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (r.shape[0],) or not (np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() > 0):
        raise ValueError(f"weights must be {r.shape[0]} finite values >= 0 with a positive sum")
    k = r.shape[1]
    gauss = [_fit_one(r[:, j], s[:, j], w) for j in range(k)]
    # outputs without any held-out error (a constant output predicted exactly) keep the
    # Gaussian's (1, 0) and take no part in choosing the dof: their likelihood is unbounded
    live = [j for j in range(k) if np.any((r[:, j] != 0) & (w > 0))]
    best_dof, best = math.inf, gauss
    best_nll = (sum(-float(np.average(log_density(r[:, j], np.maximum(calibrated_std(s[:, j], *gauss[j]), 1e-300),
                                                  math.inf), weights=w)) for j in live)
                if math.inf in dof_grid else math.inf)
    for dof in (v for v in dof_grid if math.isfinite(v) and live):
        fits = {j: _fit_one_t(r[:, j], s[:, j], w, dof, gauss[j]) for j in live}
        total = sum(f[2] for f in fits.values())
        if total < best_nll:
            best_dof, best_nll = dof, total
            best = [(fits[j][0], fits[j][1]) if j in fits else gauss[j] for j in range(k)]
    scale, floor = np.array([a for a, _ in best]), np.array([b for _, b in best])
    sig = calibrated_std(s, scale, floor)
    raw = np.maximum(s, 1e-300)

    def per_output(sigma: np.ndarray, dof: float) -> tuple[list[float], list[float]]:
        sigma = np.maximum(sigma, 1e-300)
        nll = -log_density(r, sigma, dof)
        cov = np.abs(r) <= interval_z(dof, 0.9) * sigma
        return ([float(v) for v in np.average(nll, axis=0, weights=w)],
                [float(v) for v in np.average(cov, axis=0, weights=w)])

    nll_raw, cov_raw = per_output(raw, math.inf)
    nll, cov = per_output(sig, best_dof)
    return {"std_scale": [float(v) for v in scale], "std_floor": [float(v) for v in floor],
            "dof": None if math.isinf(best_dof) else float(best_dof), "n": int(r.shape[0]),
            "effective_n": float(w.sum() ** 2 / (w ** 2).sum()),
            "nll_raw": nll_raw, "nll": nll, "coverage90_raw": cov_raw, "coverage90": cov}
