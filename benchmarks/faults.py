"""Fault benchmark: real campaigns (``alflow run``) with oracles that misbehave, checked end to end.

Three campaigns on a local cluster, each driven only through the CLI (``alflow run``, ``alflow
status --json``, ``alflow export``), then checked against the store:

* ``killer``: a plain function that kills its worker for 10% of the box (x0 > 0.9: half of it
  ``os._exit(13)``, half a segfault);
* ``leaky``: a ``command`` simulator (examples/simulators/leaky.py) that prints a valid result
  and leaves a child holding stdout, which calls ``setsid`` and sleeps;
* ``raiser``: a plain function that raises for 10% of the box (x0 > 0.9).

Checked: the run exits 0; every point acquired in the bad region is a recorded failure with its
reason (``worker died ... signal 11 (SIGSEGV)`` / ``exited with status 13``, the exception text),
and no point outside it failed; no process of the run survives it (every process started by
the run carries a marker in its environment; none may remain, zombies aside); ``status --json``
agrees with the store, and so does ``alflow export`` (with ``--include-failed`` where the CLI
has it, else the labelled rows only).

Prints one JSON object. Usage: ``python benchmarks/faults.py [--workers 2] [--keep DIR]
[--only killer] [--code DIR]``; ``--code`` runs the campaigns with another checkout of alflow
(e.g. a worktree of an older commit) for a before/after comparison.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LEAKY = ROOT / "examples" / "simulators" / "leaky.py"
MARK = "ALFLOW_FAULTS_RUN"  # in the environment of the run, so of every process it starts

ORACLES_PY = '''
import ctypes
import os

import numpy as np


def killer(x):
    """Smooth, but kills its worker for x0 > 0.9: a segfault above 0.95, os._exit(13) below."""
    if x[0] > 0.95:
        ctypes.string_at(0)
    if x[0] > 0.9:
        os._exit(13)
    return float(np.sin(3 * x[0]) + x[1] ** 2)


def raiser(x):
    """Smooth, but the solver "diverges" for x0 > 0.9."""
    if x[0] > 0.9:
        raise ValueError(f"solver diverged at x0={x[0]:.3f}")
    return float(np.sin(3 * x[0]) + x[1] ** 2)
'''

CONFIG = '''
[campaign]
name = "faults-{name}"
store = "{name}.h5"
seed = 3

[oracle]
name = {oracle_name}
bounds = [[0.0, 1.0], [0.0, 1.0]]
{params}

[pool]
size = {pool}
design = "sobol"

[test]
size = 40

[model]
select = "fixed"   # measures the flow, not the model search
hidden = [32, 32]
epochs = 60
batch_size = 16

[acquisition]
samples = 32
batch_size = {batch}

[budget]
initial = {initial}
iterations = {iterations}

[dask]
workers = {workers}
retries = 2
timeout = 60
'''


CODE: Path | None = None  # --code: another checkout of alflow to run the campaigns with


def alflow() -> list[str]:
    exe = Path(sys.executable).with_name("alflow")
    return [str(exe)] if exe.exists() and CODE is None else [sys.executable, "-m", "flows.cli"]


def base_env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if CODE is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(CODE), env.get("PYTHONPATH", "")])
    return env


def marked_processes(mark: str) -> list[dict[str, Any]]:
    """Live processes (zombies aside) whose environment holds ``MARK=mark``."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = Path(f"/proc/{entry.name}/environ").read_bytes()
            if needle not in env.split(b"\0"):
                continue
            state = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[0]
            cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state != "Z":
            found.append({"pid": int(entry.name), "state": state, "cmd": cmd[:160]})
    return found


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def store_view(path: Path) -> dict[str, Any]:
    """What the store holds, read through its public read-only API."""
    from alcore.store import CampaignStore

    with CampaignStore.open(path, mode="r") as st:
        X = np.asarray(st.pool_X)
        failed = [int(i) for i in st.failed_indices()]
        labelled = [int(i) for i in st.labelled_indices()]
        reasons = np.asarray(st.failure_reasons)
        attempts = np.asarray(st.attempts)
        kinds = getattr(st, "failure_kinds", None)
        return {
            "X": X, "failed": failed, "labelled": labelled,
            "requested": [int(i) for i in st.requested_indices()],
            "reasons": {i: str(reasons[i]) for i in failed},
            "attempts": {i: int(attempts[i]) for i in failed},
            "kinds": {i: str(np.asarray(kinds)[i]) for i in failed} if kinds is not None else None,
        }


