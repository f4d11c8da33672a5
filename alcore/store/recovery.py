"""Opening a store: the HDF5 file plus the replay of its journal, written once for everyone.

Readers, the writer and ``alflow repair`` all come through :func:`load`, so a store means the
same thing to each of them. :func:`load` never writes; what a writer may clean up afterwards
(a torn tail, a fold's left-over temp file, a missing journal) is :func:`prepare_writer`, run
only once everything verified — a refused open leaves every file as it was.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from . import hdf5io, journal
from .errors import JournalCorruptError, StoreCorruptError
from .files import StoreFiles
from .state import StoreState

log = logging.getLogger(__name__)

#: How often a reader re-reads when a fold replaced the file between its two reads.
_RACE_RETRIES = 50


@dataclass
class Loaded:
    """A store's state with every acknowledged journal record applied."""

    state: StoreState
    scan: journal.JournalScan | None  # None: there is no journal


def journal_newer_error(files: StoreFiles) -> StoreCorruptError:
    return StoreCorruptError(
        f"{files.journal} starts after the data in {files.given} (journal newer than the "
        "store file: was an old copy of the store restored?); nothing was changed. "
        f"`alflow repair {files.given}` applies the journal's records to this file")


def load(files: StoreFiles) -> Loaded:
    """Read the HDF5 file and replay the journal records newer than it, in memory only.

    Raises :class:`JournalCorruptError` for a damaged journal or another store's journal
    (never "repaired" by dropping records), :class:`StoreCorruptError` for a journal that
    starts after the file (an old copy of the file restored). A reader that raced a fold (the
    journal was restarted after the file it read) reads both again.
    """
    for _ in range(_RACE_RETRIES):
        st = hdf5io.read_state(files.real)
        scan = journal.scan(files.journal, store=files.given)
        if scan is None:
            return Loaded(st, None)
        if scan.store_id != st.store_id:
            raise JournalCorruptError(
                files.journal, files.given,
                f"it belongs to another store (id {scan.store_id.hex()}, this store is "
                f"{st.store_id.hex()}): was the store file replaced?")
        if scan.base_seq > st.folded_seq:
            time.sleep(0.01)  # the file we read was replaced meanwhile: read again
            continue
        for rec in scan.records:
            if rec["seq"] > st.folded_seq:
                st.apply(rec)
        return Loaded(st, scan)
    raise journal_newer_error(files)


def prepare_writer(files: StoreFiles, loaded: Loaded) -> int:
    """Make the verified store ready for appends; return the torn bytes discarded.

    Deletes what a kill left behind (a fold's ``.tmp``, a journal restart's ``.journal.tmp``),
    cuts a torn tail off the journal, starts a journal if there is none.
    """
    files.tmp.unlink(missing_ok=True)
    files.journal_tmp.unlink(missing_ok=True)
    st, scan = loaded.state, loaded.scan
    if scan is None:
        journal.write_fresh(files.journal, files.journal_tmp, st.store_id, st.folded_seq)
        return 0
    if scan.torn_bytes:
        log.warning("discarding %d bytes of a torn (never acknowledged) journal tail of %s",
                    scan.torn_bytes, files.journal)
        journal.truncate_torn_tail(files.journal, scan.valid_end)
    return scan.torn_bytes


def next_seq(loaded: Loaded) -> int:
    st, scan = loaded.state, loaded.scan
    return max(st.last_seq, scan.last_seq if scan else 0, st.folded_seq) + 1
