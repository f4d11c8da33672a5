"""Where the files of one store live: the HDF5 file and its companions, from ONE real path.

Why resolve once: a store opened through a symlink (``link/camp.h5 -> real/camp.h5``) must keep
the link a link (the fold's atomic replace targets the real file) and must put its journal,
lock, temp and stop files next to the real file, so that a writer through the link and a
writer through the real path take the same lock. Everything that names a store file asks
:class:`StoreFiles`; nothing else builds a companion path.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

JOURNAL_SUFFIX = ".journal"
LOCK_SUFFIX = ".lock"
TMP_SUFFIX = ".tmp"
STOP_SUFFIX = ".stop"
#: A companion is ``<store><suffix>`` or ``<store><suffix>.<anything>`` (backups, temp files).
COMPANION_SUFFIXES = (JOURNAL_SUFFIX, LOCK_SUFFIX, TMP_SUFFIX, STOP_SUFFIX)


@dataclass(frozen=True)
class StoreFiles:
    """Paths of a store's files, all derived from the resolved real path of the store."""

    given: Path  # absolute, as the user named it (for messages)
    real: Path  # symlinks resolved: the file that is read and atomically replaced

    @classmethod
    def of(cls, path: str | os.PathLike) -> "StoreFiles":
        given = Path(os.path.abspath(path))  # robust against a later chdir
        return cls(given=given, real=Path(os.path.realpath(given)))

    def _side(self, suffix: str) -> Path:
        return self.real.with_name(self.real.name + suffix)

    @property
    def journal(self) -> Path:
        return self._side(JOURNAL_SUFFIX)

    @property
    def journal_tmp(self) -> Path:
        return self._side(JOURNAL_SUFFIX + TMP_SUFFIX)

    @property
    def lock(self) -> Path:
        return self._side(LOCK_SUFFIX)

    @property
    def tmp(self) -> Path:
        """Where a fold or the creation builds the next HDF5 file before the rename."""
        return self._side(TMP_SUFFIX)

    @property
    def stop(self) -> Path:
        return self._side(STOP_SUFFIX)

    def backup(self, what: str, stamp: str) -> Path:
        """A new, unused name for a kept copy: ``<store>.journal.<what>-<stamp>[-n]``."""
        base = self._side(f"{JOURNAL_SUFFIX}.{what}-{stamp}")
        candidate, n = base, 1
        while os.path.lexists(candidate):
            candidate = base.with_name(f"{base.name}-{n}")
            n += 1
        return candidate

    def owns(self, path: str | os.PathLike) -> bool:
        """True if ``path`` is the store file or a companion of it, through symlinks too.

        A companion is ``<name><suffix>[.<more>]`` where ``<name>`` resolves to this store:
        beside the real file, beside the name the user gave, or beside any link to the store
        (older alflow put the journal next to the link).
        """
        given = Path(os.path.abspath(path))
        target = Path(os.path.realpath(given))
        if target == self.real:
            return True
        return any(os.path.realpath(base) == str(self.real)
                   for p in {given, target} for base in _companion_bases(p))


def _companion_bases(p: Path) -> list[Path]:
    """The store paths that ``p`` would be a companion of, judged by its name alone."""
    out, name = [], p.name
    for suffix in COMPANION_SUFFIXES:
        i = name.find(suffix, 1)
        while i > 0:
            rest = name[i:]
            if rest == suffix or rest.startswith(suffix + "."):
                out.append(p.with_name(name[:i]))
            i = name.find(suffix, i + 1)
    return out
