"""``alflow notify STORE_OR_CONFIG --webhook URL``: be told when a campaign ends or stalls."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from flows.cli.errors import UserError, existing_file


def add_parser(sub: Any) -> None:
    n = sub.add_parser("notify", help="call a webhook when a campaign ends or stalls", description=(
        "Create Prefect automations (on the server named by PREFECT_API_URL) that POST a JSON "
        "message to URL when a flow run of the campaign ends Completed, Failed or Crashed, and "
        "when it stores no new label for --stale-minutes. Rerunning replaces them."))
    n.add_argument("target", metavar="STORE_OR_CONFIG", help="the campaign's store (.h5) or config (.toml)")
    n.add_argument("--webhook", required=True, metavar="URL", help="http(s) URL to POST to (Slack, ntfy, ...)")
    n.add_argument("--stale-minutes", type=float, default=60.0, metavar="N",
                   help="no new label for N minutes is reported (default 60; at least 10 s)")
    n.set_defaults(func=run)


def campaign_name(target: str) -> str:
    """The campaign's name from its config (.toml) or its store."""
    path = existing_file(target, "store or config")
    if path.suffix.lower() == ".toml":
        from alcore.config import load_config

        return load_config(path).campaign.name
    from alcore.store import CampaignStore

    with CampaignStore.open(Path(path), mode="r") as st:
        return str((st.config.get("campaign") or {}).get("name"))


def check_args(args: argparse.Namespace) -> None:
    """Every user mistake, before anything is created."""
    url = urlparse(args.webhook)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise UserError(f"--webhook: '{args.webhook}' is not an http(s) URL")
    if not args.stale_minutes * 60 >= 10:  # the shortest window of a Prefect proactive trigger
        raise UserError(f"--stale-minutes: {args.stale_minutes:g} is below 10 s, the shortest window Prefect watches")
    if not os.environ.get("PREFECT_API_URL"):
        raise UserError("automations run on a Prefect server: start `prefect server start` and set "
                        "PREFECT_API_URL (the ephemeral API stops with each run)")


def run(args: argparse.Namespace) -> int:
    name = campaign_name(args.target)
    check_args(args)
    from flows.cli.prechecks import precheck_api
    from flows.notify import Notification, install

    precheck_api()
    n = Notification(campaign=name, webhook_url=args.webhook, stale_minutes=float(args.stale_minutes))
    install(n)
    print(f"notify: campaign '{name}' -> {args.webhook}")
    print(f"  automation '{n.names[0]}': a flow run ended Completed, Failed or Crashed")
    print(f"  automation '{n.names[1]}': no new label for {n.stale_minutes:g} minutes")
    print("  (see them under Automations in the Prefect UI; rerun to change the URL or N)")
    return 0
