"""The one error type of the campaign steps: a user-fixable reason the campaign cannot go on."""

from __future__ import annotations

__all__ = ["CampaignSetupError"]


class CampaignSetupError(ValueError):
    """The campaign cannot start: a user-fixable problem (one line, names the culprit)."""
