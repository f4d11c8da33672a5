"""The "noisy" candidate's settings on a noisy tabular problem nothing was tuned on.

scikit-learn's bundled diabetes data (442 rows, 10 inputs; no download): for each seed, 300
random rows train `DropoutMLP` with a setting of ``benchmarks/model_settings.py`` and the other
142 score it.  Prints one JSON line per (setting, seed), then per setting the mean RMSE and the
paired ratio to the first setting (how many seeds it is lower on).  Reference points in the
summary: a linear least-squares fit and the mean of the training labels.

    python benchmarks/untuned_noisy.py noisy01,noisy02,noisy03 [seeds: 0-9]

Needs the benchmark extra (scikit-learn): ``pip install -e '.[bench]'``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from alcore.model import DropoutMLP  # noqa: E402
from benchmarks.model_settings import BASE, SETTINGS  # noqa: E402


def _rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred).reshape(y.shape) - y) ** 2)))


def main() -> None:
    from sklearn.datasets import load_diabetes  # noqa: PLC0415

    names = sys.argv[1].split(",")
    lo, hi = (int(v) for v in (sys.argv[2] if len(sys.argv) > 2 else "0-9").split("-"))
    torch.set_num_threads(1)
    X, y = load_diabetes(return_X_y=True)
    y = y.reshape(-1, 1)
    scores: dict[str, list[float]] = {name: [] for name in [*names, "linear", "mean"]}
    for seed in range(lo, hi + 1):
        idx = np.random.default_rng([seed, 9]).permutation(len(X))
        tr, va = idx[:300], idx[300:]
        for name in names:
            model = DropoutMLP(**{**BASE, **SETTINGS[name]}, seed=seed, device="cpu")
            model.fit(X[tr], y[tr])
            scores[name].append(_rmse(model.predict(X[va]), y[va]))
            print(json.dumps({"setting": name, "seed": seed, "rmse": round(scores[name][-1], 2)}), flush=True)
        A = np.column_stack([X[tr], np.ones(len(tr))])
        coef = np.linalg.lstsq(A, y[tr], rcond=None)[0]
        scores["linear"].append(_rmse(np.column_stack([X[va], np.ones(len(va))]) @ coef, y[va]))
        scores["mean"].append(_rmse(np.full_like(y[va], y[tr].mean()), y[va]))
    first = np.asarray(scores[names[0]])
    print(json.dumps({name: {"mean_rmse": round(float(np.mean(v)), 2),
                             f"ratio_to_{names[0]}": round(float(np.mean(np.asarray(v) / first)), 3),
                             "seeds_lower": int(np.sum(np.asarray(v) < first))}
                      for name, v in scores.items()}))


if __name__ == "__main__":
    main()
