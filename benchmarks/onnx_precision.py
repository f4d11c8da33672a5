"""Precision of the ONNX export: explicit float64 normalisation nodes vs weights merged in float32.

Why it exists: ``alcore/onnx_export.py`` keeps ``(x - mean) / std`` and the output scaling as
float64 nodes instead of folding them into the float32 first and last layers. This script
measures what folding would cost: the largest relative difference from ``DropoutMLP.predict``
for inputs centred at 0 and at growing offsets (a physical input such as a temperature in K
or a pressure in Pa sits far from zero compared to its range). Prints JSON.

    python benchmarks/onnx_precision.py [--seed S]
"""
from __future__ import annotations

import argparse
import json

import numpy as np


def merged_float32_predict(state: dict, X: np.ndarray) -> np.ndarray:
    """Normalisation folded into float32 weights (the alternative not taken), relu MLP."""
    W = [np.asarray(state[f"m0_W{i}"], np.float64) for i in range(len(state["arch_hidden"]) + 1)]
    b = [np.asarray(state[f"m0_b{i}"], np.float64) for i in range(len(W))]
    xm, xs = state["norm_x_mean"], state["norm_x_std"]
    ym, ys = state["norm_y_mean"], state["norm_y_std"]
    W[0], b[0] = W[0] / xs, b[0] - (W[0] / xs) @ xm
    W[-1], b[-1] = W[-1] * ys[:, None], b[-1] * ys + ym
    h = X.astype(np.float32)
    for i, (w, c) in enumerate(zip(W, b)):
        h = h @ w.astype(np.float32).T + c.astype(np.float32)
        if i < len(W) - 1:
            h = np.maximum(h, 0)
    return h.astype(np.float64)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    import onnxruntime as ort

    from alcore.model import DropoutMLP
    from alcore.onnx_export import build_onnx

    rows = []
    for offset in (0.0, 1e2, 1e4):
        rng = np.random.default_rng(args.seed)
        X = rng.random((400, 3)) + offset
        y = np.c_[np.sin(6 * X[:, 0]) + X[:, 1], np.cos(4 * X[:, 2])]
        net = DropoutMLP(hidden=(32, 32), epochs=60, min_steps=0, device="cpu", seed=args.seed)
        net.fit(X, y)
        Xt = rng.random((2000, 3)) + offset
        ref = net.predict(Xt)
        scale = np.abs(ref).max(axis=0)
        sess = ort.InferenceSession(build_onnx(net.get_state()).SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        explicit = sess.run(None, {"X": Xt})[0]
        merged = merged_float32_predict(net.get_state(), Xt)
        rows.append({"input_offset": offset,
                     "explicit_float64_norm_max_rel_err": float(np.max(np.abs(explicit - ref) / scale)),
                     "merged_float32_max_rel_err": float(np.max(np.abs(merged - ref) / scale))})
    print(json.dumps({"onnx_precision": rows, "note": "relative to max |prediction| per output"},
                     indent=2))


if __name__ == "__main__":
    main()
