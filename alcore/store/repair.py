"""Salvage of a store whose journal is corrupt (``alflow repair STORE``).

Why a separate, explicit step: a damaged journal may hide acknowledged labels, so opening a
store never "repairs" it by dropping records (it raises :class:`JournalCorruptError`). This
module is the one place that changes such a journal, on the user's request, and only after
keeping a byte-for-byte backup of it. It keeps every record that verifies (CRC and framing)
and applies those newer than the HDF5 file, folds them into the file (atomic replace), starts
a fresh journal, and reports exactly which byte ranges it could not use and which sequence
numbers are therefore lost. A lost label leaves its point "requested": a resumed campaign
evaluates it again. Sequence of writes (each crash-safe): backup, fold, fresh journal; a kill
in between leaves a store that a second ``repair`` finishes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import hdf5io, journal, recovery
from .errors import JournalCorruptError, StoreCorruptError, StoreNotFoundError
from .files import StoreFiles
from .fsutil import atomic_write
from .lock import WriterLock


@dataclass
class RepairReport:
    """What ``repair_store`` found and did; :meth:`lines` is what ``alflow repair`` prints."""

    store: Path
    journal: Path
    dry_run: bool
    problem: str | None = None  # why the store refused to open; None: nothing to repair
    foreign_id: str | None = None  # the journal belongs to this other store
    header_problem: str | None = None
    kept: list[int] = field(default_factory=list)  # seqs applied to the file
    already_folded: int = 0  # verifying records the file already held
    dropped: list[journal.Dropped] = field(default_factory=list)
    where: dict[int, str] = field(default_factory=dict)  # dropped start -> between which seqs
    torn_tail: int = 0
    lost_seqs: list[tuple[int, int]] = field(default_factory=list)  # inclusive ranges
    backup: Path | None = None

    def lines(self) -> list[str]:
        if self.problem is None:
            return [f"{self.journal}: every record verifies; nothing to repair"]

        def did(past: str, present: str) -> str:
            return f"would {present}" if self.dry_run else past

        out = [f"{self.store}: {self.problem}"]
        if self.foreign_id:
            out.append(f"the journal belongs to another store (id {self.foreign_id}); "
                       f"{did('set it aside', 'set it aside')} unapplied and "
                       f"{did('started', 'start')} a fresh journal")
        else:
            if self.header_problem:
                out.append(f"the journal header is damaged ({self.header_problem}); its "
                           "records are taken to belong to this store")
            n = len(self.kept) + self.already_folded
            out.append(f"{did('kept', 'keep')} {n} record(s) that verify: {len(self.kept)} "
                       f"applied to the store file, {self.already_folded} it already held")
            damaged = [d for d in self.dropped if not d.torn_tail and d.start > 0]
            out.append(f"{did('dropped', 'drop')} {len(damaged)} record(s)")
            for d in damaged:
                out.append(f"  offset {d.start}-{d.end} ({d.size} bytes): {d.problem}"
                           f"{self.where.get(d.start, '')}")
            if self.torn_tail:
                out.append(f"  a torn tail of {self.torn_tail} bytes (never acknowledged)")
            for a, b in self.lost_seqs:
                seqs = f"seq {a}" if a == b else f"seq {a}-{b}"
                out.append(f"  lost: {seqs} (its events are unknown; a lost label leaves its "
                           "point requested, to be evaluated again on resume)")
        if self.backup is not None:
            out.append(f"backup of the original journal: {self.backup}")
        if self.dry_run:
            out.append("dry run: nothing was changed")
        return out


def _lost_ranges(seqs: list[int], start: int) -> list[tuple[int, int]]:
    """Gaps in the rising ``seqs`` after ``start`` (the last sequence number known)."""
    out, prev = [], start
    for s in seqs:
        if s > prev + 1:
            out.append((prev + 1, s - 1))
        prev = max(prev, s)
    return out


def _neighbours(found: journal.Salvage) -> dict[int, str]:
    """For each dropped range, the sequence numbers of the records around it."""
    out = {}
    for d in found.dropped:
        before = [r["seq"] for r, o in zip(found.records, found.offsets) if o < d.start]
        after = [r["seq"] for r, o in zip(found.records, found.offsets) if o >= d.end]
        if before and after:
            lost = after[0] - before[-1] - 1
            out[d.start] = (f"; between seq {before[-1]} and seq {after[0]}"
                            + (f", so seq {before[-1] + 1}" if lost == 1 else
                               f", so seq {before[-1] + 1}-{after[0] - 1}" if lost > 1 else "")
                            + (" is lost" if lost == 1 else " are lost" if lost > 1 else ""))
        elif before:
            out[d.start] = f"; after seq {before[-1]}: what it held is lost"
        elif after:
            out[d.start] = f"; before seq {after[0]}"
    return out


def repair_store(path: str | os.PathLike, *, dry_run: bool = False) -> RepairReport:
    """Salvage the journal of the store at ``path`` (see the module docstring).

    Takes the writer lock (:class:`StoreInUseError` while a campaign writes the store). A
    store that opens cleanly is left alone. The HDF5 file itself must be readable: a damaged
    HDF5 file cannot be repaired from the journal.
    """
    files = StoreFiles.of(path)
    if not files.real.exists():
        raise StoreNotFoundError(f"no store at {files.given}")
    hdf5io.check_file(files.real)
    report = RepairReport(store=files.given, journal=files.journal, dry_run=dry_run)
    lock = WriterLock(files.lock, files.given)
    lock.acquire()
    try:
        try:
            recovery.load(files)
            return report  # opens cleanly: nothing to do
        except JournalCorruptError as exc:
            report.problem = exc.problem
        except StoreCorruptError as exc:
            if not files.journal.exists():
                raise
            report.problem = str(exc).split(";")[0]
        _salvage(files, report)
    finally:
        lock.release()
    return report


def _salvage(files: StoreFiles, report: RepairReport) -> None:
    st = hdf5io.read_state(files.real)
    original = files.journal.read_bytes()
    found = journal.salvage(files.journal)
    report.header_problem = found.header_problem
    report.dropped = found.dropped
    report.where = _neighbours(found)
    report.torn_tail = sum(d.size for d in found.dropped if d.torn_tail)
    foreign = (found.header_problem is None and found.store_id is not None
               and found.store_id != st.store_id)
    if foreign:
        report.foreign_id = found.store_id.hex()  # type: ignore[union-attr]
    else:
        for rec in found.records:
            if rec["seq"] > st.folded_seq:
                st.apply(rec)
                report.kept.append(rec["seq"])
            else:
                report.already_folded += 1
        report.lost_seqs = _lost_ranges(report.kept, st.folded_seq)
    if report.dry_run:
        return
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report.backup = files.backup("corrupt", stamp)
    atomic_write(report.backup, original, overwrite=False)
    if report.kept:
        hdf5io.write_store(files.real, files.tmp, st)
        st.clear_dirty()
    journal.write_fresh(files.journal, files.journal_tmp, st.store_id, st.folded_seq)
