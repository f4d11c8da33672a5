"""``alflow validate CONFIG``: every check ``alflow run`` makes before it spends anything.

The same :func:`alcore.config.preflight` as ``run`` (oracle, device, files, store folder,
memory, Dask scheduler, deadline), plus the resume check when the store exists, so a config
that validates does not fail at the start of a run. Writes nothing (not even ``__pycache__``
of a ``file.py`` oracle).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from flows.cli.errors import existing_file


def add_parser(sub: Any) -> None:
    v = sub.add_parser("validate", help="check a config without running anything",
                       description="Validate CONFIG: unknown keys and bad values, then what `alflow run` "
                                   "checks before it starts: the oracle, model.device, pool and test "
                                   "files, the store folder, memory, the Dask scheduler, the deadline, "
                                   "and whether an existing store may be resumed with this config.")
    v.add_argument("config", help="campaign TOML file")
    v.add_argument("--no-oracle", action="store_true",
                   help="do not import/build the oracle (skips the checks that need it)")
    v.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alcore.config import describe_deadline, load_config, preflight
    from alcore.config.memory import format_bytes
    from flows.cli.prechecks import resume_changes

    existing_file(args.config, "config")
    cfg = load_config(args.config)
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        checked = preflight(cfg, with_oracle=not args.no_oracle)
    finally:
        sys.dont_write_bytecode = writes_bytecode
    changes = resume_changes(cfg)
    oracle = checked.oracle
    what = f"oracle {oracle.name} (d={oracle.input_dim}, k={oracle.output_dim}), " if oracle else ""
    print(f"{args.config}: ok: campaign '{cfg.campaign.name}', {what}strategy "
          f"{cfg.acquisition.strategy}, up to {cfg.label_budget} labels, store {cfg.store_path}")
    if checked.pool_size is not None:
        print(f"  pool: {checked.pool_size} points")
    if checked.memory is not None:
        print(f"  memory: about {format_bytes(checked.memory.total_bytes)} (network "
              f"{format_bytes(checked.memory.network_bytes)}, pool {format_bytes(checked.memory.pool_bytes)}) "
              f"of {format_bytes(checked.ram_bytes)} RAM")
    if checked.deadline is not None:
        print(f"  deadline: {describe_deadline(checked.deadline)} if started now")
    if changes is not None:
        print(f"  resumes the existing store; changes {', '.join(changes) if changes else 'nothing'}")
    for warning in checked.warnings:
        print(f"alflow: warning: {warning}", file=sys.stderr)
    return 0
