"""Single-writer lock file ``<store>.lock`` holding pid, host and process start time.

Why not HDF5's own file locking: it is often disabled on NFS/Lustre and it says nothing about
*who* holds the file. Our lock is created with ``O_CREAT|O_EXCL`` (atomic on local file systems
and NFSv3+), so exactly one process wins. It records ``pid``, ``host`` and the holder's start
time (from ``/proc/<pid>/stat``) so that a second writer can say "in use by pid N on host H",
and so that a lock left by a killed process is recognised as stale: same host and the pid is
dead, or the pid is alive but started at another time (the pid was reused).

Taking over a stale lock is serialised by an ``flock`` on ``<store>.lock.guard`` and the
staleness is re-checked under it, so two processes racing for the same stale lock cannot both
win: the first replaces it with its own (atomic rename of a fully written temp file), the
second then finds a live holder. A lock on another host cannot be checked and is never taken
over automatically: the error tells the user which file to delete.
"""
from __future__ import annotations

import atexit
import json
import os
import socket
import time
from pathlib import Path

from .errors import StoreInUseError
from .fsutil import atomic_write, fsync_dir, write_all

try:  # flock exists on every POSIX system; Windows falls back to the unguarded path.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

#: An empty/unreadable lock file younger than this is assumed to be mid-creation by its owner.
PARTIAL_LOCK_GRACE_S = 5.0


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (Linux), ``None`` if unknown/not running."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may contain spaces and ')' — split after the last ')'.
    try:
        fields = stat[stat.rindex(")") + 2 :].split()
        return int(fields[19])  # field 22 overall: starttime
    except (ValueError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists (zombies count as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().decode("ascii", "replace")
        return state[state.rindex(")") + 2 :].split()[0] != "Z"
    except (OSError, ValueError, IndexError):
        return True


def _my_info() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "start_time": process_start_time(os.getpid()),
        "created": time.time(),
    }


def read_lock(path: Path) -> dict | None:
    """Contents of a lock file; None if absent.

    ``{}`` when it is empty; ``{"unreadable": n}`` when its n bytes are not a lock record
    (not JSON, or JSON without ``pid`` and ``host``): both can be a lock whose creator is
    between creating and filling it, or one whose creator died in between.
    """
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return None
    if not raw:
        return {}
    try:
        info = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        info = None
    if not isinstance(info, dict) or "pid" not in info or "host" not in info:
        return {"unreadable": len(raw)}
    return info


def _unfilled(info: dict) -> bool:
    """Empty or unreadable: no holder can be named or checked."""
    return not info or "unreadable" in info


def is_stale(path: Path, info: dict) -> bool:
    """Decide whether the holder recorded in ``info`` is gone (only provable on this host)."""
    if _unfilled(info):
        # Written but not yet filled by its creator, or the creator died in between.
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return True
        return age > PARTIAL_LOCK_GRACE_S
    if info.get("host") != socket.gethostname():
        return False
    try:
        pid = int(info.get("pid", -1))
    except (TypeError, ValueError):
        return True
    if not pid_alive(pid):
        return True
    recorded = info.get("start_time")
    current = process_start_time(pid)
    return recorded is not None and current is not None and recorded != current


def describe(info: dict) -> str:
    if not info:
        return "an unknown process (the lock file is empty)"
    if "unreadable" in info:
        return (f"an unknown process (the lock file holds {info['unreadable']} bytes that are "
                "not a lock record)")
    return f"pid {info.get('pid')} on host {info.get('host')}"


class WriterLock:
    """The single-writer lock of one store. ``acquire`` raises :class:`StoreInUseError`."""

    def __init__(self, lock_path: Path, store_path: Path):
        self.path = lock_path
        self.store_path = store_path
        self.info: dict | None = None
        self.took_over: dict | None = None  # the stale holder we replaced, for logging/tests

    def acquire(self) -> None:
        mine = _my_info()
        data = json.dumps(mine).encode()
        for _ in range(5):
            try:
                fd = os.open(str(self.path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                if self._take_over_if_stale(mine, data):
                    break
                continue  # the lock vanished between our checks: try to create it again
            try:
                write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_dir(self.path.parent)
            break
        else:  # pragma: no cover - would need a pathological race
            raise StoreInUseError(f"could not acquire the writer lock {self.path}")
        self.info = mine
        atexit.register(self.release)

    def _take_over_if_stale(self, mine: dict, data: bytes) -> bool:
        """Replace a stale lock by ours; True on success, False if the lock disappeared.

        Raises StoreInUseError when the holder is alive (or on another host).
        """
        guard_fd = None
        guard = self.path.with_name(self.path.name + ".guard")
        if fcntl is not None:
            guard_fd = os.open(str(guard), os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(guard_fd, fcntl.LOCK_EX)
        try:
            info = read_lock(self.path)
            if info is None:
                return False
            if not is_stale(self.path, info):
                holder = describe(info)
                raise StoreInUseError(
                    f"store {self.store_path} is in use by {holder} (lock file {self.path}); "
                    "wait for it to finish, or delete the lock file if you are sure that "
                    "process is gone"
                )
            atomic_write(self.path, data)  # a complete lock record replaces the stale one
            self.took_over = info
            return True
        finally:
            if guard_fd is not None:
                fcntl.flock(guard_fd, fcntl.LOCK_UN)
                os.close(guard_fd)

    def release(self) -> None:
        """Remove the lock if it is still ours (idempotent; also runs at interpreter exit)."""
        if self.info is None:
            return
        current = read_lock(self.path)
        if current and current.get("pid") == self.info["pid"] and current.get(
            "host"
        ) == self.info["host"] and current.get("created") == self.info["created"]:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        self.info = None
        try:
            atexit.unregister(self.release)
        except Exception:  # pragma: no cover
            pass
