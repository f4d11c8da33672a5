"""Checks of a config against this machine, each returning a problem text or ``None``.

Each one is cheap and creates nothing: the RAM the campaign may use, whether a torch device
exists, whether the store's folder is writable, whether a Dask scheduler answers. They return
one-line problem texts (naming the config key) so that :func:`~alcore.config.preflight` can
report every problem of a config at once.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["ram_bytes", "device_problem", "writable_problem", "folder_problem", "scheduler_problem",
           "SCHEDULER_TIMEOUT_S"]

#: Seconds a Dask scheduler address gets to accept a TCP connection before the config is refused.
SCHEDULER_TIMEOUT_S = 3.0

_SCHEDULER_PORT = 8786  # Dask's default when an address names none


def ram_bytes() -> int:
    """Physical memory this process may use: the machine's RAM, or a smaller cgroup limit."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:
            total = int(text)
    return int(total)


def device_problem(device: str) -> str | None:
    """``model.device`` names a device this machine has (``auto`` and ``cpu`` always do)."""
    if device in ("auto", "cpu"):
        return None
    import torch  # noqa: PLC0415 (only for an explicit accelerator)

    if device == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            return "model.device = 'mps': Apple MPS is not available on this machine; use \"cpu\" or \"auto\""
        return None
    build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
    if not torch.cuda.is_available():
        return (f"model.device = '{device}': CUDA is not available on this machine (torch "
                f"{torch.__version__}, {build}); use \"cpu\" or \"auto\"")
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    count = torch.cuda.device_count()
    if index >= count:
        return (f"model.device = '{device}': this machine has {count} CUDA device(s) "
                f"(cuda:0 to cuda:{count - 1})")
    return None


def writable_problem(path: Path, key: str) -> str | None:
    """``path`` (a file alflow will create or update, with companions beside it) can be
    written: it is not a folder, and its folder, or the nearest existing one above, is
    writable. Symbolic links are followed, as the store does."""
    target = Path(os.path.realpath(path))
    if target.is_dir():
        return f"{key}: {path} is a folder, not a file"
    if target.exists() and not os.access(target, os.R_OK | os.W_OK):
        return f"{key}: {path} exists but is not writable"
    return _creatable(target.parent, path, key)


def folder_problem(path: Path, key: str) -> str | None:
    """``path`` is a folder alflow may create and write into (the report folder)."""
    target = Path(os.path.realpath(path))
    if target.exists() and not target.is_dir():
        return f"{key}: {path} is a file, not a folder"
    return _creatable(target, path, key)


def _creatable(folder: Path, path: Path, key: str) -> str | None:
    """``folder`` exists and is writable, or the nearest existing folder above it is."""
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        return f"{key}: cannot create {path}: {folder} is a file, not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{key}: cannot write {path}: the folder {folder} is not writable"
    return None


def scheduler_problem(address: str, timeout: float = SCHEDULER_TIMEOUT_S) -> str | None:
    """A Dask scheduler answers at ``address`` within ``timeout`` seconds.

    Instead of Dask's 30 s connect timeout (and a traceback), a TCP connect, and for ``tcp://``
    the first bytes of the handshake a scheduler sends as soon as it accepts a connection (so a
    proxy or a foreign service that accepts connections is not mistaken for a scheduler). The
    connection is closed at once, nothing is sent. It runs in a thread so that a hanging name
    lookup cannot stall it. ``inproc://`` (a cluster inside this process, for API users) and
    ``ucx://`` are not checked; ``tls://`` and ``ws(s)://`` get the connect only (there the
    client speaks first).
    """
    scheme = address.split("://", 1)[0]
    if scheme not in ("tcp", "tls", "ws", "wss"):
        return None
    try:
        parts = urlsplit(address)
        host, port = parts.hostname, parts.port or _SCHEDULER_PORT
    except ValueError as exc:
        return f"dask.address = '{address}': {exc}"
    if not host:
        return f"dask.address = '{address}': no host name"
    outcome: list[str | None] = []

    def probe() -> None:
        give_up = time.monotonic() + timeout
        try:
            with socket.create_connection((host, port), timeout=timeout) as conn:
                if scheme == "tcp":
                    conn.settimeout(max(0.1, give_up - time.monotonic()))
                    if not conn.recv(1):
                        outcome.append("it closed the connection without a Dask handshake")
                        return
            outcome.append(None)
        except socket.timeout:
            outcome.append(f"no answer within {timeout:g} s")
        except socket.gaierror:
            outcome.append(f"unknown host {host!r}")
        except OSError as exc:
            outcome.append(exc.strerror or str(exc) or type(exc).__name__)

    worker = threading.Thread(target=probe, name="alflow-scheduler-check", daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    if outcome and outcome[0] is None:
        return None
    why = outcome[0] if outcome else f"no answer within {timeout:g} s"
    return (f"dask.address = '{address}': no Dask scheduler reachable at {host}:{port} ({why}); "
            "start the scheduler, or remove dask.address to use a local cluster")
