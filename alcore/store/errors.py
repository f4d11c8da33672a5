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


class StoreInUseError(StoreError):
    """Another live process holds the single-writer lock."""


class ReadOnlyStoreError(StoreError):
    """A write method was called on a store opened with ``mode="r"``."""


class StoreClosedError(StoreError):
    """A method was called after ``close()``."""


class ConfigMismatchError(StoreError):
    """The config given on resume differs from the stored one in immutable keys.

    ``keys`` lists the dotted key paths that differ, ``differences`` maps each to
    ``(stored, given)``.
    """

    def __init__(self, message: str, differences: dict[str, tuple[object, object]]):
        super().__init__(message)
        self.differences = differences
        self.keys = sorted(differences)
