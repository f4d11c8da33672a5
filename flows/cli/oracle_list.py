"""``alflow oracles``: the built-in and plug-in oracles, one line each."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    o = sub.add_parser("oracles", help="list available oracles",
                       description="Built-in oracles and those registered through the 'alflow.oracles' entry point.")
    o.add_argument("--json", action="store_true", help="machine-readable JSON")
    o.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import oracles

    avail = oracles.available()
    if args.json:
        print(json.dumps(avail, indent=2))
        return 0
    width = max((len(k) for k in avail), default=0)
    for name, desc in avail.items():
        print(f"{name:<{width}}  {desc}")
    print("\nAlso: 'package.module:attr' or 'path/to/file.py:attr' (a plain f(x) needs oracle.bounds).")
    return 0
