"""Batch vs asynchronous campaign on the same local Dask cluster: utilisation, wall time, RMSE.

8 worker processes; the oracle (``benchmarks/async_oracle.py``) sleeps a log-normal time
(median 1 s, sigma 1, deterministic in x) and returns a smooth function of 3 inputs. Each seed
runs the same campaign (same pool, test set, initial design, model, strategy) once per mode, in
alternating order, with 200 labels: batch mode in batches of 20 after an initial design of 20,
async mode retraining every 20 labels. The model is pinned (``[model] select = "fixed"``, a
32x32 network, 500 steps) because CPU is scarce on the development machine.

Figures per run, all from the store's export (``alflow export`` columns ``submitted``,
``started``, ``finished``, ``worker``; see ``alcore.campaign.utilisation``):

* ``utilisation``: busy worker-seconds / (8 x (last finished - first submitted));
* ``utilisation_while_submitting``: the same up to the last start (without the tail in which
  the last evaluations run and the other workers have nothing left to do);
* ``ideal_utilisation``: what a scheduler with zero overhead would reach with the same
  evaluation times in the same order (the tail of a 200-label campaign alone costs ~10% with
  sigma = 1);
* ``wall_to_last_label_s``: from the call of ``campaign.run`` to the 200th label;
* ``rmse``: test RMSE (500 points) of the model trained on all 200 labels.

    python benchmarks/async.py --seeds 3            # the acceptance run (about 8 minutes)
    python benchmarks/async.py --seeds 1 --labels 60 --median 0.3   # a quick look
"""

from __future__ import annotations

import argparse
import heapq
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

WORKERS = 8


def write_config(folder: Path, mode: str, seed: int, address: str, labels: int, batch: int,
                 median: float, test_file: Path, strategy: str = "nngp_lcmd") -> Path:
    iterations = (labels - batch) // batch
    text = f"""
[campaign]
name = "async-bench-{mode}-{seed}"
store = "{folder / 'store.h5'}"
seed = {seed}
mode = "{mode}"

[oracle]
name = "{HERE / 'async_oracle.py'}:f"
bounds = [[-1.0, 1.0], [-1.0, 1.0], [-1.0, 1.0]]
params = {{ median = {median}, sigma = 1.0 }}

[pool]
size = 2000
design = "sobol"

[test]
file = "{test_file}"

[model]
select = "fixed"
hidden = [32, 32]
min_steps = 500
device = "cpu"

[acquisition]
strategy = "{strategy}"
batch_size = {batch}

[budget]
initial = {batch}
iterations = {iterations}

[dask]
address = "{address}"
retries = 0
"""
    path = folder / "c.toml"
    path.write_text(text)
    return path


def ideal_utilisation(submitted: np.ndarray, durations: np.ndarray, workers: int) -> float:
    """Utilisation of a zero-overhead scheduler that starts each evaluation, in submission
    order, on the first free worker."""
    order = np.argsort(submitted, kind="stable")
    free = [0.0] * workers
    end = 0.0
    for d in durations[order]:
        t = heapq.heappop(free) + float(d)
        end = max(end, t)
        heapq.heappush(free, t)
    return float(durations.sum() / (workers * end))


def one_run(root: Path, mode: str, seed: int, address: str, args: argparse.Namespace,
            test_file: Path) -> dict:
    from alcore import campaign
    from alcore.campaign.utilisation import utilisation
    from alcore.config import load_config
    from alcore.store import CampaignStore, export_labelled

    folder = root / f"{mode}-{seed}"
    folder.mkdir()
    cfg = load_config(write_config(folder, mode, seed, address, args.labels, args.batch, args.median, test_file,
                                   args.strategy))
    t0 = time.time()
    out = campaign.run(cfg)
    wall = time.time() - t0
    export_labelled(cfg.store_path, folder / "export.npz", "npz")
    cols = dict(np.load(folder / "export.npz"))
    u = utilisation(cols, n_workers=WORKERS)
    with CampaignStore.open(cfg.store_path, "r") as st:
        last = [r for r in st.iterations if r["metrics"]][-1]
        versions = len(st.finished_iterations())
    durations = cols["finished"] - cols["started"]
    return {
        "mode": mode, "seed": seed, "labelled": out["labelled"], "failed": out["failed"],
        "stop_reason": out["stop_reason"], "model_versions": versions,
        "rmse": last["metrics"]["rmse"], "rmse_labels": last["metrics"]["labelled"],
        "utilisation": u["utilisation"], "utilisation_while_submitting": u["utilisation_while_submitting"],
        "ideal_utilisation": ideal_utilisation(cols["submitted"], durations, WORKERS),
        "busy_worker_s": u["busy_s"], "labels_per_hour": u["labels_per_hour"],
        "wall_to_last_label_s": float(cols["finished"].max() - t0), "wall_total_s": wall,
        "start_to_first_submission_s": float(np.nanmin(cols["submitted"]) - t0),
        "loop": out.get("loop"),
    }


def summarise(runs: list[dict]) -> dict:
    out: dict = {}
    for mode in ("batch", "async"):
        rs = [r for r in runs if r["mode"] == mode]
        if not rs:
            continue
        out[mode] = {k: {"mean": float(np.mean([r[k] for r in rs])), "sd": float(np.std([r[k] for r in rs], ddof=1))
                         if len(rs) > 1 else None}
                     for k in ("utilisation", "utilisation_while_submitting", "ideal_utilisation",
                               "wall_to_last_label_s", "wall_total_s", "start_to_first_submission_s", "rmse",
                               "labels_per_hour")}
    seeds = sorted({r["seed"] for r in runs})
    out["seeds"] = len(seeds)
    if not all(m in out for m in ("batch", "async")):
        return out
    diff = [next(r["rmse"] for r in runs if r["mode"] == "async" and r["seed"] == s)
            - next(r["rmse"] for r in runs if r["mode"] == "batch" and r["seed"] == s) for s in seeds]
    out["paired_rmse_async_minus_batch"] = {"mean": float(np.mean(diff)), "per_seed": diff,
                                            "sd": float(np.std(diff, ddof=1)) if len(diff) > 1 else None}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--labels", type=int, default=200)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--median", type=float, default=1.0, help="median oracle time (s)")
    ap.add_argument("--strategy", default="nngp_lcmd")
    ap.add_argument("--mode", choices=("batch", "async"), default=None, help="run only this mode")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.ERROR)

    from oracles import local_cluster
    sys.path.insert(0, str(HERE))
    from async_oracle import smooth

    root = Path(tempfile.mkdtemp(prefix="alflow-async-bench-"))
    rng = np.random.default_rng(12345)
    X_test = rng.uniform(-1.0, 1.0, (500, 3))
    test_file = root / "test.npz"
    np.savez(test_file, X=X_test, y=np.array([[smooth(x)] for x in X_test]))
    cluster = local_cluster.start(WORKERS, dashboard=False, quiet=True)
    runs: list[dict] = []
    try:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            modes = ("batch", "async") if seed % 2 == 0 else ("async", "batch")
            for mode in modes:
                if args.mode and mode != args.mode:
                    continue
                r = one_run(root, mode, seed, cluster.scheduler_address, args, test_file)
                print(json.dumps(r), file=sys.stderr, flush=True)
                runs.append(r)
    finally:
        cluster.close()
    result = {"benchmark": "async", "folder": str(root), "workers": WORKERS, "labels": args.labels, "batch_size": args.batch,
              "oracle": {"median_s": args.median, "sigma": 1.0}, "model": "fixed 32x32, 500 steps",
              "strategy": args.strategy, "summary": summarise(runs), "runs": runs}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
