"""Helpers of the surrogate tests: a real small campaign, and hand-filled stores with models.

``run_campaign`` runs alcore.campaign on a two-output plain-function oracle whose inputs sit
off zero and whose outputs live on different scales (so the normalisation matters), with a
test set, exactly as ``alflow run`` would (in-process oracle, no Prefect).

``store_with_models`` writes real DropoutMLP checkpoints and iteration records of our choosing
into a real store, for the model-choice rules and the calibration keys.
"""
from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from campaign_helpers import write_toml

TWO_OUTPUT_ORACLE = textwrap.dedent(
    '''
    import numpy as np

    def f(x):
        """Two outputs on different scales."""
        u, v = float(x[0]), float(x[1])
        return np.array([np.sin(3.0 * u) + v, 100.0 + 20.0 * u * v])
    '''
)
INPUTS = ["u", "v"]
OUTPUTS = ["wave", "level"]
BOUNDS = [[0.0, 2.0], [-1.0, 1.0]]


def campaign_config(folder: Path, **sections: dict[str, Any]) -> Path:
    (folder / "twoout.py").write_text(TWO_OUTPUT_ORACLE)
    cfg: dict[str, dict[str, Any]] = {
        "campaign": {"name": "two-outputs", "store": "store.h5", "seed": 0},
        "oracle": {"name": "twoout.py:f", "bounds": BOUNDS,
                   "params": {"input_names": INPUTS, "output_names": OUTPUTS}},
        "pool": {"size": 96, "design": "sobol"},
        "test": {"size": 40},
        "model": {"select": "fixed", "hidden": [16, 16], "epochs": 30, "min_steps": 0, "batch_size": 16,
                  "device": "cpu"},
        "acquisition": {"strategy": "nngp", "samples": 16, "batch_size": 6},
        "budget": {"initial": 10, "iterations": 3},
        "dask": {"workers": 0, "retries": 0},
    }
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    return write_toml(folder / "c.toml", cfg)


def run_campaign(folder: Path, **sections: dict[str, Any]) -> Path:
    """Run the campaign to its end; returns the store path."""
    from alcore import campaign
    from alcore.config import load_config

    folder.mkdir(parents=True, exist_ok=True)
    out = campaign.run(load_config(campaign_config(folder, **sections)))
    return Path(out["store"])


def fitted_model(X: np.ndarray, y: np.ndarray, **kw: Any):
    from alcore.model import DropoutMLP

    args = dict(hidden=(8, 8), epochs=5, min_steps=0, batch_size=16, device="cpu", seed=0)
    args.update(kw)
    m = DropoutMLP(**args)
    m.fit(X, y)
    return m


def store_with_models(path: Path, metrics: list[dict | None], *, test: bool = True,
                      extra_state: dict[str, np.ndarray] | None = None):
    """A real store with one checkpoint per entry of ``metrics``; an entry None leaves that
    iteration unfinished (checkpoint saved, no metrics: a campaign killed after training)."""
    from alcore.store import CampaignStore

    rng = np.random.default_rng(1)
    X = rng.random((60, 2)) * [2.0, 2.0] + [0.0, -1.0]
    y = np.c_[np.sin(3 * X[:, 0]) + X[:, 1], 100 + 20 * X[:, 0] * X[:, 1]]
    info = {"name": "twoout", "version": "3.1", "input_names": INPUTS, "output_names": OUTPUTS,
            "bounds": BOUNDS}
    kw = dict(test_X=X[:10], test_y=y[:10]) if test else {}
    st = CampaignStore.create(path, config={"campaign": {"name": "hand-made"}},
                              oracle_info=info, pool_X=X, **kw)
    try:
        for it, m in enumerate(metrics):
            st.mark_requested([10 + it], it)
            st.record_label(10 + it, y[10 + it])
            state = fitted_model(X[10:], y[10:], seed=it).get_state()
            state.update(extra_state or {})
            st.save_checkpoint(it, state)
            if m is not None:
                st.record_iteration(it, m)
    finally:
        st.close()
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dir_state(d: Path) -> dict[str, tuple[str, int]]:
    """Name -> (hash, mtime_ns) of every file in a folder: proves nothing was written."""
    return {p.name: (sha(p), p.stat().st_mtime_ns) for p in sorted(Path(d).iterdir())
            if p.is_file()}
