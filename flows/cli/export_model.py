"""``alflow export-model STORE -o surrogate.onnx``: the surrogate as an ONNX file.

The graph is the deterministic (dropout-off) predictor in original units, input ``X`` (n, d)
float64 and output ``Y`` (n, k) float64, with a metadata block (campaign, oracle name and
version, iteration and why it was chosen, test metrics, bounds, input and output names); see
``alcore/onnx_export.py``. It runs in onnxruntime (C++, C, Python, Java, C#, Julia bindings)
without alflow or torch. When onnxruntime is installed here, the file is checked against
alcore's own prediction before the command reports success.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from flows.cli.errors import UserError, existing_file
from flows.cli.outputs import check_output_path, write_atomically


def add_parser(sub: Any) -> None:
    p = sub.add_parser("export-model", help="write the surrogate as an ONNX file",
                       description="Write the surrogate's deterministic predictor (original "
                                   "units, normalisation included) as ONNX, with metadata.")
    p.add_argument("store", help="campaign store (.h5)")
    p.add_argument("-o", "--output", help="ONNX file (default: <store stem>.onnx next to it)")
    p.add_argument("--model", default="best",
                   help="best (lowest test RMSE; the last model without a test set), last, or "
                        "an iteration number (default best)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=run)


def _check_with_onnxruntime(path: Path, s: Any, X: np.ndarray) -> tuple[bool | None, str]:
    """(matches within 1e-5 relative, one line) comparing the file with ``s.predict_mean``;
    (None, why) when onnxruntime is not installed here.  Relative to each output's largest
    magnitude: an element-wise relative error explodes where an output crosses zero (float32
    SiLU differs from its ONNX graph by ~1e-7 absolute)."""
    try:
        import onnxruntime as ort  # noqa: PLC0415
    except ImportError:
        return None, "not checked here (onnxruntime is not installed)"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: X})[0]
    ref = s.predict_mean(X)
    scale = np.maximum(np.abs(ref).max(axis=0), 1e-12) if len(X) else 1.0
    rel = float(np.max(np.abs(got - ref) / scale)) if len(X) else 0.0
    ok = rel <= 1e-5
    return ok, (f"onnxruntime {ort.__version__} {'matches' if ok else 'DIFFERS FROM'} alcore's "
                f"predict on {len(X)} points (max relative difference {rel:.2g})")


def run(args: argparse.Namespace) -> int:
    store = existing_file(args.store, "store")
    out = Path(args.output) if args.output else store.with_suffix(".onnx")
    check_output_path(out, store, force=args.force)
    try:
        import onnx  # noqa: F401, PLC0415
    except ImportError:
        raise UserError("export-model needs the 'onnx' package (a dependency of alflow): "
                        "pip install onnx") from None
    from alcore.onnx_export import onnx_bytes
    from alcore.store import CampaignStore
    from alcore.surrogate import SurrogateError, load_surrogate

    with CampaignStore.open(store, mode="r") as st:
        try:
            s = load_surrogate(st, model=args.model)
        except SurrogateError as exc:
            raise UserError(str(exc)) from None
        X = np.asarray(st.test_X if st.test_X is not None and len(st.test_X) else st.pool_X)
    X = np.ascontiguousarray(X[:1000], dtype=np.float64)
    data = onnx_bytes(s)
    write_atomically(out, lambda fh: fh.write(data), force=args.force)
    ok, check = _check_with_onnxruntime(out, s, X)
    print(f"wrote {out}: {s.choice.describe()}; input X (n, {s.input_dim}) float64 "
          f"[{', '.join(s.input_names)}], output Y (n, {s.output_dim}) float64 "
          f"[{', '.join(s.output_names)}]")
    print(f"  {check}")
    if ok is False:
        print("alflow: warning: the exported graph does not reproduce predict; please report "
              "this", file=sys.stderr)
        return 1
    return 0
