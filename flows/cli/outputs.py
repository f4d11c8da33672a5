"""Where a command may write: never onto a store or its companion files, never over a file
the user did not say may go (``--force``), never a half-written file under the final name.

Shared by ``alflow predict`` and ``alflow export-model``. The companion rule matches the store
engineer's ``StoreFiles.owns`` (``<store>``, ``<store><suffix>`` and ``<store><suffix>.<any>``
for the journal, lock, temp and stop files, symlinks resolved); switch to it once merged.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

from flows.cli.errors import UserError

_COMPANION_SUFFIXES = (".journal", ".lock", ".tmp", ".stop")


def _real(path: Path) -> Path:
    return Path(os.path.realpath(os.path.abspath(path)))


def belongs_to_store(path: Path, store: Path) -> bool:
    """True if ``path`` is the store file or one of its companions (after resolving links)."""
    target = _real(path)
    for s in {_real(store), Path(os.path.abspath(store))}:
        if target == s:
            return True
        if target.parent == s.parent:
            for suffix in _COMPANION_SUFFIXES:
                side = s.name + suffix
                if target.name == side or target.name.startswith(side + "."):
                    return True
    return False


def check_output_path(out: Path, store: Path, *, force: bool) -> Path:
    """``out`` if a command may write it; a UserError (nothing written) otherwise."""
    if belongs_to_store(out, store):
        raise UserError(f"refusing to write {out}: it is the campaign store {store} or one of "
                        "its companion files (choose another output path)")
    if out.is_dir():
        raise UserError(f"output {out} is a directory; give a file name")
    if out.exists() and not force:
        raise UserError(f"output {out} already exists; pass --force to overwrite it")
    return out


def write_atomically(out: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write through ``<out>.part`` and rename, so ``out`` is either old or complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
