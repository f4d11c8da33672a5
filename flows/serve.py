"""``alflow serve``: the single-command path to nightly runs (``flow.serve`` with a cron).

``flow.serve`` registers a deployment and polls for its scheduled runs in this process. The
schedule only fires against a real ``prefect server start`` (``PREFECT_API_URL`` set): the
ephemeral API that alflow uses by default has no scheduler, so we say so instead of waiting
forever for a run that never comes.
"""

from __future__ import annotations

import sys

from prefect.schedules import Cron
from prefect.settings import PREFECT_API_URL

from alcore.config import machine_timezone_name
from flows.campaign import campaign_flow


def local_timezone() -> str:
    """The IANA name of the machine's time zone (cron times are local); "UTC" when unknown
    (abbreviations such as "CET" are not IANA names: pass --timezone instead)."""
    return machine_timezone_name() or "UTC"


def serve_campaign(config_path: str, cron: str, timezone: str | None = None, name: str = "campaign",
                   run_now: bool = False) -> None:
    """Serve ``campaign_flow(config_path)`` on ``cron`` until interrupted."""
    if not PREFECT_API_URL.value():
        print("alflow serve: PREFECT_API_URL is not set: schedules need a real Prefect server "
              "(`prefect server start`, then `export PREFECT_API_URL=http://127.0.0.1:4200/api`); "
              "the ephemeral API has no scheduler, so no scheduled run would ever start.",
              file=sys.stderr)
    tz = timezone or local_timezone()
    slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower()).strip("-") or "campaign"
    deployment = campaign_flow.to_deployment(
        name=slug, parameters={"config_path": config_path},
        schedules=[Cron(cron, timezone=tz)],
        description=f"alflow campaign {name} from {config_path}",
        tags=["alflow"],
    )
    if run_now:
        import threading

        from prefect.deployments import run_deployment

        def _trigger() -> None:
            import time

            time.sleep(5)  # let serve() register the deployment first
            run_deployment(f"{campaign_flow.name}/{slug}", timeout=0)

        threading.Thread(target=_trigger, daemon=True).start()
    print(f"serving {campaign_flow.name}/{slug}: cron '{cron}' ({tz}); Ctrl-C to stop")
    from prefect import serve

    serve(deployment)
