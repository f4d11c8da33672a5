"""``alflow export STORE``: every labelled point with its outputs, wall time and worker."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flows.cli.errors import open_store_readonly


def add_parser(sub: Any) -> None:
    e = sub.add_parser("export", help="export labelled data (CSV or NPZ)",
                       description="Write every labelled point (inputs, outputs, wall time, worker).")
    e.add_argument("store", help="campaign store (.h5)")
    e.add_argument("--format", "-f", choices=("csv", "npz"), default="csv", help="output format (default csv)")
    e.add_argument("-o", "--output", help="output file (default: the store path with .csv/.npz)")
    e.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    open_store_readonly(args.store).close()
    from alcore.store import export_labelled

    out = Path(args.output) if args.output else Path(args.store).with_suffix(f".{args.format}")
    res = export_labelled(args.store, out, format=args.format)
    print(f"exported {res.get('rows', '?')} labelled points to {res.get('path', out)}")
    return 0
