"""What a resume may change: :data:`MUTABLE_KEYS` and :func:`check_resume`.

A store holds one campaign: its oracle, pool, test set, seed, architecture and strategy define
*what* was measured. Changing any of them on resume would mix two campaigns in one store, so
the resume is refused with one line naming the keys. How long and where the campaign runs
(budget, Dask), its name and files, and training knobs that keep the architecture may change;
changing them is recorded in the store (``store.update_config``).

Compatibility across versions: a key absent from a stored config (the store predates the key)
counts as unchanged when the new config holds the key's default, since that default is what the
older version did. Any other difference in an immutable key is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_core import to_jsonable_python

from alcore._util import flatten
from alcore.config.errors import ABSENT, ConfigMismatchError
from alcore.config.sections import CampaignConfig

__all__ = ["MUTABLE_KEYS", "check_resume", "is_mutable"]

# Dotted prefixes: "budget" covers every budget.* key. Not here, on purpose (tests refuse each):
# oracle.*, pool.*, test.*, campaign.seed, campaign.mode, model.hidden/activation/dropout/n_members/per_output/select,
# acquisition.strategy/reg/params.
MUTABLE_KEYS: tuple[str, ...] = (
    "budget",
    "dask",
    "campaign.name",
    "campaign.store",
    "campaign.report_dir",
    "campaign.retrain_every",
    "model.device",
    "model.epochs",
    "model.min_steps",
    "model.polish_steps",
    "model.patience",
    "model.early_stopping",
    "model.val_fraction",
    "model.lr",
    "model.lr_schedule",
    "model.weight_decay",
    "model.batch_size",
    "model.tuning_budget_s",
    "acquisition.batch_size",
    "acquisition.samples",
    "acquisition.avoid_failures",  # how to pick, not what is measured (like batch_size)
)


def is_mutable(key: str, mutable: tuple[str, ...] = MUTABLE_KEYS) -> bool:
    """Whether the dotted ``key`` lies in one of the ``mutable`` prefixes."""
    return any(key == m or key.startswith(m + ".") for m in mutable)


def check_resume(stored: Mapping, new: Mapping, *, source: str | None = None) -> list[str]:
    """The mutable keys that differ between the ``stored`` config and the ``new`` one.

    Both are config dicts as :meth:`CampaignConfig.to_dict` writes them (nested sections).
    Raises :class:`ConfigMismatchError` (a ``ConfigError``: one line, exit code 2) naming every
    immutable key that differs, with both values; ``source`` (e.g. the store path) prefixes it.
    Touches nothing.
    """
    old = flatten(to_jsonable_python(dict(stored)))
    given = flatten(to_jsonable_python(dict(new)))
    changed: list[str] = []
    refused: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(old) | set(given)):
        a, b = old.get(key, ABSENT), given.get(key, ABSENT)
        if a == b or _added_at_default(key, a, b):
            continue
        if is_mutable(key):
            changed.append(key)
        else:
            refused[key] = (a, b)
    if refused:
        raise ConfigMismatchError(refused, MUTABLE_KEYS, source)
    return changed


def _added_at_default(key: str, stored: Any, given: Any) -> bool:
    """A key the stored config lacks, given at its default (or the reverse): unchanged."""
    if stored is not ABSENT and given is not ABSENT:
        return False
    present = given if stored is ABSENT else stored
    default = _default(key)
    return default is not ABSENT and present == default


def _default(key: str) -> Any:
    """The JSON default of a dotted section key (``acquisition.samples`` -> 100), or ABSENT."""
    section, _, name = key.partition(".")
    field = CampaignConfig.model_fields.get(section)
    model = getattr(field, "annotation", None)
    sub = getattr(model, "model_fields", {}).get(name) if name and "." not in name else None
    if sub is None or sub.is_required():
        return ABSENT
    return to_jsonable_python(sub.get_default(call_default_factory=True))
