"""User errors of the command line: one line on stderr, exit code 2, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


class UserError(Exception):
    """A mistake the user can fix; printed as one line, exit code 2."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Every exception type that means "the user can fix this" (imported lazily: keeps start-up light)."""
    from alcore.campaign import CampaignSetupError
    from alcore.config import ConfigError
    from alcore.store import StoreError
    from oracles import OracleNotFound

    return (UserError, ConfigError, CampaignSetupError, StoreError, OracleNotFound)


def fail(msg: str) -> int:
    """Print ``alflow: error: <msg>`` as one line on stderr; returns the exit code."""
    msg = " ".join(str(msg).split())
    print(f"alflow: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def existing_file(path: str, what: str) -> Path:
    """``path`` as a Path, or a UserError naming ``what`` when it is missing or a directory."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{what} not found: {path}")
    if p.is_dir():
        raise UserError(f"{what} is a directory, not a file: {path}")
    return p


def open_store_readonly(path: str) -> Any:
    """The campaign store at ``path`` opened read-only (a UserError when it is missing)."""
    from alcore.store import CampaignStore

    existing_file(path, "store")
    return CampaignStore.open(Path(path), mode="r")


def json_default(o: Any) -> Any:
    """``json.dumps`` fallback for numpy scalars and arrays."""
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def fmt(x: Any, spec: str = ".4g") -> str:
    """A number formatted with ``spec``; '-' for anything that is not a number."""
    return format(x, spec) if isinstance(x, (int, float)) and not isinstance(x, bool) else "-"
