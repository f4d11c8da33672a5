"""Append-only journal that makes small store updates durable without touching the HDF5 file.

Why: HDF5 is not journalled, so a kill while h5py writes can leave the file unopenable. Every
small event (a label, a failure, a request batch, iteration metrics) is instead appended here
and fdatasynced before the store method returns; the HDF5 file is only ever replaced
atomically (see :mod:`alcore.store.hdf5io`).

File format (little endian)::

    header v2 : b"ALFJRNL\\x02" | store_id (16 bytes) | base_seq (u64) | crc32(first 32 bytes) (u32)
    header v1 : b"ALFJRNL\\x01" | store_id (16 bytes) | base_seq (u64)      (read, never written)
    record*   : length (u32) | crc32(payload) (u32) | payload (UTF-8 JSON object with "seq", "op")

Every record is its own commit record. Records carry consecutive sequence numbers starting at
``base_seq + 1`` (the HDF5 file's folded sequence number when this journal was started).

What may be discarded, and what is corruption (:func:`scan`)
    A kill during an append leaves a *torn tail*: a strict prefix of the last record (fewer
    than 8 bytes of it, or a length field reaching past the end of the file), or bytes that
    are all zero (a file system extended the file during a power loss). It was never
    acknowledged (the fdatasync did not return), so readers ignore it and the next writer cuts
    it off. Everything else is corruption and raises :class:`JournalCorruptError`: a damaged
    header, a record whose CRC does not match (the CRC decides, not whether the JSON parses),
    a complete record that is not a journal record, a record followed by any record that
    verifies, a gap in the sequence numbers. :func:`salvage` is the repair path: it keeps
    every record that verifies and says which bytes it could not use.
"""
from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import JournalCorruptError, StoreError
from .fsutil import atomic_write, datasync, write_all

MAGIC = b"ALFJRNL\x02"
MAGIC_V1 = b"ALFJRNL\x01"
_HEADER_V1 = struct.Struct("<8s16sQ")
_HEADER = struct.Struct("<8s16sQI")
_REC = struct.Struct("<II")
HEADER_SIZE = _HEADER.size
#: Refuse absurd record lengths (a corrupted length field must not allocate gigabytes).
MAX_RECORD = 256 * 1024 * 1024
#: Every payload is a JSON object with sorted keys, so it starts with these bytes.
_PAYLOAD_START = b'{"'


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


def encode_header(store_id: bytes, base_seq: int) -> bytes:
    head = _HEADER_V1.pack(MAGIC, store_id, base_seq)
    return head + struct.pack("<I", zlib.crc32(head))


# ------------------------------------------------------------------------------ reading
@dataclass
class JournalScan:
    """A journal that verified: its identity, its records, and a torn tail if any."""

    path: Path
    store_id: bytes
    base_seq: int
    version: int
    records: list[dict] = field(default_factory=list)
    valid_end: int = HEADER_SIZE
    size: int = 0

    @property
    def torn_bytes(self) -> int:
        """Bytes after the last record that were never acknowledged (a torn tail)."""
        return self.size - self.valid_end

    @property
    def last_seq(self) -> int:
        return self.records[-1]["seq"] if self.records else self.base_seq


@dataclass
class _Header:
    store_id: bytes | None  # None when the header is damaged beyond reading
    base_seq: int
    version: int
    size: int
    problem: str | None = None  # why the header does not verify


def _read_header(data: bytes) -> _Header:
    magic = data[:8]
    if magic == MAGIC:
        if len(data) < HEADER_SIZE:
            return _Header(None, 0, 2, len(data), f"its header is cut short ({len(data)} bytes)")
        _, store_id, base_seq, crc = _HEADER.unpack_from(data, 0)
        if zlib.crc32(data[:_HEADER_V1.size]) != crc:
            return _Header(store_id, base_seq, 2, HEADER_SIZE, "its header fails its checksum")
        return _Header(store_id, base_seq, 2, HEADER_SIZE)
    if magic == MAGIC_V1:
        if len(data) < _HEADER_V1.size:
            return _Header(None, 0, 1, len(data), f"its header is cut short ({len(data)} bytes)")
        _, store_id, base_seq = _HEADER_V1.unpack_from(data, 0)
        return _Header(store_id, base_seq, 1, _HEADER_V1.size)
    if not data:
        return _Header(None, 0, 0, 0, "the file is empty (its header is missing)")
    return _Header(None, 0, 0, 0, f"its header is damaged (unknown magic {magic!r})")


