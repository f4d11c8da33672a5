"""Error classes of the campaign store.

Every failure a user can cause (wrong file, second writer, changed config) has one class, so
the CLI can print one clear line and tests can assert the exact cause. All derive from
:class:`StoreError`; the file-system flavoured ones also derive from the matching builtin so
generic ``except FileNotFoundError`` code keeps working.
"""
from __future__ import annotations


class StoreError(Exception):
    """Base class of every error raised by :mod:`alcore.store`."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """The store file does not exist."""


class StoreExistsError(StoreError, FileExistsError):
    """``CampaignStore.create`` refuses to overwrite an existing file."""


class NotHDF5Error(StoreError):
    """The path exists but is not an HDF5 file at all (wrong file passed)."""


class ForeignHDF5Error(StoreError):
    """An HDF5 file without alflow's schema marker (some other program's file)."""


class SchemaVersionError(StoreError):
    """The store was written by a newer alflow with a schema this version cannot read."""


class StoreCorruptError(StoreError):
    """The file carries alflow's marker but its contents are inconsistent."""


class JournalCorruptError(StoreCorruptError):
    """The journal holds damage that is not a torn tail: a record that does not verify with
    valid data after it, a missing record, a damaged header, or another store's journal.

    Readers and writers refuse such a store and change nothing; ``alflow repair STORE``
    (:func:`alcore.store.repair_store`) salvages every record that verifies. ``problem`` says
    what is wrong, ``offset`` where (byte offset in the journal, None for the whole file).
    """

    def __init__(self, journal: object, store: object, problem: str,
                 offset: int | None = None):
        super().__init__(
            f"journal {journal} is corrupt: {problem}; nothing was changed. "
            f"`alflow repair {store}` keeps every record that verifies and a backup of the "
            "journal (`--dry-run` shows what it would drop)")
        self.journal = journal
        self.store = store
        self.problem = problem
        self.offset = offset


class StoreInUseError(StoreError):
    """Another live process holds the single-writer lock."""


class ReadOnlyStoreError(StoreError):
    """A write method was called on a store opened with ``mode="r"``."""


class StoreClosedError(StoreError):
    """A method was called after ``close()``."""


class ExportTargetError(StoreError):
    """An export was pointed at a store file or a companion of it, or at an existing file
    without ``force``."""


