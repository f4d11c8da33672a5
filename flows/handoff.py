"""The config that ``alflow run`` loaded and checked, handed to its flow run in this process.

``alflow run`` loads the TOML file and runs :func:`~alcore.config.preflight` before Prefect
starts, so that a bad config is one line and exit code 2. The flow takes only ``config_path``
(flow parameters are recorded by the Prefect API, and a deployment or ``alflow serve`` has
nothing else to pass), so its ``initialise`` task would load and check the same file again and
build the oracle a second time. :func:`handed_over` lends the CLI's config and preflight result
to the flow run it starts in the same process; :func:`take` hands them to ``initialise`` once.
A flow run started any other way finds nothing and loads the file itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alcore.config import CampaignConfig, Preflight

__all__ = ["Prepared", "handed_over", "take"]


@dataclass(frozen=True)
class Prepared:
    """A config loaded from ``config_path`` and what :func:`preflight` checked and built for it."""

    config: CampaignConfig
    checked: Preflight


_prepared: dict[str, Prepared] = {}
_lock = threading.Lock()


def _key(config_path: str | Path) -> str:
    return str(Path(config_path).expanduser().resolve())


@contextmanager
def handed_over(config_path: str | Path, config: CampaignConfig, checked: Preflight) -> Iterator[None]:
    """While the block runs, the first :func:`take` of ``config_path`` gets ``config`` and ``checked``."""
    key = _key(config_path)
    with _lock:
        _prepared[key] = Prepared(config, checked)
    try:
        yield
    finally:
        with _lock:
            _prepared.pop(key, None)


def take(config_path: str | Path) -> Prepared | None:
    """What was handed over for ``config_path`` (once: a second take loads the file again)."""
    with _lock:
        return _prepared.pop(_key(config_path), None)
