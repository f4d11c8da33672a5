"""ONNX export of a surrogate's deterministic predictor, built from the state's weights.

Why not ``torch.onnx.export``: the model is not an ``nn.Module`` (one flat parameter vector,
hand-written forward pass) and torch 2.x's exporter needs ``onnxscript`` and a trace; an MLP
is a handful of ONNX nodes, so they are written directly with ``onnx.helper`` from the state
keys that INTERFACES.md section 5 keeps stable (``arch_*``, ``norm_*``, ``m{j}_W{l}``,
``m{j}_b{l}``).

The graph, for ``n_members`` networks of ``L`` layers::

    X (n, d) float64 -> Sub(norm_x_mean) -> Div(norm_x_std) -> Cast(float32)
      -> per member: [Gemm(W_l, b_l, transB=1) -> activation] * (L-1) -> Gemm(W_L, b_L)
         -> Cast(float64)
    -> Sum / n_members -> Mul(norm_y_std) -> Add(norm_y_mean) -> Y (n, k) float64

With ``arch_per_output`` every member is k networks; network o's output is multiplied by the
one-hot row e_o (it predicts output o only) before the Sum.

This is ``DropoutMLP.predict`` op for op: standardisation in float64, the network in float32
(the precision it was trained in), members averaged and un-standardised in float64. The
normalisation is kept as explicit float64 nodes rather than merged into the float32 weights:
merging ``(x - mean) / std`` into the first layer makes float32 subtract two large numbers when
inputs sit far from zero (see benchmarks/onnx_precision.py for the measured cost), and float64
inputs are what simulation codes in C++/Fortran/Julia hold anyway.

Opset 17 with IR version 8, so that onnxruntime releases from 1.13 on (2022) load the file.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ACTIVATION_BUILDERS", "OPSET", "IR_VERSION", "build_onnx", "export_onnx", "onnx_bytes",
           "surrogate_metadata"]

OPSET = 17
IR_VERSION = 8
INPUT_NAME = "X"
OUTPUT_NAME = "Y"


def _onnx() -> Any:
    try:
        import onnx  # noqa: PLC0415
    except ImportError as exc:  # installed without its dependencies
        raise ImportError("exporting to ONNX needs the 'onnx' package (a dependency of "
                          "alflow): pip install onnx") from exc
    return onnx


class _Graph:
    """Collects nodes and initializers with unique names (a thin layer over onnx.helper)."""

    def __init__(self) -> None:
        self.onnx = _onnx()
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, stem: str, value: np.ndarray) -> str:
        name = self.name(stem)
        self.inits.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], stem: str | None = None, **attrs: Any) -> str:
        out = self.name(stem or op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], **attrs))
        return out


def _gelu(g: _Graph, x: str) -> str:
    """Exact (erf) GELU, as ``torch.nn.functional.gelu``: 0.5 x (1 + erf(x / sqrt 2))."""
    f32 = np.float32
    e = g.op("Erf", [g.op("Mul", [x, g.const("inv_sqrt2", np.array(1 / math.sqrt(2), f32))])])
    one_plus = g.op("Add", [e, g.const("one", np.array(1.0, f32))])
    return g.op("Mul", [g.op("Mul", [x, one_plus]), g.const("half", np.array(0.5, f32))])


#: One builder per entry of ``alcore.model.ACTIVATIONS`` (a test checks they match).
ACTIVATION_BUILDERS: dict[str, Callable[[_Graph, str], str]] = {
    "relu": lambda g, x: g.op("Relu", [x]),
    "tanh": lambda g, x: g.op("Tanh", [x]),
    "gelu": _gelu,
    "silu": lambda g, x: g.op("Mul", [x, g.op("Sigmoid", [x])], stem="silu"),
    "elu": lambda g, x: g.op("Elu", [x], alpha=1.0),
}


def _activation_name(state: Mapping[str, np.ndarray]) -> str:
    from alcore.model import ACTIVATIONS  # noqa: PLC0415 - the one activation table

    code = int(np.asarray(state["arch_activation"]))
    if not 0 <= code < len(ACTIVATIONS):
        raise ValueError(f"state arch_activation code {code} is unknown")
    name = ACTIVATIONS[code]
    if name not in ACTIVATION_BUILDERS:
        raise ValueError(f"activation {name!r} has no ONNX builder (alcore/onnx_export.py)")
    return name


def build_onnx(state: Mapping[str, np.ndarray], *, metadata: Mapping[str, str] | None = None,
               input_doc: str = "", output_doc: str = "", doc: str = "") -> Any:
    """An ``onnx.ModelProto`` computing the dropout-off prediction of the model in ``state``.

    Input ``X`` (n, d) float64, output ``Y`` (n, k) float64, both in original units.
    ``metadata`` becomes the model's ``metadata_props`` (string to string).
    """
    onnx = _onnx()
    helper, TP = onnx.helper, onnx.TensorProto
    d, k = int(np.asarray(state["arch_input_dim"])), int(np.asarray(state["arch_output_dim"]))
    hidden = [int(h) for h in np.asarray(state["arch_hidden"]).reshape(-1)]
    members = int(np.asarray(state["arch_n_members"]))
    per_output = bool(int(np.asarray(state.get("arch_per_output", 0)))) and k > 1
    act = ACTIVATION_BUILDERS[_activation_name(state)]
    f64 = lambda key: np.asarray(state[key], dtype=np.float64).reshape(-1)  # noqa: E731
    g = _Graph()
    xs = g.op("Div", [g.op("Sub", [INPUT_NAME, g.const("x_mean", f64("norm_x_mean"))]),
                      g.const("x_std", f64("norm_x_std"))], stem="x_standardised")
    h0 = g.op("Cast", [xs], stem="x_float32", to=TP.FLOAT)
    outs = []
    for j in range(members * (k if per_output else 1)):
        h = h0
        for li in range(len(hidden) + 1):
            W = np.asarray(state[f"m{j}_W{li}"], dtype=np.float32)
            b = np.asarray(state[f"m{j}_b{li}"], dtype=np.float32).reshape(-1)
            h = g.op("Gemm", [h, g.const(f"m{j}_W{li}", W), g.const(f"m{j}_b{li}", b)],
                     stem=f"m{j}_layer{li}", transB=1)
            if li < len(hidden):
                h = act(g, h)
        if per_output:        # network j computes output j % k only: keep that column
            h = g.op("Mul", [h, g.const(f"m{j}_output", np.eye(k, dtype=np.float32)[j % k])], stem=f"m{j}_own")
        outs.append(g.op("Cast", [h], stem=f"m{j}_out", to=TP.DOUBLE))
    y = outs[0]
    if len(outs) > 1:
        y = g.op("Sum", outs, stem="network_sum")
    if members > 1:
        y = g.op("Div", [y, g.const("n_members", np.array(float(members)))], stem="member_mean")
    y_std = g.op("Mul", [y, g.const("y_std", f64("norm_y_std"))])
    g.nodes.append(helper.make_node("Add", [y_std, g.const("y_mean", f64("norm_y_mean"))],
                                    [OUTPUT_NAME]))
    graph = helper.make_graph(
        g.nodes, "alflow_surrogate",
        [helper.make_tensor_value_info(INPUT_NAME, TP.DOUBLE, ["n", d], doc_string=input_doc)],
        [helper.make_tensor_value_info(OUTPUT_NAME, TP.DOUBLE, ["n", k], doc_string=output_doc)],
        initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="alflow", producer_version=_alflow_version(),
                              doc_string=doc, ir_version=IR_VERSION)
    helper.set_model_props(model, {str(a): str(b) for a, b in (metadata or {}).items()})
    onnx.checker.check_model(model, full_check=True)
    return model


def _alflow_version() -> str:
    try:
        from importlib.metadata import version  # noqa: PLC0415

        return version("alflow")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "0+unknown"


def _json(obj: Any) -> str:
    def safe(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {str(a): safe(b) for a, b in v.items()}
        if isinstance(v, (list, tuple)):
            return [safe(b) for b in v]
        return v
    return json.dumps(safe(obj), sort_keys=True)


def surrogate_metadata(s: Any) -> dict[str, str]:
    """The metadata block of the exported file: provenance, chosen iteration, metrics, bounds."""
    m = s.metrics or {}
    on = str(m.get("on", "")) if m else ""
    metric_keys = ("rmse", "mae", "r2", "nll", "rmse_per_output", "mae_per_output",
                   "r2_per_output", "nll_per_output", "n_test", "labeled")
    meta = {
        "campaign": s.campaign or "",
        "store": str(s.store_path),
        "store_id": s.store_id or "",
        "oracle_name": s.oracle.get("name", ""),
        "oracle_version": s.oracle.get("version", ""),
        "iteration": str(s.iteration),
        "model_choice": s.choice.describe(),
        "input_names": _json(list(s.input_names)),
        "output_names": _json(list(s.output_names)),
        "bounds": _json(np.asarray(s.bounds).tolist()),
        "metrics_on": on or "not evaluated",
        f"{on or 'test'}_metrics": _json({key: m[key] for key in metric_keys if key in m}),
        "alflow_version": _alflow_version(),
        "mean_only": "true: the dropout-off mean; the calibrated std needs alcore.load_surrogate",
    }
    return meta


def onnx_bytes(s: Any) -> bytes:
    """The serialised ONNX model of surrogate ``s`` (a :class:`~alcore.surrogate.Surrogate`)."""
    cols = ", ".join(s.input_names)
    model = build_onnx(
        s.state, metadata=surrogate_metadata(s),
        input_doc=f"(n, {s.input_dim}) float64 in original units; columns: {cols}",
        output_doc=f"(n, {s.output_dim}) float64 predicted mean; columns: "
                   f"{', '.join(s.output_names)}",
        doc=(f"alflow surrogate of {s.oracle.get('name') or 'an oracle'} (campaign "
             f"{s.campaign or '?'}), {s.choice.describe()}: the deterministic (dropout-off) "
             f"mean prediction in original units. Inputs X columns: {cols}. Metadata: "
             "input_names, output_names, bounds, test metrics."))
    return model.SerializeToString()


def export_onnx(s: Any, path: str | os.PathLike[str]) -> Path:
    """Write the ONNX file of surrogate ``s`` to ``path`` atomically (complete or absent,
    never half-written under that name); returns the path."""
    from alcore.store.fsutil import atomic_write  # noqa: PLC0415 - the store's crash-safe write

    out = Path(path)
    atomic_write(out, onnx_bytes(s), tmp=out.with_name(out.name + ".part"))
    return out
