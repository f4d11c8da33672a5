"""``alflow run CONFIG``: start or resume a campaign as a Prefect flow run."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from flows.cli.console import hide_user_error_tracebacks, quiet_prefect
from flows.cli.errors import existing_file, fail, user_error_types
from flows.cli.prechecks import PrefectStartError, precheck_api, precheck_store, start_ephemeral_api
from flows.cli.progress import make_hooks


def add_parser(sub: Any) -> None:
    r = sub.add_parser("run", help="start or resume a campaign", description=(
        "Start the campaign described by CONFIG, or resume it from its store: finished "
        "iterations are kept, requested-but-unlabelled points are sent again, labelled points "
        "never. Ends by printing where the store and the report are."))
    r.add_argument("config", help="campaign TOML file")
    r.add_argument("--verbose", "-v", action="store_true", help="show Prefect's own log lines")
    r.add_argument("--no-progress", action="store_true", help="no progress bars even on a terminal")
    r.set_defaults(func=run)


def start_line(cfg: Any, checked: Any) -> str:
    """``starting campaign 'x' (store S, deadline 2026-01-02 06:30 CET (Europe/Berlin)); Prefect API: ...``"""
    from alcore.config import describe_deadline

    api = os.environ.get("PREFECT_API_URL")
    verb = "resuming" if checked.resume else "starting"
    deadline = f", deadline {describe_deadline(checked.deadline)}" if checked.deadline else ""
    return (f"{verb} campaign '{cfg.campaign.name}' (store {cfg.store_path}{deadline}); Prefect API: "
            f"{api or 'ephemeral (set PREFECT_API_URL to watch it in a Prefect UI)'}")


def run(args: argparse.Namespace) -> int:
    from alcore.config import load_config, preflight

    existing_file(args.config, "config")
    cfg = load_config(args.config)
    checked = preflight(cfg)  # every check that costs no simulator run and creates no file
    precheck_store(cfg)
    precheck_api()
    print(start_line(cfg, checked), flush=True)
    for warning in checked.warnings:
        print(f"alflow: warning: {warning}", file=sys.stderr, flush=True)
    quiet_prefect(args.verbose)
    t_api = time.perf_counter()
    if not os.environ.get("PREFECT_API_URL"):
        print("start-up: starting Prefect's ephemeral API server (10-60 s) ...", flush=True)
    try:
        url = start_ephemeral_api()
    except PrefectStartError as exc:
        print(f"alflow: error: {exc}", file=sys.stderr)
        return 1
    if url:
        print(f"start-up: Prefect API ready in {time.perf_counter() - t_api:.0f} s; creating the flow run ...",
              flush=True)

    from alcore import campaign
    from flows.campaign import campaign_flow
    from flows.handoff import handed_over

    if not args.verbose:
        hide_user_error_tracebacks()

    tty = sys.stdout.isatty() and not args.no_progress
    hooks = make_hooks(tty)
    old = campaign.set_hooks(hooks)
    if hasattr(hooks, "start"):
        hooks.start()
    t0 = time.perf_counter()
    try:
        config_path = str(Path(args.config).resolve())
        with handed_over(config_path, cfg, checked):  # the flow neither reloads nor rechecks it
            state = campaign_flow(config_path, return_state=True)
    except KeyboardInterrupt:
        if hasattr(hooks, "stop"):
            hooks.stop()
        print("interrupted: every acknowledged label is in the store; run the same command to resume",
              file=sys.stderr)
        return 130
    finally:
        if hasattr(hooks, "stop"):
            hooks.stop()
        campaign.set_hooks(old)
    elapsed = time.perf_counter() - t0
    if state.is_failed() or state.is_crashed():
        try:
            state.result()
        except user_error_types() as exc:
            return fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - a real failure: one line here, details in the logs
            print(f"alflow: campaign failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            print(f"store (resumable): {cfg.store_path}", file=sys.stderr)
            return 1
        return 1
    result: dict[str, Any] = {}
    try:
        data = state.result(raise_on_failure=False)
        if isinstance(data, dict):
            result = data
    except Exception:  # noqa: BLE001
        result = {}
    report = result.get("report") or {}
    print(f"campaign '{cfg.campaign.name}' {result.get('state', state.name.lower())} in {elapsed:.0f}s: "
          f"{result.get('labelled', '?')} labelled, {result.get('failed', '?')} failed")
    print(f"store:  {cfg.store_path}")
    if report:
        main = report.get("html") or report.get("markdown") or next(iter(report.values()))
        print(f"report: {main}")
    else:
        print(f"report: not written (run `alflow report {cfg.store_path}`)")
    if result.get("signal"):  # stopped cleanly on Ctrl-C / SIGTERM: the shell's convention
        import signal

        return 128 + int(signal.Signals[result["signal"]])
    return 0
