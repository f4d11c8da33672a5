"""``alflow``: the command line of alflow campaigns.

    alflow run CONFIG              start or resume the campaign (a Prefect flow run)
    alflow status STORE [--json]   where a campaign stands (works while it runs)
    alflow report STORE            write the learning-curve PNG and the summary
    alflow stop STORE              ask a running campaign to stop after its current step
    alflow validate CONFIG         check a config without running anything
    alflow oracles                 list the available oracles
    alflow export STORE            labelled data as CSV or NPZ
    alflow serve CONFIG --cron     run the campaign on a schedule (needs `prefect server start`)

User mistakes (missing file, bad config, wrong or busy store) print one line on stderr and exit
with code 2, never a traceback. Prefect is imported only by the commands that run flows, so
``validate``, ``status`` and ``stop`` answer quickly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

EXIT_USAGE = 2


class UserError(Exception):
    """A mistake the user can fix; printed as one line, exit code 2."""


def _user_error_types() -> tuple[type[BaseException], ...]:
    from alcore.campaign import CampaignSetupError
    from alcore.config import ConfigError

    types: list[type[BaseException]] = [UserError, ConfigError, CampaignSetupError]
    try:
        from alcore.store import StoreError

        types.append(StoreError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from oracles import OracleNotFound

        types.append(OracleNotFound)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def _fail(msg: str) -> int:
    msg = " ".join(str(msg).split())
    print(f"alflow: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _existing_file(path: str, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{what} not found: {path}")
    if p.is_dir():
        raise UserError(f"{what} is a directory, not a file: {path}")
    return p


def _open_store_readonly(path: str) -> Any:
    from alcore.store import CampaignStore

    _existing_file(path, "store")
    return CampaignStore.open(Path(path), mode="r")


# ------------------------------------------------------------------------ progress hooks
def _make_hooks(tty: bool) -> Any:
    from alcore.campaign import Hooks

    class PlainHooks(Hooks):
        """One line per iteration and per notable event: fit for logs and pipes."""

        def iteration_done(self, record: dict[str, Any]) -> None:
            print(_iteration_line(record), flush=True)

        def message(self, text: str) -> None:
            print(text, flush=True)

    if not tty:
        return PlainHooks()

    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    class RichHooks(Hooks):
        """Rich bars: epochs while training, points done/failed with ETA while labelling."""

        def __init__(self) -> None:
            self.console = Console(stderr=False)
            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn(), console=self.console, transient=True,
            )
            self.task: Any = None
            self.ok = self.failed = 0

        def start(self) -> None:
            self.progress.start()

        def stop(self) -> None:
            self.progress.stop()

        def _reset(self, description: str, total: int | None) -> None:
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task(description, total=total, info="")

        def phase(self, name: str, iteration: int, total: int | None = None) -> None:
            if name == "train":
                self._reset(f"it {iteration} train (epochs)", total)
            elif name == "label":
                self.ok = self.failed = 0
                self._reset(f"it {iteration} label (points)", total)
            else:
                self._reset(f"it {iteration} {name}", None)

        def train_epoch(self, epoch: int, n_epochs: int, train_loss: float, val_loss: float | None) -> None:
            if self.task is not None:
                info = f"loss {train_loss:.3g}" + (f" val {val_loss:.3g}" if val_loss == val_loss and val_loss is not None else "")
                self.progress.update(self.task, completed=epoch, total=n_epochs, info=info)

        def label_result(self, ok: bool) -> None:
            if ok:
                self.ok += 1
            else:
                self.failed += 1
            if self.task is not None:
                self.progress.update(self.task, advance=1, info=f"ok {self.ok} failed {self.failed}")

        def phase_done(self, name: str, iteration: int, summary: dict[str, Any]) -> None:
            if self.task is not None:
                self.progress.remove_task(self.task)
                self.task = None

        def iteration_done(self, record: dict[str, Any]) -> None:
            self.progress.console.print(_iteration_line(record))

        def message(self, text: str) -> None:
            self.progress.console.print(text)

    return RichHooks()


def _fmt(x: Any, spec: str = ".4g") -> str:
    return format(x, spec) if isinstance(x, (int, float)) and not isinstance(x, bool) else "-"


def _iteration_line(rec: dict[str, Any]) -> str:
    m, t = rec.get("metrics") or {}, rec.get("timings") or {}
    steps = " ".join(f"{k} {t[k]:.1f}s" for k in ("select", "label", "train", "evaluate") if k in t)
    return (f"iteration {rec['iteration']}: rmse {_fmt(m.get('rmse'))} r2 {_fmt(m.get('r2'), '.3f')} "
            f"({m.get('on', 'test')}), labels {rec.get('labeled')}/{rec.get('budget')}, "
            f"failed {rec.get('failed')} [{steps}]")


def _quiet_prefect(verbose: bool) -> None:
    """Keep Prefect's console to warnings unless --verbose; logs still reach the API/UI."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # offline-friendly
    if verbose:
        return
    import logging

    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL", "WARNING")
    for name in ("distributed", "tornado"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _precheck_api() -> None:
    """With PREFECT_API_URL set, the server must answer (else one line, not a traceback)."""
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=10) as r:
            if r.status == 200:
                return
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(
            f"cannot reach the Prefect API at {url} (PREFECT_API_URL): {reason}; start "
            "`prefect server start` or unset PREFECT_API_URL to use the ephemeral API"
        ) from None


