"""``alflow serve CONFIG --cron``: serve the campaign flow on a schedule (``flow.serve``).

Everything a user typed is checked before Prefect registers anything: the config (the same
:func:`alcore.config.preflight` as ``alflow run``, except the Dask scheduler, which a nightly
job may start later), the cron expression (Prefect's own parser) and the time zone (IANA).
A mistake is one line, exit code 2, instead of a traceback from inside ``flow.serve``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flows.cli.errors import UserError, existing_file


def add_parser(sub: Any) -> None:
    sv = sub.add_parser("serve", help="run the campaign on a cron schedule (flow.serve)",
                        description="Serve the campaign flow with a cron schedule until interrupted. "
                                    "Schedules fire only with a real `prefect server start` "
                                    "(PREFECT_API_URL set); the ephemeral API has no scheduler.")
    sv.add_argument("config", help="campaign TOML file")
    sv.add_argument("--cron", required=True, help='cron expression, e.g. "0 22 * * *"')
    sv.add_argument("--timezone", default=None, help="IANA timezone of the cron (default: the machine's)")
    sv.add_argument("--name", default=None, help="deployment name (default: the campaign name)")
    sv.add_argument("--run-now", action="store_true", help="also trigger one run immediately")
    sv.set_defaults(func=run)


def check_schedule(cron: str, timezone: str | None) -> None:
    """``UserError`` (one line) unless ``cron`` parses (as Prefect parses it) and ``timezone`` is IANA."""
    from alcore.config.deadline import timezone_problem

    if timezone is not None:
        problem = timezone_problem(timezone)
        if problem:
            raise UserError(f"--timezone {problem}")
    from pydantic import ValidationError

    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron, timezone=timezone)
    except ValidationError:
        raise UserError(f"--cron {cron!r} is not a cron expression: five fields, minute hour day-of-month "
                        "month day-of-week (e.g. \"0 22 * * *\" for 22:00 every day)") from None


def run(args: argparse.Namespace) -> int:
    from alcore.config import load_config, preflight

    existing_file(args.config, "config")
    cfg = load_config(args.config)
    check_schedule(args.cron, args.timezone)
    preflight(cfg, reach_scheduler=False)
    from flows.serve import serve_campaign

    serve_campaign(str(Path(args.config).resolve()), cron=args.cron, timezone=args.timezone,
                   name=args.name or cfg.campaign.name, run_now=args.run_now)
    return 0
