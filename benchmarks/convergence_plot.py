"""Convergence of the two PDE oracles against exact solutions -> docs/img/convergence.png.

heat2d: (a) mean(u) for kappa = 1 against the exact torsion integral (double sine series);
(b) max-norm error against the manufactured solution u = sin(pi x) sin(pi y) with
kappa = 1 + 0.5 sin(2 pi x) + 0.3 y; (c) the thermal block with a e^2 conductivity contrast,
self-convergence of mean(u) against n = 384.
burgers1d: max-norm error of the cell averages against the Cole-Hopf solution
u = 2 pi nu e^{-pi^2 nu t} sin(pi x) / (a + e^{-pi^2 nu t} cos(pi x)), nu = 0.05, a = 1.2, t = 0.5,
and, at nu = 0.003 (a steep front), self-convergence of the four outputs against N = 8192 for
the initial condition 0.3 sin(pi x) + sin(2 pi x).

Prints the observed orders as JSON. Usage: python benchmarks/convergence_plot.py [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from oracles.burgers1d import Burgers1D  # noqa: E402
from oracles.heat2d import Heat2D  # noqa: E402
from test_oracle_burgers1d import cole_hopf_errors  # noqa: E402
from test_oracle_heat2d import mms_error, torsion_mean  # noqa: E402


def orders(ns, errs) -> list[float]:
    ns, errs = np.asarray(ns, float), np.asarray(errs, float)
    return [round(float(p), 3) for p in np.log(errs[:-1] / errs[1:]) / np.log(ns[1:] / ns[:-1])]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "docs" / "img" / "convergence.png"))
    args = ap.parse_args()
    res: dict = {}

    ns = [12, 24, 48, 96] if args.quick else [12, 24, 48, 96, 192]
    exact = torsion_mean()
    e_tor = [abs(Heat2D(n=n)(np.zeros(9))[0] - exact) for n in ns]
    e_mms = [mms_error(n) for n in ns]
    x_blk = np.array([1, -1, 0.5, -0.5, 1, -1, 0.2, 0.9, -0.7])
    ref_n = 2 * ns[-1]
    ref = Heat2D(n=ref_n)(x_blk)[0]
    e_blk = [abs(Heat2D(n=n)(x_blk)[0] - ref) for n in ns]
    res["heat2d"] = {"n": ns, "torsion_mean_err": e_tor, "torsion_order": orders(ns, e_tor),
                     "mms_max_err": e_mms, "mms_order": orders(ns, e_mms),
                     "block_self_err": e_blk, "block_order": orders(ns, e_blk), "block_ref_n": ref_n}

    Ns = [32, 64, 128, 256] if args.quick else [32, 64, 128, 256, 512, 1024]
    e_ch = list(cole_hopf_errors(np.array(Ns)))
    xf = np.array([0.3, 1.0, 0.0, np.log10(0.003)])
    fineN = 8192 if not args.quick else 2048
    ref_b = Burgers1D(N=fineN)(xf)
    Nf = [128, 256, 512, 1024] if not args.quick else [128, 256, 512]
    e_front = [float(np.max(np.abs(Burgers1D(N=N)(xf) - ref_b))) for N in Nf]
    res["burgers1d"] = {"N": Ns, "cole_hopf_max_err": e_ch, "cole_hopf_order": orders(Ns, e_ch),
                        "front_N": Nf, "front_output_err": e_front, "front_order": orders(Nf, e_front),
                        "front_ref_N": fineN}

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.3))
    a1.loglog(ns, e_tor, "o-", label=f"mean u, kappa=1 vs exact (p={res['heat2d']['torsion_order'][-1]:.2f})")
    a1.loglog(ns, e_mms, "s-", label=f"manufactured, max err (p={res['heat2d']['mms_order'][-1]:.2f})")
    a1.loglog(ns, e_blk, "^-", label=f"thermal block, mean u vs n={ref_n} (p={res['heat2d']['block_order'][-1]:.2f})")
    ref_line = e_mms[0] * (np.array(ns) / ns[0]) ** -2.0
    a1.loglog(ns, ref_line, "k--", lw=0.8, label="slope -2")
    a1.set(xlabel="cells per side n", ylabel="error", title="heat2d (cell-centred FV, harmonic faces)")
    a1.legend(fontsize=8)
    a1.grid(True, which="both", alpha=0.3)
    a2.loglog(Ns, e_ch, "o-", label=f"Cole-Hopf nu=0.05, max err (p={res['burgers1d']['cole_hopf_order'][-1]:.2f})")
    a2.loglog(Nf, e_front, "s-", label=f"front nu=0.003, outputs vs N={fineN} (p={res['burgers1d']['front_order'][-1]:.2f})")
    a2.loglog(Ns, e_ch[0] * (np.array(Ns) / Ns[0]) ** -2.0, "k--", lw=0.8, label="slope -2")
    a2.loglog(Ns, e_ch[0] * (np.array(Ns) / Ns[0]) ** -1.0, "k:", lw=0.8, label="slope -1")
    a2.axvline(Burgers1D().N, color="grey", lw=0.8)
    a2.text(Burgers1D().N * 1.05, e_ch[-1], "default N", fontsize=8, color="grey")
    a2.set(xlabel="cells N", ylabel="error", title="burgers1d (MUSCL-Rusanov + CN, Strang)")
    a2.legend(fontsize=8)
    a2.grid(True, which="both", alpha=0.3)
    for ax, ticks in ((a1, ns), (a2, Ns)):
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.text(0.5, 0.012, "observed order p from the finest pair of grids", fontsize=9, ha="center")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    res["figure"] = str(args.out)
    print(json.dumps(res, indent=2, default=float))


if __name__ == "__main__":
    main()
