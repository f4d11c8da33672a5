"""``alflow stop STORE``: ask a running campaign to stop cleanly after its current step."""

from __future__ import annotations

import argparse
from typing import Any

from flows.cli.errors import open_store_readonly


def add_parser(sub: Any) -> None:
    st = sub.add_parser("stop", help="ask a running campaign to stop cleanly",
                        description="Request a clean stop: the running campaign stops after its "
                                    "current step; the same `alflow run` resumes it.")
    st.add_argument("store", help="campaign store (.h5)")
    st.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with open_store_readonly(args.store) as st:
        st.request_stop("alflow stop")
    print(f"stop requested for {args.store}: the campaign stops after its current step "
          "(run the same `alflow run` command to resume)")
    return 0
