"""``alflow export STORE``: every labelled point with its outputs and how it was evaluated."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flows.cli.errors import existing_file


def add_parser(sub: Any) -> None:
    e = sub.add_parser("export", help="export labelled data (CSV or NPZ)",
                       description="Write every labelled point: inputs, outputs, wall time, "
                                   "worker, attempts and submitted/started/finished times.")
    e.add_argument("store", help="campaign store (.h5)")
    e.add_argument("--format", "-f", choices=("csv", "npz"), default="csv", help="output format (default csv)")
    e.add_argument("-o", "--output", help="output file (default: the store path with .csv/.npz); "
                                          "never the store or one of its files")
    e.add_argument("--include-failed", action="store_true",
                   help="also export failed points, with status, kind and the full reason")
    e.add_argument("--force", action="store_true", help="overwrite an existing output file")
    e.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alcore.store import export_labelled

    existing_file(args.store, "store")
    out = Path(args.output) if args.output else Path(args.store).with_suffix(f".{args.format}")
    res = export_labelled(args.store, out, format=args.format,
                          include_failed=args.include_failed, force=args.force)
    what = "labelled and failed" if args.include_failed else "labelled"
    print(f"exported {res['rows']} {what} points to {res['path']}")
    return 0
