"""Which config changes a resume may make (the store's copy of the rule, to be retired).

The resume rules move next to the config (``alcore.config.MUTABLE_KEYS`` and
``check_resume``, INTERFACES.md section 3). Until both branches are merged the store keeps
this copy so that ``CampaignStore.check_config`` / ``update_config(mutable=...)`` callers keep
working; then the lead deletes this module and those two arguments.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from alcore._util import flatten

from .errors import ConfigMismatchError

#: Config sections that may differ on resume unless the caller says otherwise.
DEFAULT_MUTABLE: tuple[str, ...] = ("budget", "dask", "campaign.deadline")

_MISSING = object()


def _is_mutable(key: str, mutable: Iterable[str]) -> bool:
    return any(key == m or key.startswith(m + ".") for m in mutable)


def check_config(stored: Mapping, given: Mapping, mutable: Iterable[str], where: object) -> None:
    """Raise :class:`ConfigMismatchError` if ``given`` differs from ``stored`` outside the
    ``mutable`` sections (dotted prefixes). Both are plain JSON-like dicts."""
    a, b = flatten(dict(stored)), flatten(dict(given))
    mutable = tuple(mutable)
    diffs = {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
             if not _is_mutable(k, mutable) and a.get(k, _MISSING) != b.get(k, _MISSING)}
    if diffs:
        detail = "; ".join(f"{k}: stored {x!r}, given {y!r}" for k, (x, y) in diffs.items())
        raise ConfigMismatchError(
            f"config does not match the campaign stored in {where} "
            f"({len(diffs)} key(s): {detail}); only {', '.join(mutable) or 'nothing'} "
            "may change on resume", diffs)
