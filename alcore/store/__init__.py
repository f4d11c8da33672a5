"""The alflow campaign store: one HDF5 file plus an append-only journal (docs/store.md)."""
from .campaign_store import AUTO_COMPACT_RECORDS, DEFAULT_MUTABLE, CampaignStore
from .errors import (ConfigMismatchError, ForeignHDF5Error, NotHDF5Error, ReadOnlyStoreError,
                     SchemaVersionError, StoreClosedError, StoreCorruptError, StoreError,
                     StoreExistsError, StoreInUseError, StoreNotFoundError)
from .export import export_labelled
from .layout import SCHEMA_VERSION, StoreStatus

__all__ = [
    "AUTO_COMPACT_RECORDS", "CampaignStore", "ConfigMismatchError", "DEFAULT_MUTABLE",
    "ForeignHDF5Error", "NotHDF5Error", "ReadOnlyStoreError", "SCHEMA_VERSION",
    "SchemaVersionError", "StoreClosedError", "StoreCorruptError", "StoreError",
    "StoreExistsError", "StoreInUseError", "StoreNotFoundError", "StoreStatus",
    "export_labelled",
]
