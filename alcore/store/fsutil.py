"""Small POSIX helpers for crash-safe file replacement."""
from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a rename/creation inside ``directory`` durable (the rename lives in the directory).

    Some platforms cannot open directories; there the rename is as durable as the OS makes it.
    """
    try:
        fd = os.open(str(directory), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """fsync a closed file by path (h5py gives no handle to its descriptor)."""
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def datasync(fd: int) -> None:
    """fdatasync where available (enough for appends: it flushes the size too), else fsync."""
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # pragma: no cover - macOS/Windows
        os.fsync(fd)


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (a single write may be short)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
