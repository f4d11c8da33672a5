"""The alflow campaign store: one HDF5 file plus an append-only journal (docs/store.md).

Modules, one job each: :mod:`.campaign_store` (the ``CampaignStore`` API), :mod:`.recovery`
(open = file + journal replay), :mod:`.journal` (format, verification, salvage),
:mod:`.events` (the records a write appends), :mod:`.state` (applying them),
:mod:`.hdf5io` (the HDF5 layout), :mod:`.files` (where a store's files live),
:mod:`.fsutil` (fsync and ``atomic_write``), :mod:`.lock` (single writer), :mod:`.stopflag`,
:mod:`.export`, :mod:`.repair`. Which config changes a resume may make is the config's rule
(``alcore.config.check_resume``), not the store's.
"""
from .campaign_store import AUTO_COMPACT_RECORDS, CampaignStore
from .errors import (ExportTargetError, ForeignHDF5Error,
                     JournalCorruptError, NotHDF5Error, ReadOnlyStoreError, SchemaVersionError,
                     StoreClosedError, StoreCorruptError, StoreError, StoreExistsError,
                     StoreInUseError, StoreNotFoundError)
from .export import export_labelled
from .layout import FAILURE_KINDS, SCHEMA_VERSION, StoreStatus
from .repair import RepairReport, repair_store

__all__ = [
    "AUTO_COMPACT_RECORDS", "CampaignStore", "ExportTargetError", "FAILURE_KINDS", "ForeignHDF5Error", "JournalCorruptError",
    "NotHDF5Error", "ReadOnlyStoreError", "RepairReport", "SCHEMA_VERSION",
    "SchemaVersionError", "StoreClosedError", "StoreCorruptError", "StoreError",
    "StoreExistsError", "StoreInUseError", "StoreNotFoundError", "StoreStatus",
    "export_labelled", "repair_store",
]
