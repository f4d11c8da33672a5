"""``alflow``: the command line of alflow campaigns.

    alflow run CONFIG              start or resume the campaign (a Prefect flow run)
    alflow status STORE [--json]   where a campaign stands (works while it runs)
    alflow report STORE            write the learning-curve PNG and the summary
    alflow stop STORE              ask a running campaign to stop after its current step
    alflow validate CONFIG         check a config without running anything
    alflow oracles                 list the available oracles
    alflow export STORE            labelled data as CSV or NPZ
    alflow repair STORE            salvage a store whose journal is corrupt
    alflow predict STORE INPUT     the surrogate's mean and std at new points (CSV/.npy/.npz)
    alflow export-model STORE      the surrogate as an ONNX file
    alflow serve CONFIG --cron     run the campaign on a schedule (needs `prefect server start`)
    alflow notify STORE|CONFIG --webhook URL   call a webhook when a campaign ends or stalls

One module per command (``flows/cli/<command>.py``), each with ``add_parser(sub)`` and
``run(args) -> int``; a new command is a new module listed in :data:`COMMANDS`.

User mistakes (missing file, bad config, wrong or busy store) print one line on stderr and exit
with code 2, never a traceback. Prefect is imported only by the commands that run flows, so
``validate``, ``status`` and ``stop`` answer quickly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from flows.cli import (export, export_model, notify, oracle_list, predict, repair, report, run,
                       serve, status, stop, validate)
from flows.cli.errors import EXIT_USAGE, UserError, fail, user_error_types

__all__ = ["main", "build_parser", "UserError", "EXIT_USAGE"]

# In the order `alflow --help` lists them.
COMMANDS = (run, status, report, stop, validate, oracle_list, export, repair, predict, export_model,
            serve, notify)


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
    for command in COMMANDS:
        command.add_parser(sub)
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
        if isinstance(exc, user_error_types()):
            return fail(str(exc))
        if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)):
            return fail(str(exc))
        raise
