"""``alflow repair STORE``: salvage a store whose journal is corrupt (docs/store.md).

Opening a store with a damaged journal is refused (one line, exit 2) so that no acknowledged
label disappears silently; this command is the explicit way out. It keeps a backup of the
journal, keeps every record that verifies, and prints exactly what it dropped.
"""

from __future__ import annotations

import argparse
from typing import Any

from flows.cli.errors import existing_file


def add_parser(sub: Any) -> None:
    r = sub.add_parser("repair", help="salvage a store whose journal is corrupt",
                       description="Keep every journal record that verifies, fold them into the "
                                   "store, keep a backup of the original journal and say exactly "
                                   "what was dropped. A store that opens cleanly is left alone.")
    r.add_argument("store", help="campaign store (.h5)")
    r.add_argument("--dry-run", action="store_true", help="only say what would be kept and dropped")
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alcore.store import repair_store

    existing_file(args.store, "store")
    report = repair_store(args.store, dry_run=args.dry_run)
    for line in report.lines():
        print(line)
    return 0
