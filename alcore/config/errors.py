"""The errors of a config: one line each, naming the file and every offending key."""

from __future__ import annotations

from typing import Any

__all__ = ["ConfigError", "ConfigMismatchError", "ABSENT"]


class _Absent:
    """A key present on one side of a comparison only (prints as ``(absent)``)."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT = _Absent()


class ConfigError(ValueError):
    """A config that cannot run. ``str(err)`` is one line naming every offending key."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + "; ".join(self.problems))


class ConfigMismatchError(ConfigError):
    """A resume whose config changes keys that define the campaign (see :data:`MUTABLE_KEYS`).

    ``differences`` maps each dotted key to ``(stored, given)``; ``keys`` lists them sorted.
    """

    def __init__(self, differences: dict[str, tuple[Any, Any]], allowed: tuple[str, ...],
                 source: str | None = None):
        self.differences = dict(differences)
        self.keys = sorted(self.differences)
        detail = "; ".join(f"{k}: stored {a!r}, given {b!r}" for k, (a, b) in sorted(differences.items()))
        super().__init__([
            f"config does not match the stored campaign in {len(self.keys)} key(s) that define it "
            f"({detail}); use a new campaign.store for a different campaign (on resume only "
            f"{', '.join(allowed)} may change)"
        ], source)

