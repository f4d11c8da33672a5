"""How many CPU threads torch uses while alflow trains, and why not torch's default.

Measured on the shared 2-core development machine (``benchmarks/training.py``, "threads", with
other engineers' processes running): two torch threads made a training step 11-16x *slower*
than one (1.8 vs 25.6 ms at 100 rows, 8.9 vs 142 ms at 5,000 rows), because OpenMP threads
spin-wait for each other on every small op when the cores are busy.  So training runs on ONE
thread unless the user has said otherwise.

The user's choice always wins: when ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is set, or
``torch.set_num_threads`` was called with a value other than torch's start-up value, alflow
leaves the thread count alone.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

__all__ = ["DEFAULT_TRAIN_THREADS", "user_chose_threads", "training_threads"]

#: threads used for training when the user expressed no preference (see the module docstring)
DEFAULT_TRAIN_THREADS = 1
_STARTUP_THREADS = torch.get_num_threads()


def user_chose_threads() -> bool:
    """True when the environment or a call to ``torch.set_num_threads`` fixed the thread count."""
    if any(os.environ.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")):
        return True
    return torch.get_num_threads() != _STARTUP_THREADS


@contextlib.contextmanager
def training_threads(threads: int | None = None) -> Iterator[int]:
    """Run the block with ``threads`` torch threads (None: the user's choice, else
    `DEFAULT_TRAIN_THREADS`), restoring the previous count afterwards.  Yields the count used."""
    before = torch.get_num_threads()
    if threads is None:
        threads = before if user_chose_threads() else DEFAULT_TRAIN_THREADS
    threads = max(1, int(threads))
    if threads != before:
        torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