def _precheck_store(cfg: Any) -> None:
    """Fail fast (exit 2, no flow run) on a bad, foreign, mismatched or busy store."""
    from alcore.campaign import MUTABLE_KEYS
    from alcore.store import CampaignStore

    path = cfg.store_path
    if not path.exists():
        return
    if path.is_dir():
        raise UserError(f"campaign.store is a directory: {path}")
    with CampaignStore.open(path, mode="r") as st:
        st.check_config(cfg.to_dict(), mutable=MUTABLE_KEYS)
    CampaignStore.open(path, mode="a").close()  # StoreInUseError while another run holds it


# ----------------------------------------------------------------------------- commands
def cmd_validate(args: argparse.Namespace) -> int:
    from alcore.campaign import resolve_oracle
    from alcore.config import load_config

    _existing_file(args.config, "config")
    cfg = load_config(args.config)
    oracle = resolve_oracle(cfg) if not args.no_oracle else None
    what = f"oracle {oracle.name} (d={oracle.input_dim}, k={oracle.output_dim}), " if oracle else ""
    print(f"{args.config}: ok: campaign '{cfg.campaign.name}', {what}strategy "
          f"{cfg.acquisition.strategy}, up to {cfg.label_budget} labels, store {cfg.store_path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from alcore.campaign import resolve_oracle
    from alcore.config import load_config

    _existing_file(args.config, "config")
    cfg = load_config(args.config)
    resolve_oracle(cfg)
    _precheck_store(cfg)
    _precheck_api()
    _quiet_prefect(args.verbose)

    from alcore import campaign
    from flows.campaign import campaign_flow

    api = os.environ.get("PREFECT_API_URL")
    verb = "resuming" if cfg.store_path.exists() else "starting"
    print(f"{verb} campaign '{cfg.campaign.name}' (store {cfg.store_path}); Prefect API: "
          f"{api or 'ephemeral (set PREFECT_API_URL to watch it in a Prefect UI)'}", flush=True)
    tty = sys.stdout.isatty() and not args.no_progress
    hooks = _make_hooks(tty)
    old = campaign.set_hooks(hooks)
    if hasattr(hooks, "start"):
        hooks.start()
    t0 = time.perf_counter()
    try:
        state = campaign_flow(str(Path(args.config).resolve()), return_state=True)
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
        except _user_error_types() as exc:
            return _fail(str(exc))
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
          f"{result.get('labeled', '?')} labelled, {result.get('failed', '?')} failed")
    print(f"store:  {cfg.store_path}")
    if report:
        main = report.get("html") or report.get("markdown") or next(iter(report.values()))
        print(f"report: {main}")
    else:
        print(f"report: not written (run `alflow report {cfg.store_path}`)")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from alcore.campaign import status

    _existing_file(args.store, "store")
    st = status(args.store)
    if args.json:
        print(json.dumps(st, indent=2, default=_json_default))
        return 0
    print(f"campaign {st['name']} ({st['oracle']}, {st['strategy']}): {st['store']}")
    it = st["iteration"]
    print(f"  iterations finished: {0 if it is None else it + 1} of {st['iterations_planned'] + 1}"
          f"   labels: {st['labeled']} ok, {st['failed']} failed, {st['requested']} pending "
          f"(budget {st['label_budget']}, pool {st['pool']})")
    if st["stop_requested"]:
        print("  stop requested: the campaign stops after its current step")
    for m in st["metrics"]:
        print(f"  it {m['iteration']:>3}: labels {m.get('labeled', '-'):>6}  rmse {_fmt(m.get('rmse'))}"
              f"  r2 {_fmt(m.get('r2'), '.4f')}  nll {_fmt(m.get('nll'))}")
    return 0


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(o)


