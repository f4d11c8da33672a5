"""Prefect flow overhead per campaign iteration, against the same steps called directly.

Runs the same small heat2d campaign twice from scratch: once with ``alcore.campaign.run`` (the
steps as plain function calls) and once through ``flows.campaign.campaign_flow`` (each step a
Prefect task, artifacts refreshed after every iteration). A progress hook timestamps the end of
every iteration; the wall time of iterations 1..K is compared with the compute time the steps
report themselves, so training-time noise cancels out of the overhead:

    overhead per iteration = wall time of the iteration - sum of its steps' own seconds

and the flow's overhead is reported beside the direct loop's (the difference is what Prefect
costs). Prefect's API: ``PREFECT_API_URL`` if set, else the ephemeral server in a fresh
temporary PREFECT_HOME (its start-up is reported separately, not counted per iteration).

    python benchmarks/overhead.py [--quick] [--iterations K] [--workers N]

Prints JSON. Timings on a shared 2-core machine are noisy: see ``load_average``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """
[campaign]
name = "overhead-{which}"
store = "{store}"
seed = 0

[oracle]
name = "heat2d"
params = {{ n = 16 }}

[pool]
size = 1000

[test]
size = 100

[model]
select = "fixed"   # measures the flow, not the model search
hidden = [32, 32]
epochs = 60
min_steps = 0
batch_size = 32
device = "cpu"

[acquisition]
strategy = "nngp"
samples = 32
batch_size = 10

[budget]
initial = 20
iterations = {iterations}

[dask]
workers = {workers}
"""


def _recorder():
    from alcore.campaign import Hooks

    class Recorder(Hooks):
        def __init__(self) -> None:
            self.done: list[tuple[float, dict]] = []
            self.t0 = time.perf_counter()

        def iteration_done(self, record: dict) -> None:
            self.done.append((time.perf_counter(), record))

    return Recorder()


def _summarise(rec, t_start: float, t_end: float) -> dict:
    stamps = [t for t, _ in rec.done]
    records = [r for _, r in rec.done]
    walls, computes = [], []
    for i in range(1, len(stamps)):
        t = records[i]["timings"]
        compute = sum(t.get(k, 0.0) for k in ("select", "label", "train", "evaluate", "checkpoint"))
        walls.append(stamps[i] - stamps[i - 1])
        computes.append(compute)
    over = [w - c for w, c in zip(walls, computes)]
    return {
        "iterations_timed": len(walls),
        "wall_per_iteration_s": [round(w, 3) for w in walls],
        "steps_compute_per_iteration_s": [round(c, 3) for c in computes],
        "overhead_per_iteration_s": [round(o, 3) for o in over],
        "wall_mean_s": round(statistics.mean(walls), 3) if walls else None,
        "overhead_mean_s": round(statistics.mean(over), 3) if over else None,
        "overhead_median_s": round(statistics.median(over), 3) if over else None,
        "startup_s": round(stamps[0] - t_start, 3) if stamps else None,  # to the end of iteration 0
        "total_s": round(t_end - t_start, 3),
        "final_rmse": records[-1]["metrics"].get("rmse") if records else None,
        "labels": records[-1]["labelled"] if records else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 timed iterations instead of 6")
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--workers", type=int, default=0,
                    help="Dask workers for the oracle (0: in-process, the default, keeps Dask noise out)")
    args = ap.parse_args(argv)
    k = args.iterations or (3 if args.quick else 6)

    api = os.environ.get("PREFECT_API_URL")
    if not api:
        os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="alflow-overhead-prefect-")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL", "WARNING")

    from alcore import campaign
    from alcore.config import load_config

    work = Path(tempfile.mkdtemp(prefix="alflow-overhead-"))
    paths = {}
    for which in ("direct", "flow"):
        p = work / f"{which}.toml"
        p.write_text(CONFIG.format(which=which, store=str(work / f"{which}.h5"), iterations=k,
                                   workers=args.workers))
        paths[which] = p

    # Direct: the plain steps.
    rec = _recorder()
    campaign.set_hooks(rec)
    t0 = time.perf_counter()
    campaign.run(load_config(paths["direct"]))
    direct = _summarise(rec, t0, time.perf_counter())

    # Through Prefect: the real campaign flow (tasks, artifacts, cancel watcher).
    from flows.campaign import campaign_flow

    rec = _recorder()
    campaign.set_hooks(rec)
    t0 = time.perf_counter()
    state = campaign_flow(str(paths["flow"]), return_state=True)
    flow = _summarise(rec, t0, time.perf_counter())
    flow["state"] = state.name
    campaign.set_hooks(None)

    extra = None
    if flow["overhead_mean_s"] is not None and direct["overhead_mean_s"] is not None:
        extra = round(flow["overhead_mean_s"] - direct["overhead_mean_s"], 3)
    out = {
        "benchmark": "flow overhead per campaign iteration",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "timed_iterations": k,
        "oracle_workers": args.workers,
        "prefect_api": api or "ephemeral (temporary PREFECT_HOME)",
        "direct": direct,
        "flow": flow,
        "flow_overhead_per_iteration_s": extra,
        "flow_wall_minus_direct_wall_per_iteration_s": (
            round(flow["wall_mean_s"] - direct["wall_mean_s"], 3)
            if flow["wall_mean_s"] is not None and direct["wall_mean_s"] is not None else None),
        "target_s": 2.0,
        "meets_target": extra is not None and extra < 2.0,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
