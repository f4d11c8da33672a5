"""Why do the active-learning arms' 90% intervals over-cover?  (issue 15's calibration check)

Replays one study run (:func:`benchmarks.study.runner.run_one`, the product's own train step)
and records, at every iteration, what the std calibration was fitted on (the held-out residuals
``r``, raw MC std ``s`` and pool weights ``w`` given to
:func:`alcore.model.calibration.fit_std_calibration`) beside what it was judged on (the test
residuals and the calibrated std).  Prints one JSON line per iteration:

* ``heldout_cov`` / ``test_cov``: coverage of the central 90% interval on the rows the
  calibration was fitted on (weighted, as fitted) and on the test set (with the fitted
  Student-t tails, ``dof``; the other columns treat the std as a Gaussian's);
* ``heldout_q90`` / ``test_q90``: the 90% quantile of |z| = |r| / sigma over 1.645 — 1 for a
  Gaussian with the right scale; below 1: sigma too wide for most points;
* ``test_rms_z``: root mean square of z on the test set (1: the ML scale on the test set);
* ``oracle``: two rescalings of the calibrated std fitted *on the test set itself* (per output;
  not a method, a bound on what any rescaling of this std can do): ``ml`` the maximum-likelihood
  scale (its ``test_cov``: coverage when the scale is right on average) and ``q90`` the scale
  that makes the test coverage exactly 90% (its ``nll_excess``).  When ``ml`` over-covers and
  ``q90`` costs more than 0.3 nats, no rescaling meets both of issue 15's checks: the errors
  are heavier-tailed than the std's shape;
* ``power``: the same held-out rows fitted with a three-parameter family
  sigma = sqrt((a * s_ref * (s / s_ref)^gamma)^2 + b^2) (gamma > 1 widens the std's dynamic
  range), applied to the test set: ``gamma`` per output, ``test_cov``, ``nll_excess``.

    python benchmarks/calibration_probe.py burgers1d nngp_lcmd 0 [--save replay.npz] [--run-json s0.json]

``--save`` also writes every iteration's held-out rows (``r``, ``s``, ``w``) and test residuals
with the raw test std to an ``.npz``, so that other calibration rules can be compared on the
same replay without training again; ``--run-json`` writes the run's record as the study's
runner does (the same ``run_one``, so it can stand in for the study's run file).

Needs the study's label cache (``python -m benchmarks.study`` builds it).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import optimize  # noqa: E402

import alcore.model.fit as fit_module  # noqa: E402
import benchmarks.study.runner as runner  # noqa: E402
from alcore.model.calibration import Z90, calibrated_std  # noqa: E402
from alcore.predictive import interval_z, log_density  # noqa: E402
from benchmarks.study.__main__ import DEFAULTS  # noqa: E402
from benchmarks.study.problems import load_problem  # noqa: E402


def _nll(r: np.ndarray, s: np.ndarray) -> float:
    return float(np.mean(0.5 * np.log(2 * np.pi * s ** 2) + 0.5 * (r / s) ** 2))


def _nll_at_rmse(r: np.ndarray) -> float:
    return _nll(r, np.broadcast_to(np.sqrt((r ** 2).mean(axis=0)), r.shape))


def _fit_power(r: np.ndarray, s: np.ndarray, w: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """Per output (log a, gamma, log b) by weighted Gaussian ML, and the reference std s_ref."""
    out = []
    for j in range(r.shape[1]):
        rj, sj = r[:, j], np.maximum(s[:, j], 1e-30)
        ref = float(np.sqrt(np.average(sj ** 2, weights=w)))
        rms = float(np.sqrt(np.average(rj ** 2, weights=w)))

        def f(t: np.ndarray) -> float:
            var = (np.exp(t[0]) * ref * (sj / ref) ** t[1]) ** 2 + np.exp(2 * t[2]) + 1e-300
            return float(np.average(0.5 * np.log(var) + 0.5 * rj ** 2 / var, weights=w))

        box = [(-30.0, 30.0), (0.2, 3.0), (np.log(rms) - 30, np.log(rms) + 5)]
        starts = [[np.log(rms / ref), g, np.log(c * rms)] for g, c in ((1.0, 0.1), (1.5, 0.01), (2.0, 0.01))]
        best = min((optimize.minimize(f, np.array(x0), method="L-BFGS-B", bounds=box) for x0 in starts),
                   key=lambda res: res.fun)
        out.append((best.x, ref))
    return out


def _apply_power(params: list[tuple[np.ndarray, float]], s: np.ndarray) -> np.ndarray:
    cols = [np.sqrt((np.exp(t[0]) * ref * (np.maximum(s[:, j], 1e-30) / ref) ** t[1]) ** 2 + np.exp(2 * t[2]))
            for j, (t, ref) in enumerate(params)]
    return np.stack(cols, axis=1)


def main() -> None:
    problem, strategy, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    save = sys.argv[sys.argv.index("--save") + 1] if "--save" in sys.argv else None
    run_json = sys.argv[sys.argv.index("--run-json") + 1] if "--run-json" in sys.argv else None
    dump: dict[str, np.ndarray] = {}
    torch.set_num_threads(1)
    fitted: list[tuple[np.ndarray, np.ndarray, np.ndarray, dict]] = []
    judged: list[tuple[np.ndarray, np.ndarray, int]] = []
    original_fit, original_metrics = fit_module.fit_std_calibration, runner._metrics

    def recording_fit(r, s, w=None):
        out = original_fit(r, s, w)
        fitted.append((np.asarray(r), np.asarray(s), np.ones(len(r)) if w is None else np.asarray(w), out))
        return out

    def recording_metrics(pred, std, prob, dof=None):
        judged.append((pred - prob.test_y, std, len(fitted), math.inf if dof is None else float(dof)))
        return original_metrics(pred, std, prob, dof)

    fit_module.fit_std_calibration, runner._metrics = recording_fit, recording_metrics
    initial, batch, iterations, _ = DEFAULTS[problem]
    cfg = runner.RunConfig(initial=initial, batch=batch, iterations=iterations, surrogate={"tuning_budget_s": 1e9})
    run = runner.run_one(load_problem(problem, verbose=False), strategy, seed, cfg)
    for rec, (rt, st, n_fitted, nu) in zip(run["records"], judged):
        r, s, w, cal = fitted[n_fitted - 1]
        a, b = np.asarray(cal["std_scale"]), np.asarray(cal["std_floor"])
        raw = np.sqrt(np.maximum(st ** 2 - b ** 2, 0.0)) / a
        sig_ho = calibrated_std(s, a, b)
        z_ho, z_t = np.abs(r / sig_ho), np.abs(rt / st)
        q90_ho = float(np.quantile(z_ho, 0.9) / Z90)            # pooled over outputs, like the test's
        ml = st * np.sqrt(np.mean(z_t ** 2, axis=0))                # the test set's own scales, per output
        q90 = st * np.quantile(z_t, 0.9, axis=0) / Z90
        power = _fit_power(r, s, w)
        sp = _apply_power(power, raw)
        i = rec["iteration"]
        dump.update({f"it{i}_r": r, f"it{i}_s": s, f"it{i}_w": w, f"it{i}_test_r": rt, f"it{i}_test_s": raw,
                     f"it{i}_scale": a, f"it{i}_floor": b,
                     f"it{i}_dof": np.array(nu),
                     f"it{i}_meta": np.array([rec["n_labels"], {"cv": 0, "new_rows": 1}.get(rec["calib_source"], 2)])})
        print(json.dumps({
            "n_labels": rec["n_labels"], "source": rec["calib_source"], "heldout_rows": int(len(r)),
            "heldout_cov": round(float(np.mean(cal["coverage90"])), 3),
            "dof": nu if math.isfinite(nu) else None,
            "test_cov": round(float(np.mean(z_t <= interval_z(nu))), 3),
            "heldout_q90": round(q90_ho, 2), "test_q90": round(float(np.quantile(z_t, 0.9) / Z90), 2),
            "test_rms_z": round(float(np.sqrt(np.mean(z_t ** 2))), 2),
            "nll_excess": round(float(np.mean(-log_density(rt, st, nu))) - _nll_at_rmse(rt), 3),
            "oracle": {"ml": {"test_cov": round(float(np.mean(np.abs(rt) <= Z90 * ml)), 3),
                              "nll_excess": round(_nll(rt, ml) - _nll_at_rmse(rt), 3)},
                       "q90": {"test_cov": round(float(np.mean(np.abs(rt) <= Z90 * q90)), 3),
                               "nll_excess": round(_nll(rt, q90) - _nll_at_rmse(rt), 3)}},
            "power": {"gamma": [round(float(t[1]), 2) for t, _ in power],
                      "test_cov": round(float(np.mean(np.abs(rt) <= Z90 * sp)), 3),
                      "nll_excess": round(_nll(rt, sp) - _nll_at_rmse(rt), 3)}}), flush=True)
    if save:
        np.savez_compressed(save, **dump)
    if run_json:                    # the study's run file (benchmarks.study.runner._worker's JSON)
        Path(run_json).parent.mkdir(parents=True, exist_ok=True)
        Path(run_json).write_text(json.dumps(run))


if __name__ == "__main__":
    main()
