"""Building a config's oracle: ``[oracle] name`` and ``params`` through ``oracles.resolve``.

Here, beside the config, because building the oracle is the first check of a config
(:func:`~alcore.config.preflight`): a typo in ``oracle.name`` or an unknown parameter of a plain
function is a config error (one line, exit code 2), found before anything runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alcore.config.errors import ConfigError
from alcore.config.sections import CampaignConfig

if TYPE_CHECKING:
    from oracles import Oracle

__all__ = ["build_oracle"]


def build_oracle(cfg: CampaignConfig) -> Oracle:
    """The oracle of ``cfg``; ``ConfigError`` (one line naming the oracle) when it cannot be built.

    User code (a ``file.py:attr``) may raise anything while it is imported, even a SyntaxError:
    every such error is the user's to fix, so it becomes one line, not a traceback.
    """
    import oracles  # noqa: PLC0415  (keeps `alflow status` light)

    params = dict(cfg.oracle.params)
    if cfg.oracle.bounds is not None:
        params["bounds"] = cfg.oracle.bounds
    try:
        return oracles.resolve(cfg.oracle.name, **params)
    except Exception as exc:  # noqa: BLE001 - user code/config
        text = str(exc).strip()
        msg = text.splitlines()[0] if text else ""
        kind = type(exc).__name__
        detail = msg if kind in ("ValueError", "OracleNotFound") else f"{kind}: {msg}"
        raise ConfigError([f"oracle '{cfg.oracle.name}': {detail}"], cfg.source) from None
