"""Shared helpers of the campaign/CLI/flow tests: tiny configs and a call-counting oracle."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

# A plain-function oracle in its own file (used as "counting_oracle.py:f"): every call appends
# "start <x>" before and "end <x>" after its work to the file named by ALFLOW_TEST_CALLS, so a
# test can count calls per point across processes, including calls cut off by a kill.
COUNTING_ORACLE = textwrap.dedent(
    '''
    import os, time
    import numpy as np

    def _log(tag, x):
        path = os.environ.get("ALFLOW_TEST_CALLS")
        if path:
            with open(path, "a") as fh:
                fh.write(f"{tag} {' '.join(repr(float(v)) for v in x)}\\n")
                fh.flush()
                os.fsync(fh.fileno())

    def f(x, sleep=0.0):
        """Smooth 2-d test function that logs each call."""
        _log("start", x)
        if sleep:
            time.sleep(sleep)
        y = np.sin(3.0 * x[0]) + 0.5 * np.cos(2.0 * x[1]) + 0.1 * x[0] * x[1]
        _log("end", x)
        return float(y)
    '''
)


def write_counting_oracle(folder: Path) -> Path:
    p = folder / "counting_oracle.py"
    p.write_text(COUNTING_ORACLE)
    return p


def calls(path: Path) -> tuple[Counter, Counter]:
    """(starts per point, ends per point) from a call log."""
    starts: Counter = Counter()
    ends: Counter = Counter()
    if not path.exists():
        return starts, ends
    for line in path.read_text().splitlines():
        tag, _, rest = line.partition(" ")
        (starts if tag == "start" else ends)[rest] += 1
    return starts, ends


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    return repr(v)


def counting_config(folder: Path, **sections: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A tiny campaign on the counting oracle; ``sections`` override keys per section."""
    write_counting_oracle(folder)
    cfg: dict[str, dict[str, Any]] = {
        "campaign": {"name": "tiny", "store": "store.h5", "seed": 0},
        "oracle": {"name": "counting_oracle.py:f", "bounds": [[-1.0, 1.0], [-1.0, 1.0]], "params": {}},
        "pool": {"size": 64, "design": "sobol"},
        "test": {"size": 0},
        # "fixed": no model search in the quick tests (test_campaign runs one "auto" campaign)
        "model": {"select": "fixed", "hidden": [16, 16], "epochs": 30, "min_steps": 300, "batch_size": 16,
                  "device": "cpu"},
        "acquisition": {"strategy": "nngp", "samples": 16, "batch_size": 4},
        "budget": {"initial": 8, "iterations": 2},
        "dask": {"workers": 0, "retries": 0},
    }
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    return cfg


def write_toml(path: Path, cfg: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for section, values in cfg.items():
        lines.append(f"[{section}]")
        for k, v in values.items():
            if v is None:
                continue
            lines.append(f"{k} = {toml_value(v)}")
        lines.append("")
    path.write_text("\n".join(lines))
    return path
