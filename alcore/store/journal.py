"""Append-only journal that makes small store updates durable without touching the HDF5 file.

Why: HDF5 is not journalled, so a kill while h5py writes can leave the file unopenable. Every
small event (a label, a failure, a request batch, iteration metrics) is instead appended here
and fsynced before the store method returns; the HDF5 file is only ever replaced atomically
(see :mod:`alcore.store.hdf5io`).

File format (little endian)::

    header  : b"ALFJRNL\\x01" | store_id (16 bytes, uuid of the store) | base_seq (u64)
    record* : length (u32) | crc32(payload) (u32) | payload (UTF-8 JSON object with "seq", "op")

Each record is its own commit record: it counts only if it is complete and its CRC matches.
A batch (e.g. ``mark_requested`` of 100 points) is one record, so it is all-or-nothing. A torn
tail (short or bad CRC, left by a kill during the append) was never acknowledged: readers stop
there and the next writer truncates it away. ``base_seq`` is the HDF5 file's folded sequence
number when this journal was started; a reader that sees an HDF5 file older than that raced
with a compaction and simply reads again.
"""
from __future__ import annotations

import json

import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fsutil import datasync, fsync_dir, write_all

MAGIC = b"ALFJRNL\x01"
_HEADER = struct.Struct("<8s16sQ")
_REC = struct.Struct("<II")
HEADER_SIZE = _HEADER.size
#: Refuse absurd record lengths (a corrupted length field must not allocate gigabytes).
MAX_RECORD = 256 * 1024 * 1024


def _json_default(obj: Any) -> Any:
    """Turn numpy scalars/arrays and paths into JSON; anything else is a caller bug."""
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot store value of type {type(obj).__name__} in the journal: {obj!r}")


def dumps(obj: Any) -> str:
    """Deterministic JSON used by the journal and the HDF5 JSON attributes (NaN allowed)."""
    return json.dumps(obj, default=_json_default, sort_keys=True, allow_nan=True)


def encode_record(payload: dict) -> bytes:
    """Frame one record: length, CRC32, JSON payload."""
    data = dumps(payload).encode("utf-8")
    return _REC.pack(len(data), zlib.crc32(data)) + data


@dataclass
class JournalScan:
    """What a journal file holds: valid records up to the first torn/bad one."""

    store_id: bytes | None
    base_seq: int
    records: list[dict] = field(default_factory=list)
    valid_end: int = HEADER_SIZE
    size: int = 0

    @property
    def torn_bytes(self) -> int:
        """Bytes after the last valid record (a torn tail, never acknowledged)."""
        return self.size - self.valid_end

    @property
    def last_seq(self) -> int:
        return self.records[-1]["seq"] if self.records else self.base_seq


def scan(path: Path) -> JournalScan | None:
    """Read every valid record of the journal at ``path``; ``None`` if there is no journal.

    Never writes. A header that is short or has the wrong magic yields ``store_id=None`` (the
    caller decides what a journal without identity means).
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return None
    if len(data) < HEADER_SIZE:
        return JournalScan(store_id=None, base_seq=0, valid_end=0, size=len(data))
    magic, store_id, base_seq = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        return JournalScan(store_id=None, base_seq=0, valid_end=0, size=len(data))
    out = JournalScan(store_id=store_id, base_seq=base_seq, size=len(data))
    pos = HEADER_SIZE
    while pos + _REC.size <= len(data):
        length, crc = _REC.unpack_from(data, pos)
        start = pos + _REC.size
        end = start + length
        if length > MAX_RECORD or end > len(data):
            break
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            break
        try:
            rec = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            break
        if not isinstance(rec, dict) or "seq" not in rec or "op" not in rec:
            break
        out.records.append(rec)
        pos = end
    out.valid_end = pos
    return out


def write_fresh(path: Path, store_id: bytes, base_seq: int) -> None:
    """Atomically replace the journal by an empty one starting after ``base_seq``.

    Written to ``<journal>.tmp``, fsynced, renamed, directory fsynced: a kill at any point
    leaves either the old journal (whose records are then skipped as already folded) or the new.
    """
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, _HEADER.pack(MAGIC, store_id, base_seq))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


class JournalWriter:
    """Appends records and fsyncs each one (the acknowledgement)."""

    def __init__(self, path: Path, next_seq: int):
        self.path = path
        self.next_seq = next_seq
        self.n_records = 0
        self._fd: int | None = os.open(str(path), os.O_WRONLY | os.O_APPEND)

    def append(self, payload: dict) -> int:
        """Write one record with the next sequence number; durable when this returns."""
        if self._fd is None:
            raise RuntimeError("journal is closed")
        seq = self.next_seq
        rec = dict(payload)
        rec["seq"] = seq
        write_all(self._fd, encode_record(rec))
        datasync(self._fd)
        self.next_seq = seq + 1
        self.n_records += 1
        return seq

    def reopen(self) -> None:
        """Re-open after the journal file was replaced by :func:`write_fresh`."""
        self.close()
        self._fd = os.open(str(self.path), os.O_WRONLY | os.O_APPEND)
        self.n_records = 0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def truncate_torn_tail(path: Path, valid_end: int) -> None:
    """Cut a torn tail off the journal so new records follow the last valid one."""
    fd = os.open(str(path), os.O_WRONLY)
    try:
        os.ftruncate(fd, valid_end)
        os.fsync(fd)
    finally:
        os.close(fd)


