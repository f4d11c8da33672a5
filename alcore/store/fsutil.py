"""Small POSIX helpers for crash-safe files: fsync, full writes, and :func:`atomic_write`."""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Callable

Writer = Callable[[Path], None]


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


def _write_bytes(data: bytes) -> Writer:
    def write(tmp: Path) -> None:
        fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
    return write


def atomic_write(path: Path, content: bytes | Writer, *, tmp: Path | None = None,
                 overwrite: bool = True) -> None:
    """Write ``path`` so that it is, at every moment, either its old self or complete and new.

    ``content`` is the bytes, or a function that writes the file at the temp path it is given
    (h5py needs a path). The temp file (``tmp``, default ``<path>.<pid>.tmp``) is fsynced,
    renamed over ``path`` and the directory fsynced. If anything fails before the rename, the
    temp file is removed and the error re-raised: a full disk leaves no half file behind (a
    kill -9 can, and the store's next writer deletes it). With ``overwrite=False`` an existing
    ``path`` is never replaced (:class:`FileExistsError`, checked atomically by ``link``).
    """
    tmp = tmp or path.with_name(f"{path.name}.{os.getpid()}.tmp")
    write = _write_bytes(content) if isinstance(content, (bytes, bytearray)) else content
    try:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        write(tmp)
        fsync_file(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_no_clobber(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def _link_no_clobber(tmp: Path, path: Path) -> None:
    """Move ``tmp`` to ``path`` unless ``path`` exists (atomically where hard links work)."""
    try:
        os.link(tmp, path)  # FileExistsError instead of replacing
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if os.path.lexists(path):  # a file system without hard links: check, then rename
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)
