#!/usr/bin/env python3
"""A simulator that leaves a background child behind: what alflow's ``command`` oracle must survive.

Reads ``{"x": [...]}`` on stdin, prints ``{"y": [sum(x)]}`` on stdout, then forks a child that
keeps stdout and stderr open and sleeps (as a daemon, a ``nohup``-ed post-processor or a stray
MPI helper would). Options:

``--pidfile PATH``  append the child's pid to PATH (so a test can check it is gone)
``--setsid``        the child leaves the session and process group (``setsid()``)
``--hang S``        the main process sleeps S seconds after printing (to exceed a timeout)
``--stderr TEXT``   write TEXT to stderr and exit with status 4 instead of printing a result

Run under alflow, the result is read when the main process exits and every process of the
evaluation, the child included, is killed then.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pidfile")
    ap.add_argument("--setsid", action="store_true")
    ap.add_argument("--hang", type=float, default=0.0)
    ap.add_argument("--stderr")
    ap.add_argument("--child-sleep", type=float, default=120.0)
    args = ap.parse_args()
    x = json.load(sys.stdin)["x"]
    if args.stderr:
        print(args.stderr, file=sys.stderr)
        return 4
    print(json.dumps({"y": [float(sum(x))]}), flush=True)
    pid = os.fork()
    if pid == 0:  # the child: holds stdout/stderr, outlives its parent
        if args.setsid:
            os.setsid()
        time.sleep(args.child_sleep)
        os._exit(0)
    if args.pidfile:  # written by the parent, so it is there before the parent exits
        with open(args.pidfile, "a") as fh:
            fh.write(f"{pid}\n")
    time.sleep(args.hang)
    return 0


if __name__ == "__main__":
    sys.exit(main())
