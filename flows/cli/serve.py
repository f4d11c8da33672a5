"""``alflow serve CONFIG --cron``: serve the campaign flow on a schedule (``flow.serve``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flows.cli.errors import existing_file


def add_parser(sub: Any) -> None:
    sv = sub.add_parser("serve", help="run the campaign on a cron schedule (flow.serve)",
                        description="Serve the campaign flow with a cron schedule until interrupted. "
                                    "Schedules fire only with a real `prefect server start` "
                                    "(PREFECT_API_URL set); the ephemeral API has no scheduler.")
    sv.add_argument("config", help="campaign TOML file")
    sv.add_argument("--cron", required=True, help='cron expression, e.g. "0 22 * * *"')
    sv.add_argument("--timezone", default=None, help="IANA timezone of the cron (default: local)")
    sv.add_argument("--name", default=None, help="deployment name (default: the campaign name)")
    sv.add_argument("--run-now", action="store_true", help="also trigger one run immediately")
    sv.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alcore.config import load_config

    existing_file(args.config, "config")
    cfg = load_config(args.config)
    from flows.serve import serve_campaign

    serve_campaign(str(Path(args.config).resolve()), cron=args.cron, timezone=args.timezone,
                   name=args.name or cfg.campaign.name, run_now=args.run_now)
    return 0
