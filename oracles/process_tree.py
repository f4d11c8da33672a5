"""Find and kill every process an external simulator started, even those that left its group.

A simulator may leave children behind: a solver daemon, a ``nohup``-ed post-processor, a shell
script's background job. Killing the process group catches those that stayed in it, but a child
that called ``setsid()`` (or ``setpgid``) has left the group, and once its parent exits it is
re-parented to init, so no parent/child chain leads to it either.

What every descendant keeps is its environment: the variable :data:`COOKIE_VAR` with a value
unique to one evaluation is inherited through ``fork`` and ``exec`` (unless a program clears its
environment on purpose). :func:`kill_tree` kills the group, then every process whose initial
environment (``/proc/<pid>/environ``) holds the cookie. The same technique keeps CI builds from
leaking processes (Jenkins' ProcessTreeKiller marks builds with ``BUILD_ID``).

Without ``/proc`` (macOS) only the process group is killed.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

COOKIE_VAR = "ALFLOW_EVALUATION_ID"
_PROC = Path("/proc")


def new_cookie() -> str:
    """A value for :data:`COOKIE_VAR` that marks the processes of one evaluation."""
    return uuid.uuid4().hex


def processes_with_cookie(cookie: str) -> list[int]:
    """Pids of the live processes whose environment holds ``COOKIE_VAR=cookie`` (Linux).

    Zombies (exited, not yet reaped) have an empty environment and are not listed: they hold
    no resources but a process-table slot, and only their parent can reap them.
    """
    if not _PROC.is_dir():
        return []
    needle = f"{COOKIE_VAR}={cookie}".encode()
    me = os.getpid()
    found = []
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as fh:
                env = fh.read()
        except OSError:  # gone meanwhile, or another user's process
            continue
        if needle in env.split(b"\0"):
            found.append(int(entry.name))
    return found


def kill_tree(leader: int, cookie: str, rounds: int = 5) -> list[int]:
    """SIGKILL the process group of ``leader`` and every process marked with ``cookie``.

    Repeated a few ``rounds`` so that a process forking while it is being killed cannot leave
    a fresh child behind. Returns the pids killed by the cookie scan (not the group's).
    """
    try:
        os.killpg(leader, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    killed: list[int] = []
    for _ in range(rounds):
        pids = processes_with_cookie(cookie)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.01)
    return killed