def export_rows(store: Path, out: Path, env: dict[str, str]) -> dict[str, Any]:
    """``alflow export`` (with --include-failed when the CLI has it): index -> row status."""
    helptext = subprocess.run(alflow() + ["export", "--help"], capture_output=True, text=True, env=env).stdout
    include = "--include-failed" in helptext
    cmd = alflow() + ["export", str(store), "-o", str(out)] + (["--include-failed"] if include else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0:
        return {"include_failed": include, "error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    status = {int(r["index"]): ("failed" if "fail" in str(r.get("status", "")).lower() else "labelled")
              for r in rows}
    return {"include_failed": include, "status": status}


def status_json(store: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(alflow() + ["status", str(store), "--json"], capture_output=True, text=True,
                          env=env, timeout=300)
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
    return json.loads(proc.stdout)


def by_reason(reasons: Any) -> dict[str, int]:
    """Failure counts by reason, with what differs per point (worker, x) cut off."""
    out: dict[str, int] = {}
    for r in reasons:
        key = r.splitlines()[0].split(" (worker ")[0].split(" at x0=")[0][:160]
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def count(st: dict[str, Any], *names: str) -> int | None:
    for n in names:
        if isinstance(st.get(n), int):
            return st[n]
    return None


def run_campaign(name: str, oracle_name: str, params: str, tmp: Path, args: argparse.Namespace,
                 expect_region: bool, reason_must: list[str]) -> dict[str, Any]:
    cfg = tmp / f"{name}.toml"
    cfg.write_text(CONFIG.format(name=name, oracle_name=json.dumps(oracle_name), params=params,
                                 pool=args.pool, batch=args.batch, initial=args.initial,
                                 iterations=args.iterations, workers=args.workers))
    mark = uuid.uuid4().hex
    env = {**base_env(), MARK: mark}
    t = time.perf_counter()
    try:
        proc = subprocess.run(alflow() + ["run", str(cfg), "--no-progress"], capture_output=True, text=True,
                              env=env, cwd=tmp, timeout=args.run_timeout)
        code, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:  # the child is killed; its own children may remain
        code, stderr = f"timed out after {args.run_timeout:.0f} s", str(exc.stderr or "")
    wall = time.perf_counter() - t
    time.sleep(1.0)  # let the kernel finish tearing down the run's processes
    left = marked_processes(mark)
    out: dict[str, Any] = {"exit_code": code, "wall_s": round(wall, 1),
                           "orphans_after_run": len(left), "orphans": left[:5]}
    if code != 0:
        out["stderr_tail"] = [line[:200] for line in stderr.strip().splitlines()[-5:]]
    for p in left:  # do not leave them running on a shared machine
        try:
            os.kill(p["pid"], 9)
        except OSError:
            pass
    store = tmp / f"{name}.h5"
    if not store.exists():
        out["error"] = "no store was written"
        return out
    view = store_view(store)
    in_region = view["X"][:, 0] > 0.9
    acquired = set(view["failed"]) | set(view["labelled"])
    failed, labelled = set(view["failed"]), set(view["labelled"])
    bad_acquired = {i for i in acquired if in_region[i]}
    out.update({
        "labelled": len(labelled), "failed": len(failed), "still_requested": len(view["requested"]),
        "acquired_in_region": len(bad_acquired),
        "region_points_recorded_as_failure": len(bad_acquired & failed),
        "region_points_labelled": len(bad_acquired & labelled),
        "failures_outside_region": len(failed - bad_acquired) if expect_region else len(failed),
        "failures_without_reason": sum(1 for i in failed if not view["reasons"][i].strip()),
        "failures_with_expected_reason": sum(1 for i in failed if all(s in view["reasons"][i] for s in reason_must)),
        "attempts_of_failures": sorted(set(view["attempts"].values())),
        "failure_kinds_in_store": sorted(set(view["kinds"].values())) if view["kinds"] is not None else "n/a",
        "failures_by_reason": by_reason(view["reasons"].values()),
    })
    st = status_json(store, env)
    n_lab, n_fail = count(st, "labelled", "labeled"), count(st, "failed")
    out["status_json_agrees_with_store"] = (n_lab == len(labelled) and n_fail == len(failed)
                                            if "error" not in st else st["error"])
    exp = export_rows(store, tmp / f"{name}.csv", env)
    out["export_include_failed"] = exp["include_failed"]
    if "error" in exp:
        out["export_agrees_with_store"] = exp["error"]
    else:
        rows = exp["status"]
        want = {i: "labelled" for i in labelled} | ({i: "failed" for i in failed} if exp["include_failed"] else {})
        out["export_agrees_with_store"] = rows == want
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pool", type=int, default=300)
    ap.add_argument("--initial", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--run-timeout", type=float, default=1500.0)
    ap.add_argument("--keep", help="keep the campaign files in this directory")
    ap.add_argument("--only", choices=("killer", "leaky", "raiser"), action="append")
    ap.add_argument("--code", help="run the campaigns with the alflow checkout in this directory")
    args = ap.parse_args()
    global CODE
    CODE = Path(args.code).resolve() if args.code else None
    tmp = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="alflow-faults-"))
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "fault_oracles.py").write_text(ORACLES_PY)
    pidfile = tmp / "leaky-children.pids"
    res: dict[str, Any] = {"host": platform.node(), "cpus": os.cpu_count(), "workers": args.workers,
                           "code": str(CODE or ROOT),
                           "load_avg_1min_before": os.getloadavg()[0], "dir": str(tmp)}
    plan = {
        "killer": ("fault_oracles.py:killer", "", True, ["worker died"]),
        "raiser": ("fault_oracles.py:raiser", "", True, ["ValueError: solver diverged"]),
        "leaky": ("command", "params = { argv = [%s, %s, \"--setsid\", \"--pidfile\", %s], timeout = 30 }"
                  % (json.dumps(sys.executable), json.dumps(str(LEAKY)), json.dumps(str(pidfile))), False, []),
    }
    for name, (oracle_name, params, region, must) in plan.items():
        if args.only and name not in args.only:
            continue
        res[name] = run_campaign(name, oracle_name, params, tmp, args, region, must)
    if "killer" in res and isinstance(res["killer"].get("failures_by_reason"), dict):
        reasons = " ".join(res["killer"]["failures_by_reason"])
        res["killer"]["reasons_name_signal_and_status"] = {"SIGSEGV": "signal 11 (SIGSEGV)" in reasons,
                                                           "status 13": "exited with status 13" in reasons}
    if "leaky" in res:
        pids = [int(p) for p in pidfile.read_text().split()] if pidfile.exists() else []
        res["leaky"]["children_started"] = len(pids)
        res["leaky"]["children_alive_after_run"] = sum(pid_alive(p) for p in pids)
    res["load_avg_1min_after"] = os.getloadavg()[0]
    print(json.dumps(res, indent=2, default=str))
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
