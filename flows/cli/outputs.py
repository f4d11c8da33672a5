"""Where a command may write: never onto a store or its companion files, never over a file
the user did not say may go (``--force``), never a half-written file under the final name.

Shared by ``alflow predict`` and ``alflow export-model``; the rules are the store's own
(:meth:`alcore.store.files.StoreFiles.owns`, :func:`alcore.store.fsutil.atomic_write`), as
``alflow export`` uses them.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

from flows.cli.errors import UserError


def check_output_path(out: Path, store: Path, *, force: bool) -> Path:
    """``out`` if a command may write it; a UserError (nothing written) otherwise."""
    from alcore.store.files import StoreFiles

    if StoreFiles.of(store).owns(out):
        raise UserError(f"refusing to write {out}: it is the campaign store {store} or one of "
                        "its files (journal, lock, temp, stop); choose another output path")
    if out.is_dir():
        raise UserError(f"output {out} is a directory; give a file name")
    if os.path.lexists(out) and not force:
        raise UserError(f"output {out} already exists; pass --force to overwrite it")
    return out


def write_atomically(out: Path, write: Callable[[IO[bytes]], None], *, force: bool) -> None:
    """Write through ``<out>.part``, fsync and rename, so ``out`` is either old or complete
    (and, without ``force``, never replaces a file that appeared meanwhile)."""
    from alcore.store.fsutil import atomic_write

    def to_path(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            write(fh)

    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(out, to_path, tmp=out.with_name(out.name + ".part"), overwrite=force)
    except FileExistsError:
        raise UserError(f"output {out} already exists; pass --force to overwrite it") from None
