"""Names, schema version and status codes of the alflow HDF5 store (see docs/store.md).

Kept in one module so that the reader, the writer, the export and the docs agree on every
name; bump :data:`SCHEMA_VERSION` whenever the meaning of a stored object changes.
"""
from __future__ import annotations

import enum

#: Marker attribute on ``/meta`` that identifies an alflow store (and its value).
FORMAT_ATTR = "alflow_format"
FORMAT_VALUE = "alflow-campaign-store"
#: Integer schema version; readers refuse files with a larger number.
#: 1: the first format. 2: per-evaluation times and failure kinds, iteration ``info_json``,
#: journal header v2 (with a CRC). Version 1 files are read (missing datasets read as
#: NaN / "") and become version 2 at their next fold.
SCHEMA_VERSION = 2

META = "meta"
CONFIG_JSON = "meta/config_json"
ORACLE_JSON = "meta/oracle_info_json"
SEEDS_JSON = "meta/seeds_json"

POOL = "pool"
TEST = "test"
ITERATIONS = "iterations"
HISTORY = "history"
CHECKPOINTS = "checkpoints"

POOL_X = "pool/X"
POOL_Y = "pool/y"


class StoreStatus(enum.IntEnum):
    """Per-point status stored in ``/pool/status`` (int8)."""

    UNLABELLED = 0
    REQUESTED = 1
    LABELLED = 2
    FAILED = 3

    @property
    def text(self) -> str:
        """The one spelling used in every JSON, CSV and message: "unlabelled", "labelled"..."""
        return self.name.lower()


#: ``/pool/status`` @codes: what the int8 codes mean, for readers without alflow.
STATUS_CODES_TEXT = ", ".join(f"{s.value} {s.text}" for s in StoreStatus)

#: Failure kinds of ``record_failure`` (INTERFACES.md section 1: ``EvalResult.kind``).
FAILURE_KINDS = ("error", "setup", "timeout", "worker_died", "cancelled")


def iteration_name(iteration: int) -> str:
    """Group name of one iteration: zero padded so that h5ls lists them in order."""
    return f"{int(iteration):04d}"
