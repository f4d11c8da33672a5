"""``alflow status STORE``: where a campaign stands (read-only; works while it runs)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from flows.cli.errors import existing_file, fmt, json_default


def add_parser(sub: Any) -> None:
    s = sub.add_parser("status", help="show where a campaign stands",
                       description="Labels, failures, iterations and metrics of a store (read-only; "
                                   "works while the campaign runs).")
    s.add_argument("store", help="campaign store (.h5)")
    s.add_argument("--json", action="store_true", help="machine-readable JSON")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alcore.campaign import status

    existing_file(args.store, "store")
    st = status(args.store)
    if args.json:
        print(json.dumps(st, indent=2, default=json_default))
        return 0
    print(f"campaign {st['name']} ({st['oracle']}, {st['strategy']}): {st['store']}")
    it = st["iteration"]
    print(f"  iterations finished: {0 if it is None else it + 1} of {st['iterations_planned'] + 1}"
          f"   labels: {st['labelled']} ok, {st['failed']} failed, {st['requested']} pending "
          f"(budget {st['label_budget']}, pool {st['pool']})")
    for what, value in st.get("progress_rows") or []:
        if what == "Labels":  # already on the line above
            continue
        print(f"  {what.lower()}: {value}")
    if st["stop_requested"]:
        print("  stop requested: the campaign stops after its current step")
    if st.get("model"):
        from alcore.surrogate.selection_record import selection_text

        model_line, calibration_line = selection_text(st["model"])
        print(f"  model: {model_line}")
        print(f"  calibration: {calibration_line}")
    print_failures(st["failures"])
    for m in st["metrics"]:
        print(f"  it {m['iteration']:>3}: labels {m.get('labelled', '-'):>6}  rmse {fmt(m.get('rmse'))}"
              f"  r2 {fmt(m.get('r2'), '.4f')}  nll {fmt(m.get('nll'))}"
              + (f"  cov90 {fmt(m.get('coverage90'), '.2f')}" if "coverage90" in m else ""))
    return 0


def print_failures(failures: dict[str, Any], limit: int = 10) -> None:
    """Failures grouped by reason with counts (pool, then test set); full texts: --json or
    ``alflow export --include-failed``."""
    groups = failures.get("groups") or []
    if groups:
        print(f"  failed points by reason ({sum(g['count'] for g in groups)}):")
        _print_groups(groups, limit)
    test = failures.get("test_set")
    if test and test.get("failed"):
        print(f"  test set: {test['failed']} of {test['sent']} points failed when it was labelled "
              "(dropped from the test set):")
        _print_groups(test.get("groups") or [], limit, pool_points=False)


def _print_groups(groups: list[dict[str, Any]], limit: int, pool_points: bool = True) -> None:
    for g in groups[:limit]:
        where = f"; e.g. point {g['indices'][0]}" if pool_points and g["indices"] else ""
        print(f"    {g['count']:>5}  {g['reason']}  [{g['kind']}{where}]")
    rest = groups[limit:]
    if rest:
        print(f"    {sum(g['count'] for g in rest):>5}  ({len(rest)} other reasons: see --json)")