def cmd_report(args: argparse.Namespace) -> int:
    _open_store_readonly(args.store).close()
    from alcore.report import write_report

    out = Path(args.output) if args.output else Path(args.store).with_name(Path(args.store).stem + "_report")
    paths = write_report(args.store, out)
    for kind, p in (paths or {}).items():
        print(f"{kind}: {p}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    with _open_store_readonly(args.store) as st:
        st.request_stop("alflow stop")
    print(f"stop requested for {args.store}: the campaign stops after its current step "
          "(run the same `alflow run` command to resume)")
    return 0


def cmd_oracles(args: argparse.Namespace) -> int:
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


def cmd_export(args: argparse.Namespace) -> int:
    _open_store_readonly(args.store).close()
    from alcore.store import export_labelled

    out = Path(args.output) if args.output else Path(args.store).with_suffix(f".{args.format}")
    res = export_labelled(args.store, out, format=args.format)
    print(f"exported {res.get('rows', '?')} labelled points to {res.get('path', out)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from alcore.config import load_config

    _existing_file(args.config, "config")
    cfg = load_config(args.config)
    from flows.serve import serve_campaign

    serve_campaign(str(Path(args.config).resolve()), cron=args.cron, timezone=args.timezone,
                   name=args.name or cfg.campaign.name, run_now=args.run_now)
    return 0


# -------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="alflow",
        description="Active-learning campaigns for expensive simulators (Prefect flows, Dask "
                    "fan-out, HDF5 store).",
        epilog="Without PREFECT_API_URL, runs use Prefect's ephemeral API; set it to see runs "
               "in a `prefect server start` UI.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    r = sub.add_parser("run", help="start or resume a campaign", description=(
        "Start the campaign described by CONFIG, or resume it from its store: finished "
        "iterations are kept, requested-but-unlabelled points are sent again, labelled points "
        "never. Ends by printing where the store and the report are."))
    r.add_argument("config", help="campaign TOML file")
    r.add_argument("--verbose", "-v", action="store_true", help="show Prefect's own log lines")
    r.add_argument("--no-progress", action="store_true", help="no progress bars even on a terminal")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("status", help="show where a campaign stands",
                       description="Labels, failures, iterations and metrics of a store (read-only; "
                                   "works while the campaign runs).")
    s.add_argument("store", help="campaign store (.h5)")
    s.add_argument("--json", action="store_true", help="machine-readable JSON")
    s.set_defaults(func=cmd_status)

    rp = sub.add_parser("report", help="write the report (PNG learning curve, markdown/HTML)",
                        description="Write the campaign report next to the store (or to -o DIR).")
    rp.add_argument("store", help="campaign store (.h5)")
    rp.add_argument("-o", "--output", help="output folder (default: <store stem>_report)")
    rp.set_defaults(func=cmd_report)

    st = sub.add_parser("stop", help="ask a running campaign to stop cleanly",
                        description="Request a clean stop: the running campaign stops after its "
                                    "current step; the same `alflow run` resumes it.")
    st.add_argument("store", help="campaign store (.h5)")
    st.set_defaults(func=cmd_stop)

    v = sub.add_parser("validate", help="check a config without running anything",
                       description="Validate CONFIG: unknown keys, bad values, and whether the oracle resolves.")
    v.add_argument("config", help="campaign TOML file")
    v.add_argument("--no-oracle", action="store_true", help="do not import/build the oracle")
    v.set_defaults(func=cmd_validate)

    o = sub.add_parser("oracles", help="list available oracles",
                       description="Built-in oracles and those registered through the 'alflow.oracles' entry point.")
    o.add_argument("--json", action="store_true", help="machine-readable JSON")
    o.set_defaults(func=cmd_oracles)

    e = sub.add_parser("export", help="export labelled data (CSV or NPZ)",
                       description="Write every labelled point (inputs, outputs, wall time, worker).")
    e.add_argument("store", help="campaign store (.h5)")
    e.add_argument("--format", "-f", choices=("csv", "npz"), default="csv", help="output format (default csv)")
    e.add_argument("-o", "--output", help="output file (default: the store path with .csv/.npz)")
    e.set_defaults(func=cmd_export)

    sv = sub.add_parser("serve", help="run the campaign on a cron schedule (flow.serve)",
                        description="Serve the campaign flow with a cron schedule until interrupted. "
                                    "Schedules fire only with a real `prefect server start` "
                                    "(PREFECT_API_URL set); the ephemeral API has no scheduler.")
    sv.add_argument("config", help="campaign TOML file")
    sv.add_argument("--cron", required=True, help='cron expression, e.g. "0 22 * * *"')
    sv.add_argument("--timezone", default=None, help="IANA timezone of the cron (default: local)")
    sv.add_argument("--name", default=None, help="deployment name (default: the campaign name)")
    sv.add_argument("--run-now", action="store_true", help="also trigger one run immediately")
    sv.set_defaults(func=cmd_serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `alflow status STORE | head`: the reader left, that is fine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - map user mistakes to one line + exit 2
        if isinstance(exc, _user_error_types()):
            return _fail(str(exc))
        if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)):
            return _fail(str(exc))
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
