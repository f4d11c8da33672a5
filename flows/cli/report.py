"""``alflow report STORE``: the PNG learning curve and the markdown/HTML summary."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flows.cli.errors import open_store_readonly


def add_parser(sub: Any) -> None:
    rp = sub.add_parser("report", help="write the report (PNG learning curve, markdown/HTML)",
                        description="Write the campaign report next to the store (or to -o DIR).")
    rp.add_argument("store", help="campaign store (.h5)")
    rp.add_argument("-o", "--output", help="output folder (default: <store stem>_report)")
    rp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    open_store_readonly(args.store).close()
    from alcore.report import write_report

    out = Path(args.output) if args.output else Path(args.store).with_name(Path(args.store).stem + "_report")
    paths = write_report(args.store, out)
    for kind, p in (paths or {}).items():
        print(f"{kind}: {p}")
    return 0