@dataclass
class _Frame:
    """What starts at one offset: a record that verifies (``rec``) or why none does."""

    pos: int
    end: int
    rec: dict | None = None
    problem: str | None = None


def _frame_at(data: bytes, pos: int) -> _Frame:
    if pos + _REC.size > len(data):
        return _Frame(pos, len(data), problem=f"is incomplete ({len(data) - pos} bytes)")
    length, crc = _REC.unpack_from(data, pos)
    start, end = pos + _REC.size, pos + _REC.size + length
    if length > MAX_RECORD:
        return _Frame(pos, len(data), problem=f"has an impossible length ({length})")
    if end > len(data):
        return _Frame(pos, len(data), problem=f"runs past the end of the file ({length} bytes "
                                              f"long, {len(data) - start} present)")
    payload = data[start:end]
    if zlib.crc32(payload) != crc:
        return _Frame(pos, end, problem="fails its checksum (CRC32)")
    try:
        rec = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return _Frame(pos, end, problem="matches its checksum but is not JSON (written by a "
                                        "broken writer)")
    if (not isinstance(rec, dict) or not isinstance(rec.get("seq"), int)
            or isinstance(rec.get("seq"), bool) or not isinstance(rec.get("op"), str)):
        return _Frame(pos, end, problem="is not a journal event (no seq/op)")
    return _Frame(pos, end, rec=rec)


def _next_verifying(data: bytes, after: int) -> _Frame | None:
    """The first record that verifies and starts after byte ``after`` (a resync search)."""
    hit = data.find(_PAYLOAD_START, after + _REC.size)
    while hit != -1:
        frame = _frame_at(data, hit - _REC.size)
        if frame.rec is not None:
            return frame
        hit = data.find(_PAYLOAD_START, hit + 1)
    return None


def _is_torn_tail(data: bytes, pos: int) -> bool:
    """Whether the bytes from ``pos`` on can be what a kill during ONE append leaves behind."""
    rest = data[pos:]
    if not rest.strip(b"\0"):
        return True  # zeros: the size grew, the data never made it (power loss)
    if _next_verifying(data, pos) is not None:
        return False  # valid data after it: the damage is in the middle
    if len(rest) < _REC.size:
        return True
    length, crc = _REC.unpack_from(rest, 0)
    present = rest[_REC.size:]
    if length > MAX_RECORD or _REC.size + length <= len(rest):
        return False  # complete but wrong: corruption, not an interrupted write
    if zlib.crc32(present) == crc:
        return False  # the whole payload is there: the length field is what is damaged
    return present == _PAYLOAD_START[:len(present)] or present.startswith(_PAYLOAD_START)


