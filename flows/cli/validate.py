"""``alflow validate CONFIG``: check a config (and build its oracle) without running anything."""

from __future__ import annotations

import argparse
from typing import Any

from flows.cli.errors import existing_file


def add_parser(sub: Any) -> None:
    v = sub.add_parser("validate", help="check a config without running anything",
                       description="Validate CONFIG: unknown keys, bad values, and whether the oracle resolves.")
    v.add_argument("config", help="campaign TOML file")
    v.add_argument("--no-oracle", action="store_true", help="do not import/build the oracle")
    v.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alcore.campaign import resolve_oracle
    from alcore.config import load_config

    existing_file(args.config, "config")
    cfg = load_config(args.config)
    oracle = resolve_oracle(cfg) if not args.no_oracle else None
    what = f"oracle {oracle.name} (d={oracle.input_dim}, k={oracle.output_dim}), " if oracle else ""
    print(f"{args.config}: ok: campaign '{cfg.campaign.name}', {what}strategy "
          f"{cfg.acquisition.strategy}, up to {cfg.label_budget} labels, store {cfg.store_path}")
    return 0
