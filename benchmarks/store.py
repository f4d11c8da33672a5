"""Cost of durability in the campaign store: acknowledged labels/s, fold (compaction) time,
open/replay time, for a 20,000-point pool and 5,000 labels (``--quick``: 2,000 / 500).

Each label is one fsynced journal record (the acknowledgement), with the per-evaluation fields a
campaign stores (wall time, worker, attempts, submitted/started/finished times). A campaign is
simulated as iterations of ``--batch`` points: mark_requested, one record_label per point,
record_iteration, save_checkpoint (which folds the journal into the HDF5 file by atomic
replacement). To compare two versions, run each one's script side by side in one session (the
disk's flush latency, printed before and after, dominates and drifts on a shared machine).

    .venv/bin/python benchmarks/store.py            # prints JSON
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

import numpy as np

from alcore.store import CampaignStore


def _model_state(rng: np.random.Generator, d: int, k: int) -> dict[str, np.ndarray]:
    """About the size of the default DropoutMLP(hidden=(100, 100)) checkpoint."""
    return {"net.0.weight": rng.random((100, d)), "net.0.bias": rng.random(100),
            "net.3.weight": rng.random((100, 100)), "net.3.bias": rng.random(100),
            "net.6.weight": rng.random((k, 100)), "net.6.bias": rng.random(k),
            "x_mean": rng.random(d), "x_std": rng.random(d), "y_mean": rng.random(k),
            "y_std": rng.random(k)}


def disk_fdatasync_ms(workdir: Path, n: int = 200) -> float:
    """Median latency of a bare 150-byte append + fdatasync on the same file system: the
    floor of any per-label durable acknowledgement (varies a lot on a shared machine)."""
    probe = workdir / "fsync.probe"
    fd = os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
    lat = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            os.write(fd, b"x" * 150)
            os.fdatasync(fd)
            lat.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        probe.unlink()
    return statistics.median(lat) * 1e3


def run(pool: int, labels: int, batch: int, d: int, k: int, workdir: Path) -> dict:
    rng = np.random.default_rng(0)
    path = workdir / "bench.h5"
    t0 = time.perf_counter()
    store = CampaignStore.create(path, config={"campaign": {"name": "bench"}},
                                 oracle_info={"name": "bench", "version": "1"},
                                 pool_X=rng.random((pool, d)), test_X=rng.random((1000, d)),
                                 test_y=rng.random((1000, k)), seeds={"pool": 0})
    create_s = time.perf_counter() - t0
    order = rng.permutation(pool)[:labels]
    fsync_before = disk_fdatasync_ms(workdir)
    ack: list[float] = []
    folds: list[float] = []
    t_total = time.perf_counter()
    for it, start in enumerate(range(0, labels, batch)):
        pick = order[start:start + batch]
        store.mark_requested(pick, it, rng.random(pick.size))
        for i in pick:
            y = rng.random(k)
            t = time.perf_counter()
            now = time.time()
            store.record_label(int(i), y, wall_time=1.0, worker="tcp://127.0.0.1:40001",
                               attempts=1, submitted=now - 1.5, started=now - 1.0,
                               finished=now)
            ack.append(time.perf_counter() - t)
        store.record_iteration(it, {"rmse": rng.random(k).tolist(), "r2": 0.9},
                               {"train_s": 1.0, "select_s": 0.1},
                               info={"model": {"hidden": [100, 100]}, "cv_rmse": [0.1, 0.2]})
        t = time.perf_counter()
        store.save_checkpoint(it, _model_state(rng, d, k))
        folds.append(time.perf_counter() - t)
    total_s = time.perf_counter() - t_total
    fsync_after = disk_fdatasync_ms(workdir)
    store.close()
    size_mb = path.stat().st_size / 1e6

    t = time.perf_counter()
    CampaignStore.open(path, "a").close()
    open_writer_s = time.perf_counter() - t

    # Replay cost: `labels` acknowledged labels that exist only in the journal.
    path2 = workdir / "replay.h5"
    s2 = CampaignStore.create(path2, config={}, oracle_info={"name": "bench"},
                              pool_X=rng.random((pool, d)), seeds={}, n_outputs=k)
    s2.mark_requested(order, 0)
    for i in order:
        s2.record_label(int(i), rng.random(k))
    n_journal = s2.journal_records
    t = time.perf_counter()
    r = CampaignStore.open(path2, "r")
    open_reader_replay_s = time.perf_counter() - t
    assert r.n_labelled == labels
    r.close()
    t = time.perf_counter()
    s2.compact()
    fold_all_s = time.perf_counter() - t
    s2.close()

    # Group commit: record_labels with `group` results per fsync.
    group = 10
    path3 = workdir / "group.h5"
    s3 = CampaignStore.create(path3, config={}, oracle_info={"name": "bench"},
                              pool_X=rng.random((pool, d)), seeds={}, n_outputs=k)
    s3.mark_requested(order, 0)
    t = time.perf_counter()
    for start in range(0, labels, group):
        chunk = order[start:start + group]
        s3.record_labels(chunk, rng.random((chunk.size, k)), [1.0] * chunk.size,
                         ["w"] * chunk.size)
    group_s = time.perf_counter() - t
    s3.close()

    a = np.array(ack)
    return {
        "benchmark": "store",
        "pool": pool, "labels": labels, "batch": batch, "d": d, "k": k,
        "labels_per_s": round(labels / a.sum(), 1),
        "labels_per_s_with_folds": round(labels / total_s, 1),
        "labels_per_s_record_labels_group10": round(labels / group_s, 1),
        "ack_latency_ms": {"p50": round(float(np.percentile(a, 50)) * 1e3, 3),
                           "p99": round(float(np.percentile(a, 99)) * 1e3, 3),
                           "max": round(float(a.max()) * 1e3, 3)},
        "disk_fdatasync_ms_before_after": [round(fsync_before, 3), round(fsync_after, 3)],
        "store_overhead_ms_per_label": round(float(np.median(a)) * 1e3
                                             - (fsync_before + fsync_after) / 2, 3),
        "fold_s": {"n": len(folds), "median": round(statistics.median(folds), 4),
                   "max": round(max(folds), 4), "last": round(folds[-1], 4)},
        "fold_journal_only_labels_s": round(fold_all_s, 4),
        "create_s": round(create_s, 4),
        "open_writer_s": round(open_writer_s, 4),
        "open_reader_replay_s": round(open_reader_replay_s, 4),
        "replayed_records": n_journal,
        "file_mb": round(size_mb, 2),
        "python": platform.python_version(), "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pool", type=int, default=20_000)
    ap.add_argument("--labels", type=int, default=5_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--dim", type=int, default=8)
    ap.add_argument("--outputs", type=int, default=2)
    ap.add_argument("--dir", help="directory for the store files (default: a temp dir); "
                    "durability costs depend on its file system")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    if a.quick:
        a.pool, a.labels = 2_000, 500
    with tempfile.TemporaryDirectory(dir=a.dir) as tmp:
        res = run(a.pool, a.labels, a.batch, a.dim, a.outputs, Path(tmp))
    res["target_labels_per_s"] = 200
    res["meets_target"] = bool(res["labels_per_s"] >= 200)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