def scan(path: Path, store: Path | None = None) -> JournalScan | None:
    """Read and verify the journal at ``path``; ``None`` if there is none. Never writes.

    Returns the records and the length of a torn tail (see the module docstring); raises
    :class:`JournalCorruptError` for anything else. ``store`` names the store in messages.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    store = store if store is not None else path.with_name(path.name.rsplit(".", 1)[0])
    head = _read_header(data)
    if head.problem:
        raise JournalCorruptError(path, store, head.problem, 0)
    assert head.store_id is not None
    out = JournalScan(path=path, store_id=head.store_id, base_seq=head.base_seq,
                      version=head.version, size=len(data), valid_end=head.size)
    pos, prev = head.size, head.base_seq
    while pos < len(data):
        frame = _frame_at(data, pos)
        if frame.rec is None:
            if _is_torn_tail(data, pos):
                break
            n = len(out.records) + 1
            later = _next_verifying(data, pos)
            after = (f", and records that verify follow it (the next at byte {later.pos})"
                     if later is not None else "")
            raise JournalCorruptError(path, store, f"record {n} (at byte {pos}) {frame.problem}"
                                                   f"{after}", pos)
        seq = frame.rec["seq"]
        if seq != prev + 1:
            what = (f"{seq - prev - 1} record(s) missing" if seq > prev
                    else "out of order")
            raise JournalCorruptError(
                path, store, f"record {len(out.records) + 1} (at byte {pos}) has seq {seq} "
                             f"after seq {prev} ({what})", pos)
        out.records.append(frame.rec)
        prev, pos = seq, frame.end
    out.valid_end = pos
    return out


@dataclass
class Dropped:
    """A byte range :func:`salvage` could not use."""

    start: int
    end: int
    problem: str
    torn_tail: bool = False

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass
class Salvage:
    """Every record of a damaged journal that verifies, and what was left out."""

    path: Path
    size: int
    store_id: bytes | None  # from the header (None when unreadable)
    base_seq: int
    header_problem: str | None
    records: list[dict] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    out_of_order: list[int] = field(default_factory=list)  # offsets of verifying records skipped


def salvage(path: Path) -> Salvage:
    """Keep every record that verifies, in file order with rising seq; never writes.

    A damaged region is skipped by searching for the next offset at which a record verifies,
    so one bad record costs that record only.
    """
    data = path.read_bytes()
    head = _read_header(data)
    out = Salvage(path=path, size=len(data), store_id=head.store_id, base_seq=head.base_seq,
                  header_problem=head.problem)
    pos = head.size if head.problem is None else 0
    prev = -1
    while pos < len(data):
        frame = _frame_at(data, pos)
        if frame.rec is None:
            nxt = _next_verifying(data, pos)
            end = nxt.pos if nxt is not None else len(data)
            torn = nxt is None and pos > 0 and _is_torn_tail(data, pos)
            problem = ("the damaged header" if pos == 0 and head.problem
                       else f"the record there {frame.problem}")
            out.dropped.append(Dropped(pos, end, str(problem), torn_tail=torn))
            pos = end
            continue
        if frame.rec["seq"] > prev:
            out.records.append(frame.rec)
            out.offsets.append(frame.pos)
            prev = frame.rec["seq"]
        else:
            out.out_of_order.append(frame.pos)
        pos = frame.end
    return out


# ------------------------------------------------------------------------------ writing
def write_fresh(path: Path, tmp: Path, store_id: bytes, base_seq: int) -> None:
    """Atomically replace the journal by an empty one starting after ``base_seq`` (built at
    ``tmp``). A kill at any point leaves either the old journal (whose records are then
    skipped as already folded) or the new one."""
    atomic_write(path, encode_header(store_id, base_seq), tmp=tmp)


def truncate_torn_tail(path: Path, valid_end: int) -> None:
    """Cut a torn tail off the journal so new records follow the last valid one."""
    fd = os.open(str(path), os.O_WRONLY)
    try:
        os.ftruncate(fd, valid_end)
        os.fsync(fd)
    finally:
        os.close(fd)


class JournalWriter:
    """Appends records and fdatasyncs each one (the acknowledgement).

    A failed append is cut back to the previous end, so a full disk never leaves a partial
    record with later records after it (that would read as corruption). A failed fdatasync
    cannot be retried safely (the kernel may have dropped the dirty pages), so after one the
    writer refuses further appends until the store is reopened.
    """

    def __init__(self, path: Path, next_seq: int):
        self.path = path
        self.next_seq = next_seq
        self.n_records = 0
        self._broken: str | None = None
        self._fd: int | None = None
        self._end = 0
        self.reopen()

    def append(self, payload: dict) -> int:
        """Write one record with the next sequence number; durable when this returns."""
        if self._fd is None:
            raise RuntimeError("journal is closed")
        if self._broken:
            raise StoreError(f"journal {self.path} refused further writes after an error "
                             f"({self._broken}); reopen the store")
        seq = self.next_seq
        rec = dict(payload)
        rec["seq"] = seq
        data = encode_record(rec)
        try:
            write_all(self._fd, data)
        except BaseException as exc:
            self._cut_back(exc)
            raise
        try:
            datasync(self._fd)
        except BaseException as exc:
            self._broken = f"fdatasync failed: {exc}"
            self._cut_back(exc)
            raise
        self._end += len(data)
        self.next_seq = seq + 1
        self.n_records += 1
        return seq

    def _cut_back(self, exc: BaseException) -> None:
        try:
            os.ftruncate(self._fd, self._end)  # type: ignore[arg-type]
        except OSError as err:
            self._broken = f"could not cut back a failed append ({exc}): {err}"

    def reopen(self) -> None:
        """(Re)open for appending, e.g. after :func:`write_fresh` replaced the file."""
        self.close()
        self._fd = os.open(str(self.path), os.O_WRONLY | os.O_APPEND)
        self._end = os.fstat(self._fd).st_size
        self.n_records = 0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
