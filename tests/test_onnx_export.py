"""The ONNX export: onnxruntime reproduces ``predict``'s mean, for every activation of the
model's table and for ensembles, and the file carries its provenance and runs without alflow."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from alcore.model import ACTIVATIONS
from alcore.onnx_export import ACTIVATION_BUILDERS, OPSET, build_onnx, export_onnx
from alcore.store import CampaignStore
from alcore.surrogate import load_surrogate
from surrogate_helpers import BOUNDS, INPUTS, OUTPUTS, fitted_model, run_campaign

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


def _session(model_or_path) -> "ort.InferenceSession":
    src = str(model_or_path) if isinstance(model_or_path, Path) else model_or_path.SerializeToString()
    return ort.InferenceSession(src, providers=["CPUExecutionProvider"])


def _assert_matches(got: np.ndarray, ref: np.ndarray) -> None:
    """1e-5 relative, with 1e-7 of each output's scale for values that cross zero."""
    scale = np.abs(ref).max(axis=0)
    assert got.shape == ref.shape and got.dtype == np.float64
    assert np.all(np.abs(got - ref) <= 1e-5 * np.abs(ref) + 1e-7 * scale), \
        float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-300)))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return run_campaign(tmp_path_factory.mktemp("campaign"))


def test_every_activation_of_the_model_table_has_a_builder():
    assert set(ACTIVATION_BUILDERS) == set(ACTIVATIONS)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("members,per_output", [(1, False), (3, False), (2, True)])
def test_graph_reproduces_predict_for_each_activation_and_ensembles(activation, members, per_output):
    rng = np.random.default_rng(0)
    lo, hi = np.array([0.0, 300.0, -5.0]), np.array([1.0, 310.0, 5.0])  # offsets and scales
    X = lo + (hi - lo) * rng.random((120, 3))
    y = np.c_[np.sin(4 * X[:, 0]) + 0.1 * X[:, 2], 1e3 + (X[:, 1] - 300) * X[:, 0]]
    net = fitted_model(X, y, hidden=(12, 10, 6), activation=activation, n_members=members, per_output=per_output)
    Xt = lo + (hi - lo) * rng.random((300, 3))
    out = _session(build_onnx(net.get_state())).run(None, {"X": Xt})[0]
    _assert_matches(out, net.predict(Xt))


def test_exported_file_matches_predict_and_carries_its_metadata(store, tmp_path):
    s = load_surrogate(store)
    with CampaignStore.open(store) as st:
        X = np.asarray(st.test_X).copy()
    path = export_onnx(s, tmp_path / "surrogate.onnx")
    sess = _session(path)
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert (inp.name, inp.type, inp.shape) == ("X", "tensor(double)", ["n", 2])
    assert (out.name, out.type, out.shape) == ("Y", "tensor(double)", ["n", 2])
    _assert_matches(sess.run(None, {"X": X})[0], s.predict(X)[0])

    meta = sess.get_modelmeta()
    props = meta.custom_metadata_map
    assert meta.producer_name == "alflow"
    assert props["campaign"] == "two-outputs" and props["oracle_name"] == "f"
    assert props["oracle_version"] == s.oracle["version"]
    assert int(props["iteration"]) == s.iteration
    assert "lowest test RMSE" in props["model_choice"]
    assert json.loads(props["input_names"]) == INPUTS
    assert json.loads(props["output_names"]) == OUTPUTS
    assert json.loads(props["bounds"]) == BOUNDS
    tm = json.loads(props["test_metrics"])
    assert props["metrics_on"] == "test" and tm["rmse"] == s.metrics["rmse"]
    assert tm["rmse_per_output"] == s.metrics["rmse_per_output"]
    model = onnx.load(str(path))
    assert model.opset_import[0].version == OPSET and model.ir_version == 8
    assert {n.domain for n in model.graph.node} == {""}  # standard operators only
    assert "u, v" in model.graph.input[0].doc_string


def test_the_file_runs_in_onnxruntime_without_alflow_or_torch(store, tmp_path):
    """The same interpreter with torch, alcore, flows and oracles made unimportable."""
    s = load_surrogate(store, model="last")
    path = export_onnx(s, tmp_path / "m.onnx")
    X = np.array([[0.3, -0.2], [1.7, 0.9]])
    np.save(tmp_path / "X.npy", X)
    code = textwrap.dedent(f"""
        import sys
        for name in ("torch", "alcore", "flows", "oracles", "prefect"):
            sys.modules[name] = None  # import fails
        import numpy as np, onnxruntime as ort
        sess = ort.InferenceSession({str(path)!r}, providers=["CPUExecutionProvider"])
        y = sess.run(None, {{"X": np.load({str(tmp_path / 'X.npy')!r})}})[0]
        np.save({str(tmp_path / 'y.npy')!r}, y)
        print(sess.get_modelmeta().custom_metadata_map["campaign"])
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "two-outputs"
    _assert_matches(np.load(tmp_path / "y.npy"), s.predict_mean(X))

