"""``alflow predict STORE INPUT [-o OUT]``: the campaign's surrogate on new points.

Reads the store read-only (works while the campaign runs, like ``status``), picks the model
with the rule of ``alcore.load_surrogate`` (``--model best|last|N``) and writes the inputs,
``<output>_mean``, ``<output>_std`` (calibrated) and an ``extrapolated`` flag per point: CSV
on stdout, or OUT (.csv or .npz).  The closing line says how wide the 90% interval is in stds
(the calibration may choose Student-t tails: :mod:`alcore.predictive`). Every check (paths, columns, values, model) runs before
anything is written; OUT is never the store or one of its files, and an existing OUT is only
replaced with ``--force``.
"""
from __future__ import annotations

import argparse
import io
import sys
import warnings
from pathlib import Path
from typing import Any

from flows.cli.errors import UserError, existing_file
from flows.cli.outputs import check_output_path, write_atomically
from flows.cli.tables import OUTPUT_SUFFIXES, Points, read_points, write_csv, write_npz


def add_parser(sub: Any) -> None:
    p = sub.add_parser("predict", help="predict new points with the campaign's surrogate",
                       description="Predict the mean and calibrated std of every output at the "
                                   "points in INPUT (CSV with a header of input names or "
                                   "positional columns, .npy, .npz). Read-only on the store.")
    p.add_argument("store", help="campaign store (.h5)")
    p.add_argument("input", help="points: .csv, .npy or .npz")
    p.add_argument("-o", "--output", help="output file, .csv or .npz (default: CSV on stdout)")
    p.add_argument("--model", default="best",
                   help="best (lowest test RMSE; the last model without a test set), last, or "
                        "an iteration number (default best)")
    p.add_argument("--samples", type=int, default=100, metavar="T",
                   help="MC-dropout samples for the std (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the dropout masks (default 0)")
    p.add_argument("--force", action="store_true", help="overwrite an existing OUT")
    p.set_defaults(func=run)


def _surrogate(store: Path, model: str) -> Any:
    from alcore.surrogate import SurrogateError, load_surrogate

    try:
        return load_surrogate(store, model=model)
    except SurrogateError as exc:
        raise UserError(str(exc)) from None


def _tails(dof: float) -> str:
    """How to turn the std into an interval (the calibration may have chosen Student-t tails)."""
    from alcore.predictive import interval_z

    if dof == float("inf"):
        return f"Gaussian: 90% interval = mean +- {interval_z(dof):.3f} std"
    return f"Student-t with {dof:g} dof: 90% interval = mean +- {interval_z(dof):.3f} std"


def run(args: argparse.Namespace) -> int:
    from alcore.surrogate import ExtrapolationWarning, InputError

    store = existing_file(args.store, "store")
    src = existing_file(args.input, "input")
    out = Path(args.output) if args.output else None
    if out is not None:
        check_output_path(out, store, force=args.force)
        if out.suffix.lower() not in OUTPUT_SUFFIXES:
            raise UserError(f"output {out} must end in .csv or .npz")
    if args.samples < 2:
        raise UserError(f"--samples must be >= 2 (a std needs two samples); got {args.samples}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0; got {args.seed}")
    s = _surrogate(store, args.model)
    points: Points = read_points(src, s.input_names)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExtrapolationWarning)
        try:
            mean, std = s.predict(points.X, T=args.samples, seed=args.seed)
            flags = s.extrapolated(points.X)
        except InputError as exc:  # after read_points only non-finite values remain
            if exc.row is None:
                raise UserError(f"{src}: {exc}") from None
            raise UserError(f"{points.where[exc.row]}, column {exc.column}: NaN or infinite "
                            "input values are not allowed") from None
    for w in caught:
        if issubclass(w.category, ExtrapolationWarning):
            print(f"alflow: warning: {w.message}", file=sys.stderr)
    note = (f"{s.choice.describe()}; std from {args.samples} MC-dropout samples; {_tails(s.dof)}")
    if out is None:
        buf = io.StringIO()
        write_csv(buf, points, s.input_names, s.output_names, mean, std, flags)
        sys.stdout.write(buf.getvalue())
        print(f"alflow: predicted {len(points.X)} points with {note}", file=sys.stderr)
        return 0
    if out.suffix.lower() == ".csv":
        def write(fh: Any) -> None:
            text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
            write_csv(text, points, s.input_names, s.output_names, mean, std, flags)
            text.flush()
            text.detach()
    else:
        def write(fh: Any) -> None:
            write_npz(fh, points, s.input_names, s.output_names, mean, std, flags, s.iteration)
    write_atomically(out, write, force=args.force)
    print(f"wrote {len(points.X)} predictions to {out} ({note}; "
          f"{int(flags.sum())} extrapolated)")
    return 0
