"""Acceptance benchmark of issue 13: does the acquisition learn to avoid where the oracle fails?

Campaigns as a user runs them (``alcore.campaign.run``: the same steps as ``alflow run``, without
Prefect), on a cheap smooth oracle of 3 inputs on [0, 1]³ that fails

* ``region``: deterministically for x0 > 0.8 (20 % of the box), a solver that diverges there;
* ``region60``: deterministically for x0 > 0.6 (40 %: the case measured in the issue);
* ``random5``: at random for 5 % of the calls, wherever x is (``[dask] retries = 0`` so each
  random failure is kept: with retries, almost all of them would be absorbed); the k-th call
  of a campaign fails in both arms alike (one seeded stream per campaign), so the arms differ
  only by what avoid_failures does.

Each case runs ``[acquisition] avoid_failures = false`` (what main did before) and ``true`` with
the same seeds (paired: same pool, test set, initial design). Per campaign: the share of the
points acquired after the initial design whose evaluation failed, and the test RMSE of the last
model. The test set is labelled through the oracle and its failed points are dropped, so the
test RMSE is the RMSE on the successful region.

    python benchmarks/failures.py [--seeds 3] [--cases region,region60,random5] [--iterations 9]
                                  [--mode batch|async] [--sleep 0.0]

``--mode async`` runs ``[campaign] mode = "async"`` (one local worker; ``--sleep`` seconds per
evaluation, so that model versions train while points are evaluated); acquired then also counts
the spread-out picks made before the first model existed.

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ORACLE = textwrap.dedent(
    '''
    import time

    import numpy as np

    def _f(x):
        return float(np.sin(3.0 * x[0]) * np.cos(2.0 * x[1]) + 0.5 * x[2] ** 2 + 0.3 * x[0] * x[1])

    def region(x, seed=0, arm="", sleep=0.0):
        time.sleep(sleep)
        if x[0] > 0.8:
            raise RuntimeError("solver diverged")
        return _f(x)

    def region60(x, seed=0, arm="", sleep=0.0):
        time.sleep(sleep)
        if x[0] > 0.6:
            raise RuntimeError("solver diverged")
        return _f(x)

    _rngs = {}

    def random5(x, seed=0, arm="", sleep=0.0):
        time.sleep(sleep)
        # one stream per campaign, the same for both arms of a seed: the k-th call fails in both
        rng = _rngs.setdefault((seed, arm), np.random.default_rng(seed))
        if rng.random() < 0.05:
            raise RuntimeError("random crash")
        return _f(x)
    '''
)

CONFIG = textwrap.dedent(
    '''
    [campaign]
    name = "failures-{case}-{arm}-{seed}"
    store = "{store}"
    seed = {seed}
    mode = "{mode}"

    [oracle]
    name = "{oracle_file}:{case}"
    bounds = [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]
    params = {{ seed = {seed}, arm = "{arm}", sleep = {sleep} }}

    [pool]
    size = {pool}
    design = "sobol"

    [test]
    size = {test}

    [model]
    select = "fixed"
    hidden = [32, 32]
    epochs = 200
    min_steps = 600
    device = "cpu"

    [acquisition]
    batch_size = 10
    samples = 50
    avoid_failures = {avoid}

    [budget]
    initial = 20
    iterations = {iterations}

    [dask]
    workers = 0
    retries = 0
    '''
)


def run_one(folder: Path, case: str, avoid: bool, seed: int, args: argparse.Namespace) -> dict:
    """One campaign; the acquired-failure share and the last test RMSE."""
    import numpy as np

    from alcore import campaign
    from alcore.config import load_config
    from alcore.store import CampaignStore

    arm = "on" if avoid else "off"
    path = folder / f"{case}-{arm}-{seed}.toml"
    path.write_text(CONFIG.format(case=case, arm=arm, seed=seed, store=f"{case}-{arm}-{seed}.h5",
                                  oracle_file=folder / "oracle.py", pool=args.pool, test=args.test,
                                  avoid="true" if avoid else "false", iterations=args.iterations,
                                  mode=args.mode, sleep=args.sleep))
    t0 = time.perf_counter()
    campaign.run(load_config(path))
    seconds = time.perf_counter() - t0
    with CampaignStore.open(folder / f"{case}-{arm}-{seed}.h5", "r") as st:
        it = np.asarray(st.iteration_requested)
        status = np.asarray(st.status)
        # everything requested but the initial design (iteration 0's first 20 picks; in batch
        # mode that is iteration >= 1, in async mode also the picks before the first model)
        design = np.zeros(it.size, dtype=bool)
        design[np.asarray(st.iterations[0]["selected"])[:20]] = True
        acquired = (it >= 0) & ~design
        failed = int(np.count_nonzero(acquired & (status == 3)))
        n_acq = int(np.count_nonzero(acquired))
        rmse = [r["metrics"]["rmse"] for r in st.iterations if r.get("metrics")][-1]
        n_test = int(len(st.test_X))
        initial_failed = int(np.count_nonzero(design & (status == 3)))
    return {"acquired": n_acq, "acquired_failed": failed,
            "failed_share": failed / n_acq if n_acq else math.nan,
            "initial_failed": initial_failed, "test_rmse": float(rmse), "n_test": n_test,
            "seconds": round(seconds, 1)}


def summarise(runs: list[dict]) -> dict:
    share = [r["failed_share"] for r in runs]
    rmse = [r["test_rmse"] for r in runs]
    return {"failed_share_mean": round(statistics.fmean(share), 4),
            "acquired_failed_total": sum(r["acquired_failed"] for r in runs),
            "acquired_total": sum(r["acquired"] for r in runs),
            "test_rmse_mean": round(statistics.fmean(rmse), 6),
            "failed_share_per_seed": [round(s, 3) for s in share],
            "test_rmse_per_seed": [round(v, 6) for v in rmse]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cases", default="region,region60,random5")
    ap.add_argument("--iterations", type=int, default=9, help="acquisition iterations of 10 points")
    ap.add_argument("--pool", type=int, default=2000)
    ap.add_argument("--test", type=int, default=400)
    ap.add_argument("--mode", choices=("batch", "async"), default="batch")
    ap.add_argument("--sleep", type=float, default=0.0, help="seconds per evaluation")
    args = ap.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)  # the per-point failure warnings; the JSON says it all
    out: dict = {"benchmark": "failures", "command": " ".join(["python", "benchmarks/failures.py", *(argv or sys.argv[1:])]),
                 "strategy": "nngp_lcmd (default)", "initial": 20, "batch_size": 10,
                 "iterations": args.iterations, "mode": args.mode, "sleep": args.sleep, "pool": args.pool,
                 "test": args.test, "cases": {}}
    with tempfile.TemporaryDirectory(prefix="alflow-failures-") as tmp:
        folder = Path(tmp)
        (folder / "oracle.py").write_text(ORACLE)
        for case in args.cases.split(","):
            arms = {}
            for avoid in (False, True):
                runs = [run_one(folder, case, avoid, seed, args) for seed in range(args.seeds)]
                arms["avoid_failures=" + ("true" if avoid else "false")] = summarise(runs) | {"runs": runs}
            out["cases"][case] = arms
            print(json.dumps({case: {k: {kk: v[kk] for kk in ("failed_share_mean", "test_rmse_mean")}
                                     for k, v in arms.items()}}), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
