"""The stop request of a store: the sidecar file ``<store>.stop``.

Why a file and not a journal record: ``alflow stop`` must reach a campaign whose writer holds
the lock, so the request is the one write a read-only store may make, and the writer looks at
the disk on every check (no message channel to keep alive).
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from .fsutil import atomic_write


class StopFlag:
    """Request, query and withdraw a clean stop of the campaign stored next to ``path``."""

    def __init__(self, path: Path):
        self.path = path

    def request(self, reason: str = "") -> None:
        """Write the request atomically (who asked, when, why)."""
        record = {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time(),
                  "reason": reason}
        atomic_write(self.path, json.dumps(record).encode())

    def requested(self) -> bool:
        return self.path.exists()

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
