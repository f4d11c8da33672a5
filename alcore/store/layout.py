"""Names, schema version and status codes of the alflow HDF5 store (see docs/store.md).

Kept in one module so that the reader, the writer, the export and the docs agree on every
name; bump :data:`SCHEMA_VERSION` whenever the meaning of a stored object changes.
"""
from __future__ import annotations

import enum
from pathlib import Path

#: Marker attribute on ``/meta`` that identifies an alflow store (and its value).
FORMAT_ATTR = "alflow_format"
FORMAT_VALUE = "alflow-campaign-store"
#: Integer schema version; readers refuse files with a larger number.
SCHEMA_VERSION = 1

META = "meta"
CONFIG_JSON = "meta/config_json"
ORACLE_JSON = "meta/oracle_info_json"
SEEDS_JSON = "meta/seeds_json"

POOL = "pool"
TEST = "test"
ITERATIONS = "iterations"
HISTORY = "history"
CHECKPOINTS = "checkpoints"

#: Per-point datasets under /pool (all have P rows).
POOL_X = "pool/X"
POOL_STATUS = "pool/status"
POOL_Y = "pool/y"
POOL_ITER = "pool/iteration_requested"
POOL_SCORE = "pool/request_score"
POOL_WALL = "pool/wall_time"
POOL_WORKER = "pool/worker"
POOL_REASON = "pool/failure_reason"
POOL_ATTEMPTS = "pool/attempts"


class StoreStatus(enum.IntEnum):
    """Per-point status stored in ``/pool/status`` (int8)."""

    UNLABELLED = 0
    REQUESTED = 1
    LABELLED = 2
    FAILED = 3


def iteration_name(iteration: int) -> str:
    """Group name of one iteration: zero padded so that h5ls lists them in order."""
    return f"{int(iteration):04d}"


def sidecar(path: Path, suffix: str) -> Path:
    """Path of a sidecar file (``<store>.journal``, ``.lock``, ``.tmp``, ``.stop``)."""
    return path.with_name(path.name + suffix)


JOURNAL_SUFFIX = ".journal"
LOCK_SUFFIX = ".lock"
TMP_SUFFIX = ".tmp"
STOP_SUFFIX = ".stop"
