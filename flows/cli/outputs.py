"""Where a command may write: never onto a store or its companion files, never over a file
the user did not say may go (``--force``), never a half-written file under the final name.

Shared by ``alflow predict`` and ``alflow export-model``; the rules are the store's own
(:meth:`alcore.store.files.StoreFiles.owns`, :func:`alcore.store.fsutil.atomic_write`), as
``alflow export`` uses them.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO

from flows.cli.errors import UserError


def check_output_path(out: Path, store: Path, *, force: bool) -> Path:
    """``out`` if a command may write it; a UserError (nothing written) otherwise (the rule is
    the store's :func:`alcore.store.export.check_target`)."""
    from alcore.store.errors import ExportTargetError
    from alcore.store.export import check_target

    try:
        return check_target(store, out, force)
    except ExportTargetError as exc:
        raise UserError(str(exc)) from None


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
