"""The one error type of the campaign steps: a user-fixable reason the campaign cannot go on."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alcore.campaign.session import CampaignSession

__all__ = ["CampaignSetupError", "setup_error_message"]


class CampaignSetupError(ValueError):
    """The campaign cannot start: a user-fixable problem (one line, names the culprit)."""


def setup_error_message(session: CampaignSession, reason: str | None) -> str:
    """One line for an oracle that fails the same way for every point (batch and async mode)."""
    msg = f"oracle '{session.config.oracle.name}': {reason or 'failed'}"
    if len(session.store.labelled_indices()) == 0:
        msg += (f" (no label was stored yet: after fixing [oracle], delete {session.store_path} "
                "and run again)")
    return msg
