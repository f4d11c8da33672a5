"""The flow run's name, ``<campaign> it <first>-<last>``, given once the session is open.

Prefect names a run before its flow body starts, from the parameters alone (here only
``config_path``). Naming it there meant loading the config and opening the store read-only
(a replay of its whole journal) for a label, then doing both again in ``initialise``. So the
run starts as ``campaign <config file stem>`` (the name it keeps when the config or store
cannot be opened) and the flow renames it from ``initialise``'s summary, which the open
session already computed. This works the same for ``alflow run``, ``alflow serve`` and a
deployment's run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect.context import FlowRunContext
from prefect.runtime import flow_run as runtime_flow_run

__all__ = ["provisional_name", "run_name", "rename_run"]

log = logging.getLogger(__name__)


def provisional_name() -> str:
    """``campaign <config file stem>``: the name until the session is open (no file is read)."""
    params = runtime_flow_run.parameters or {}
    return f"campaign {Path(str(params.get('config_path', '?'))).stem}"


def run_name(summary: Mapping[str, Any]) -> str:
    """``<campaign> it <first>-<last>`` from ``initialise``'s summary.

    ``first`` is the iteration this run starts with (after the last finished one), ``last`` the
    config's ``budget.iterations``; a resume with nothing left is named ``it <first>-<first>``.
    """
    first = int(summary["next_iteration"])
    return f"{summary['name']} it {first}-{max(first, int(summary['last_iteration']))}"


def rename_run(name: str) -> bool:
    """Rename the current flow run to ``name`` through the Prefect API; ``True`` if renamed.

    Best effort: an unreachable API is a warning, never a failed campaign. The run context's
    copy is renamed too, so later run loggers (flow and tasks) use the new name.
    """
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None or ctx.flow_run.name == name:
        return False
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            client.set_flow_run_name(ctx.flow_run.id, name=name)
    except Exception as exc:  # noqa: BLE001 - a name is not worth a failed campaign
        log.warning("could not rename flow run %r to %r: %s", ctx.flow_run.name, name, exc)
        return False
    ctx.flow_run.name = name
    return True
