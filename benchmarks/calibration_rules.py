"""Compare std-calibration rules on the same replays, without training again (issue 15).

``benchmarks/calibration_probe.py PROBLEM ARM SEED --save F.npz`` records every iteration's
held-out rows (residuals ``r``, raw MC std ``s``, pool weights ``w``) and the test residuals
with the raw test std.  The models do not depend on the calibration, so every rule below can
be judged on the same numbers.  For each file and rule this script prints the 90% coverage and
the NLL excess over the RMSE-Gaussian, mean over outputs, at every label count:

* ``gauss``: the Gaussian scale-and-floor fit (the product before session 7);
* ``t``: the product's rule, :func:`alcore.model.calibration.fit_std_calibration` with its
  Student-t tails (:mod:`alcore.predictive`);
* ``t_pooled``: the same fitted on every held-out row since the last tuning;
* ``t_level``: ``t`` with scale and floor times (n_fit / n)^0.5, where n_fit is the number of
  labels the model that produced the held-out residuals saw (4/5 n for a tuning's folds, n minus
  one batch between tunings).

    python benchmarks/calibration_rules.py F.npz [F2.npz ...]

Prints one JSON line per (file, rule).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from alcore.metrics import regression_metrics  # noqa: E402
from alcore.model.calibration import calibrated_std, fit_std_calibration  # noqa: E402
from alcore.predictive import DOF_GRID  # noqa: E402

SOURCE_CV = 0          # it{i}_meta[1] as written by calibration_probe.py: 0 cv, 1 new_rows, 2 other


def load_replay(path: str | Path) -> list[dict[str, np.ndarray]]:
    """One dict per iteration: r, s, w, test_r, test_s, meta = (n_labels, source)."""
    z = np.load(path)
    its = sorted({int(k.split("_")[0][2:]) for k in z.files})
    return [{k.split("_", 1)[1]: z[k] for k in z.files if k.startswith(f"it{i}_")} for i in its]


def _held_out(its: list[dict[str, np.ndarray]], i: int, pooled: bool) -> tuple[np.ndarray, ...]:
    if not pooled:
        return its[i]["r"], its[i]["s"], its[i]["w"]
    j = i
    while j > 0 and int(its[j]["meta"][1]) != SOURCE_CV:
        j -= 1
    parts = [its[m] for m in range(j, i + 1)]
    return (np.concatenate([d["r"] for d in parts]), np.concatenate([d["s"] for d in parts]),
            np.concatenate([d["w"] / d["w"].mean() for d in parts]))


def judge(its: list[dict[str, np.ndarray]], rule: str) -> dict[str, list[float]]:
    """Per iteration: labels, coverage, NLL excess (means over outputs) and the dof used."""
    batch = int(its[1]["meta"][0] - its[0]["meta"][0]) if len(its) > 1 else 0
    out: dict[str, list] = {"n": [], "coverage90": [], "nll_excess": [], "dof": []}
    for i, d in enumerate(its):
        r, s, w = _held_out(its, i, rule == "t_pooled")
        cal = fit_std_calibration(r, s, w, dof_grid=(math.inf,) if rule == "gauss" else DOF_GRID)
        n = int(d["meta"][0])
        n_fit = 0.8 * n if int(d["meta"][1]) == SOURCE_CV else n - batch
        level = math.sqrt(n_fit / n) if rule == "t_level" else 1.0
        std = calibrated_std(d["test_s"], level * np.array(cal["std_scale"]), level * np.array(cal["std_floor"]))
        m = regression_metrics(np.zeros_like(d["test_r"]), d["test_r"], std, dof=cal["dof"])
        out["n"].append(n)
        out["coverage90"].append(round(m["coverage90"], 4))
        out["nll_excess"].append(round(m["nll"] - m["nll_at_rmse"], 4))
        out["dof"].append(cal["dof"])
    return out


def main() -> None:
    for path in sys.argv[1:]:
        its = load_replay(path)
        for rule in ("gauss", "t", "t_pooled", "t_level"):
            res = judge(its, rule)
            print(json.dumps({"file": Path(path).name, "rule": rule,
                              "coverage90_range": [min(res["coverage90"]), max(res["coverage90"])],
                              "nll_excess_max": max(res["nll_excess"]), **res}), flush=True)


if __name__ == "__main__":
    main()
