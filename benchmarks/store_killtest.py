"""Kill test of the campaign store: SIGKILL a labelling writer at random moments, many times.

A child process opens the store for writing and labels pool points as fast as it can,
printing ``ACK i`` (flushed) only *after* ``record_label`` returned — that line is the proof
that the store acknowledged the label. Every ``--compact-every`` labels it saves a checkpoint
(which folds the journal into the HDF5 file by atomic replacement) between ``CSTART``/``CEND``
markers, so kills also land inside compactions. The parent kills the child with SIGKILL after
a random delay (20 % of kills during the child's open, 30 % shortly after a fold started,
the rest at a random time while labelling), then reopens the store
and checks: every acknowledged label is present with the right value (outputs, attempts and
submitted time), the file opens (both through alflow, which refuses a corrupt journal, and with
plain h5py), no label was recorded twice. Prints one JSON summary.

    python benchmarks/store_killtest.py --kills 40            # the acceptance run
    python benchmarks/store_killtest.py --kills 10 --quick    # what the default tests run
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

K = 2


def truth(i: int) -> list[float]:
    """The deterministic 'simulator' output of pool point i (so the parent can verify)."""
    return [i * 0.5, float(np.sin(i))]


def is_failure(i: int) -> bool:
    return i % 17 == 5


def attempts_of(i: int) -> int:
    """Deterministic per-evaluation fields, so that the parent can verify them too."""
    return 1 + i % 3


# ------------------------------------------------------------------------------------ child
def child(path: str, batch: int, compact_every: int) -> None:
    from alcore.store import CampaignStore

    out = sys.stdout
    out.write("START\n")  # imports done: a kill right after this lands in open/replay
    out.flush()
    store = CampaignStore.open(path, "a")
    if store._lock is not None and store._lock.took_over:
        out.write("TAKEOVER\n")
    if store.recovered_torn_bytes:
        out.write(f"TORN {store.recovered_torn_bytes}\n")
    out.write("OPEN\n")
    out.flush()
    its = [it["iteration"] for it in store.iterations]
    iteration = (max(its) + 1) if its else 0
    n = 0
    while True:
        pending = store.pending_indices()
        if pending.size == 0:
            unl = store.unlabelled_indices()
            if unl.size == 0:
                out.write("DONE\n")
                out.flush()
                store.close()
                return
            pick = unl[:batch]
            store.mark_requested(pick, iteration, scores=np.linspace(1, 0, pick.size))
            out.write(f"REQ {iteration}\n")
            out.flush()
            iteration += 1
            continue
        for i in pending.tolist():
            t0 = time.perf_counter()
            if is_failure(i):
                ok = store.record_failure(i, "synthetic failure", 0.01, f"pid{os.getpid()}", 3,
                                          kind="error", submitted=float(i))
                out.write(f"{'FAIL' if ok else 'DUP'} {i}\n")
            else:
                ok = store.record_label(i, truth(i), time.perf_counter() - t0,
                                        f"pid{os.getpid()}", attempts=attempts_of(i),
                                        submitted=float(i), started=time.time(),
                                        finished=time.time())
                out.write(f"{'ACK' if ok else 'DUP'} {i}\n")
            out.flush()
            n += 1
            if n % compact_every == 0:
                out.write("CSTART\n")
                out.flush()
                store.record_iteration(iteration - 1, {"rmse": [0.1, 0.2], "n": n},
                                       {"label": 0.0})
                store.save_checkpoint(iteration - 1, {"w": np.full((64, 64), float(n)),
                                                      "b": np.arange(64.0)})
                out.write("CEND\n")
                out.flush()


# ----------------------------------------------------------------------------------- parent
def _new_store(path: Path, pool: int) -> None:
    from alcore.store import CampaignStore

    rng = np.random.default_rng(0)
    with CampaignStore.create(path, config={"campaign": {"name": "killtest"}},
                              oracle_info={"name": "synthetic", "version": "1",
                                           "output_names": ["a", "b"]},
                              pool_X=rng.random((pool, 4)), seeds={"pool": 0}):
        pass


def _verify(path: Path, acked: dict[int, int], failed: set[int]) -> dict:
    """Reopen read-only in this process; return counts of problems (all must be 0)."""
    import h5py

    from alcore.store import CampaignStore, StoreStatus

    problems = {"lost": 0, "wrong_value": 0, "unopenable": 0, "duplicates": 0}
    try:
        with h5py.File(path, "r") as f:  # the bare HDF5 file must always open
            f["pool/status"][()]
        store = CampaignStore.open(path, "r")
    except Exception as exc:  # noqa: BLE001 - any failure to open is what we count
        print(f"UNOPENABLE: {exc!r}", file=sys.stderr)
        problems["unopenable"] += 1
        return problems
    with store:
        status, y = store.status, store.outputs
        attempts, submitted, kinds = store.attempts, store.submitted_times, store.failure_kinds
        for i in acked:
            if status[i] != StoreStatus.LABELLED:
                problems["lost"] += 1
            elif (not np.array_equal(y[i], truth(i)) or attempts[i] != attempts_of(i)
                  or submitted[i] != float(i)):
                problems["wrong_value"] += 1
        for i in failed:
            if status[i] != StoreStatus.FAILED:
                problems["lost"] += 1
            elif kinds[i] != "error" or attempts[i] != 3 or submitted[i] != float(i):
                problems["wrong_value"] += 1
        problems["duplicates"] += store.duplicates_ignored  # duplicate label records replayed
    problems["duplicates"] += sum(c - 1 for c in acked.values() if c > 1)
    return problems


def run(kills: int, pool: int, batch: int, compact_every: int, max_delay: float,
        seed: int, workdir: Path) -> dict:
    rng = np.random.default_rng(seed)
    script = str(Path(__file__).resolve())
    stores = 0
    path = workdir / f"kill{stores}.h5"
    _new_store(path, pool)
    acked: dict[int, int] = {}
    failed: set[int] = set()
    totals = {"lost": 0, "wrong_value": 0, "unopenable": 0, "duplicates": 0,
              "writer_errors": 0}
    stats = {"kills": 0, "kills_during_compaction": 0, "kills_leaving_fold_tmp": 0, "kills_before_open": 0,
             "stale_lock_takeovers": 0, "torn_tails_discarded": 0, "acknowledged_labels": 0,
             "acknowledged_failures": 0, "compactions_completed": 0, "stores_completed": 0}
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t_start = time.perf_counter()
    while stats["kills"] < kills:
        proc = subprocess.Popen([sys.executable, script, "--child", str(path),
                                 "--batch", str(batch), "--compact-every", str(compact_every)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                text=True, bufsize=1)
        lines: list[str] = []
        opened = threading.Event()
        started = threading.Event()
        folds = [0]  # CSTART lines seen so far

        def reader() -> None:
            for line in proc.stdout:  # type: ignore[union-attr]
                lines.append(line.strip())
                if line.startswith("START"):
                    started.set()
                if line.startswith("OPEN"):
                    opened.set()
                if line.startswith("CSTART"):
                    folds[0] += 1
        th = threading.Thread(target=reader, daemon=True)
        th.start()
        moment = rng.random()
        if moment < 0.2:  # kill during open: lock take-over, replay, truncation
            started.wait(timeout=60)
            time.sleep(rng.uniform(0.0, 0.05))
        elif moment < 0.5:  # aim at a fold: wait for the next one to start
            opened.wait(timeout=60)
            n0 = folds[0]
            t_end = time.perf_counter() + 30
            while folds[0] == n0 and proc.poll() is None and time.perf_counter() < t_end:
                time.sleep(0.001)
            time.sleep(rng.uniform(0.0, 0.08))
        else:
            opened.wait(timeout=60)
            time.sleep(rng.uniform(0.0, max_delay))
        done = proc.poll() is not None
        if not done:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        th.join()
        err = proc.stderr.read() if proc.stderr else ""
        if done and proc.returncode != 0:
            raise RuntimeError(f"writer exited with {proc.returncode}: {err[-2000:]}")
        if "Traceback" in err:  # the writer crashed on its own (e.g. could not open)
            print(err[-3000:], file=sys.stderr)
            totals["writer_errors"] += 1
        if not done:
            stats["kills"] += 1
        if "OPEN" not in lines:
            stats["kills_before_open"] += not done
        in_compaction = False
        for ln in lines:
            tag, _, arg = ln.partition(" ")
            if tag == "ACK":
                acked[int(arg)] = acked.get(int(arg), 0) + 1
                stats["acknowledged_labels"] += 1
            elif tag == "FAIL":
                failed.add(int(arg))
                stats["acknowledged_failures"] += 1
            elif tag == "DUP":
                totals["duplicates"] += 1
            elif tag == "CSTART":
                in_compaction = True
            elif tag == "CEND":
                in_compaction = False
                stats["compactions_completed"] += 1
            elif tag == "TAKEOVER":
                stats["stale_lock_takeovers"] += 1
            elif tag == "TORN":
                stats["torn_tails_discarded"] += 1
        stats["kills_during_compaction"] += in_compaction and not done
        # Hard evidence of a kill inside a fold: its half-written temp file is still there.
        stats["kills_leaving_fold_tmp"] += path.with_name(path.name + ".tmp").exists()
        for k, v in _verify(path, acked, failed).items():
            totals[k] += v
        if "DONE" in lines:  # pool exhausted: start a new campaign file
            stats["stores_completed"] += 1
            stores += 1
            path = workdir / f"kill{stores}.h5"
            _new_store(path, pool)
            acked, failed = {}, set()
    # Finally a clean writer open/close (fold) must keep everything too.
    from alcore.store import CampaignStore
    CampaignStore.open(path, "a").close()
    for k, v in _verify(path, acked, failed).items():
        totals[k] += v
    return {"benchmark": "store_killtest", **stats, **{f"{k}_total": v for k, v in totals.items()},
            "pool": pool, "compact_every": compact_every, "wall_s": round(time.perf_counter() - t_start, 1),
            "ok": all(v == 0 for v in totals.values())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--kills", type=int, default=40)
    ap.add_argument("--pool", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--compact-every", type=int, default=200)
    ap.add_argument("--max-delay", type=float, default=1.5,
                    help="longest random wait (s) after the writer opened before the kill")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--workdir", help="where the store files go (default: a temp dir)")
    ap.add_argument("--quick", action="store_true", help="small pool, short delays")
    a = ap.parse_args(argv)
    if a.child:
        child(a.child, a.batch, a.compact_every)
        return 0
    if a.quick:
        a.pool, a.max_delay, a.compact_every = 2000, 0.6, 50
    with tempfile.TemporaryDirectory() as tmp:
        wd = Path(a.workdir) if a.workdir else Path(tmp)
        wd.mkdir(parents=True, exist_ok=True)
        res = run(a.kills, a.pool, a.batch, a.compact_every, a.max_delay, a.seed, wd)
    print(json.dumps(res, indent=2))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
