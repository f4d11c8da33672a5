#!/usr/bin/env python3
"""Example external simulator for alflow's ``command`` oracle: a projectile with air drag.

Protocol: reads JSON ``{"x": [v0, angle_deg, drag], ...}`` from stdin (or from the file given
as the first argument), integrates the trajectory with RK4 until it lands, and writes JSON
``{"y": [range, max_height, flight_time]}`` to stdout (or to the file given as the second
argument). Exit status 0 on success; errors go to stderr with a non-zero status.

Use it from a campaign config, e.g.::

    [oracle]
    name = "command"
    params = { argv = ["python3", "examples/simulators/projectile.py"],
               bounds = [[5, 50], [10, 80], [0, 0.5]],
               input_names = ["v0", "angle_deg", "drag"],
               output_names = ["range", "max_height", "flight_time"], timeout = 30 }

Extra arguments (``--sleep S``, ``--fail``) exist for tests: a slow or failing simulator.
"""

import json
import math
import sys
import time

G = 9.81


def simulate(v0: float, angle_deg: float, drag: float, dt: float = 1e-3) -> list[float]:
    """Quadratic drag: a = -g e_y - drag |v| v (per unit mass). RK4 until y < 0."""
    a = math.radians(angle_deg)
    s = [0.0, 0.0, v0 * math.cos(a), v0 * math.sin(a)]

    def f(s):
        vx, vy = s[2], s[3]
        sp = math.hypot(vx, vy)
        return [vx, vy, -drag * sp * vx, -G - drag * sp * vy]

    t, ymax = 0.0, 0.0
    while True:
        k1 = f(s)
        k2 = f([s[i] + 0.5 * dt * k1[i] for i in range(4)])
        k3 = f([s[i] + 0.5 * dt * k2[i] for i in range(4)])
        k4 = f([s[i] + dt * k3[i] for i in range(4)])
        new = [s[i] + dt / 6 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]) for i in range(4)]
        if new[1] < 0.0 and t > 0:
            frac = s[1] / (s[1] - new[1])  # linear interpolation of the landing point
            return [s[0] + frac * (new[0] - s[0]), ymax, t + frac * dt]
        s, t = new, t + dt
        ymax = max(ymax, s[1])


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    if "--fail" in argv:
        print("projectile: asked to fail", file=sys.stderr)
        return 3
    if "--sleep" in argv:
        time.sleep(float(argv[argv.index("--sleep") + 1]))
        args = [a for a in args if a != argv[argv.index("--sleep") + 1]]
    text = open(args[0]).read() if args else sys.stdin.read()
    x = json.loads(text)["x"]
    if len(x) != 3:
        print(f"projectile: expected 3 inputs (v0, angle_deg, drag), got {len(x)}", file=sys.stderr)
        return 2
    out = json.dumps({"y": simulate(*map(float, x))})
    if len(args) > 1:
        with open(args[1], "w") as fh:
            fh.write(out)
    else:
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
