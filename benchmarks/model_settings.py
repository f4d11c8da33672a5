"""Which network settings close the gap to the GP (issue 15's development measurements).

Trains `DropoutMLP` with one setting on n random pool points of a study problem and scores it
on 2,000 *other* pool points — never on the study's test set, so the defaults chosen with it are
not tuned to the test sets the study reports.  Prints one JSON line per (n, seed, setting).

    python benchmarks/model_settings.py heat2d 100,1100 old,base,lr1e-2,g06 [seeds: 0,1]

Settings are keyword overrides of BASE (the pre-default state of the search: SiLU 2 x 128,
dropout 0.05 after the last hidden layer, full batch, 3,000 steps, lr 3e-3, He init); "old"
is the surrogate before issue 15 (2 x 100 ReLU, dropout 0.1 everywhere, batch 64, >= 2,000
steps).  docs/results.md, "What closes the gap", tabulates the output.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from alcore.model import DropoutMLP  # noqa: E402
from benchmarks.study.problems import load_problem  # noqa: E402

HE = math.sqrt(2.0)
BASE = dict(hidden=(128, 128), activation="silu", dropout=0.05, dropout_layers="last", min_steps=3000, epochs=300,
            batch_size=1024, lr=3e-3, weight_decay=1e-4, init_gain=HE)
#: the "noisy" candidate of alcore/model/selection.py as it was before session 5 (dropout 0.1)
NOISY = dict(dropout=0.1, dropout_layers="all", init_gain=HE, lr=3e-3, batch_size=64, min_steps=2000, epochs=300,
             polish_steps=0)
SETTINGS = {
    "old": dict(hidden=(100, 100), activation="relu", dropout=0.1, dropout_layers="all", batch_size=64,
                min_steps=2000, epochs=300, lr=3e-3, weight_decay=1e-4, init_gain=HE),
    "base": {},
    "s1000": dict(min_steps=1000, epochs=100),
    "s10000": dict(min_steps=10000),
    "w64": dict(hidden=(64, 64)),
    "d3": dict(hidden=(128, 128, 128)),
    "all02": dict(dropout_layers="all", dropout=0.02),
    "p01": dict(dropout=0.01),
    "wd1e-3": dict(weight_decay=1e-3),
    "ens3": dict(n_members=3),
    "lr1e-2": dict(lr=1e-2),
    "g1": dict(lr=1e-2, init_gain=1.0),
    "g06": dict(lr=1e-2, init_gain=0.6),
    "g06d3": dict(lr=1e-2, init_gain=0.6, hidden=(128, 128, 128)),
    "hed3": dict(lr=1e-2, hidden=(128, 128, 128)),
    "g06reg": dict(lr=1e-2, init_gain=0.6, weight_decay=1e-2, dropout=0.2),
    # after the study rerun (heat2d 1.2-1.3x the GP): levers on the 'deeper' candidate that won there
    "g06d3s10k": dict(lr=1e-2, init_gain=0.6, hidden=(128, 128, 128), min_steps=10000),
    "g06d3ens3": dict(lr=1e-2, init_gain=0.6, hidden=(128, 128, 128), n_members=3),
    "g06d3w256": dict(lr=1e-2, init_gain=0.6, hidden=(256, 256, 256)),
    # session 4: what separates 'deeper' from the probe (3 x 128 SiLU, no dropout, 0.019)
    "g06d3p0": dict(lr=1e-2, init_gain=0.6, hidden=(128, 128, 128), dropout=0.0),
    "g06d3lr3": dict(lr=3e-3, init_gain=0.6, hidden=(128, 128, 128)),
    "g06d3wd0": dict(lr=1e-2, init_gain=0.6, hidden=(128, 128, 128), weight_decay=0.0),
    "g06d3s5k": dict(lr=1e-2, init_gain=0.6, hidden=(128, 128, 128), min_steps=5000),
    "probe": dict(lr=1e-3, init_gain=None, hidden=(128, 128, 128), dropout=0.0, weight_decay=1e-2, min_steps=5000),
    "probep05": dict(lr=1e-3, init_gain=None, hidden=(128, 128, 128), weight_decay=1e-2, min_steps=5000),
    # the polish (alcore/model/polish.py): L-BFGS on the exact expected-dropout loss after AdamW
    "g06d3pol1k": dict(lr=1e-2, init_gain=0.6, hidden=(128, 128, 128), polish_steps=1000),
    # session 6: one network per output (the "split" candidates of alcore/model/selection.py)
    "split": dict(lr=1e-2, init_gain=0.6, hidden=(128, 128, 128), per_output=True),
    "splitpol1k": dict(lr=1e-2, init_gain=0.6, hidden=(128, 128, 128), polish_steps=1000, per_output=True),
    "g06d3pol2k": dict(lr=1e-2, init_gain=0.6, hidden=(128, 128, 128), polish_steps=2000),
    "g06pol1k": dict(lr=1e-2, init_gain=0.6, polish_steps=1000),
    # session 5: the "noisy" candidate (California; benchmarks/untuned_noisy.py checks diabetes)
    "noisy01": dict(NOISY),
    "noisy02": {**NOISY, "dropout": 0.2},
    "noisy03": {**NOISY, "dropout": 0.3},
    "noisy01wd1": {**NOISY, "weight_decay": 1.0},
    "noisy01wd3": {**NOISY, "weight_decay": 3.0},
    "noisy01wd10": {**NOISY, "weight_decay": 10.0},
    "noisy01ens5": {**NOISY, "n_members": 5},
}


def main() -> None:
    prob, ns, names = sys.argv[1], [int(v) for v in sys.argv[2].split(",")], sys.argv[3].split(",")
    seeds = [int(v) for v in (sys.argv[4] if len(sys.argv) > 4 else "0").split(",")]
    torch.set_num_threads(1)
    p = load_problem(prob, verbose=False)
    for n in ns:
        for seed in seeds:
            idx = np.random.default_rng([seed, 1]).permutation(len(p.pool_X))
            tr, va = idx[:n], idx[n:n + 2000]
            for name in names:
                m = DropoutMLP(**{**BASE, **SETTINGS[name]}, seed=seed, device="cpu")
                t = time.perf_counter()
                m.fit(p.pool_X[tr], p.pool_y[tr])
                err = m.predict(p.pool_X[va]) - p.pool_y[va]
                nr = np.sqrt((err ** 2).mean(0)) / p.pool_y[va].std(0)
                print(json.dumps({"problem": prob, "n": n, "seed": seed, "setting": name,
                                  "nrmse": round(float(nr.mean()), 4),
                                  "rmse0": round(float(np.sqrt((err[:, 0] ** 2).mean())), 4),
                                  "seconds": round(time.perf_counter() - t, 1)}), flush=True)


if __name__ == "__main__":
    main()
