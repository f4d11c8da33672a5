"""``alflow predict`` and ``alflow export-model`` as a user runs them (subprocesses)."""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alcore.metrics import regression_metrics
from alcore.store import CampaignStore
from alcore.surrogate import ExtrapolationWarning, load_surrogate
from surrogate_helpers import OUTPUTS, dir_state, run_campaign, sha

ALFLOW = str(Path(sys.executable).parent / "alflow")


def alflow(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([ALFLOW, *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=dict(os.environ))


def cli(*args: str) -> subprocess.CompletedProcess:
    """``alflow ARGS`` in this process (``flows.cli.main``): the same exit code and output as
    the subprocess, without paying the torch import again; for the long lists of mistakes."""
    from contextlib import redirect_stderr, redirect_stdout

    from flows.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main([str(a) for a in args])
        except SystemExit as exc:  # argparse
            rc = int(exc.code or 0)
    return subprocess.CompletedProcess(list(args), rc, out.getvalue(), err.getvalue())


def _one_line_error(r: subprocess.CompletedProcess, fragment: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert fragment in lines[0], lines[0]


def _read_csv(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return run_campaign(tmp_path_factory.mktemp("campaign"))


@pytest.fixture(scope="module")
def test_set(store: Path) -> tuple[np.ndarray, np.ndarray]:
    with CampaignStore.open(store) as st:
        return np.asarray(st.test_X).copy(), np.asarray(st.test_y).copy()


def test_predicted_means_reproduce_the_stored_test_rmse(store, test_set, tmp_path):
    """The acceptance check: the store's test set through `alflow predict` (positional CSV)."""
    X, y = test_set
    points = tmp_path / "test_points.csv"
    np.savetxt(points, X, delimiter=",", fmt="%.17g")
    out = tmp_path / "pred.csv"
    r = alflow("predict", store, points, "-o", out)
    assert r.returncode == 0, r.stderr
    s = load_surrogate(store)
    assert f"wrote {len(X)} predictions to {out}" in r.stdout
    assert s.choice.describe() in r.stdout
    # the closing line says how to turn the std into the 90% interval (the store's tails)
    from alcore.predictive import interval_z
    assert f"90% interval = mean +- {interval_z(s.dof):.3f} std" in r.stdout
    header, rows = _read_csv(out.read_text())
    assert header == ["u", "v", "wave_mean", "wave_std", "level_mean", "level_std",
                      "extrapolated"]
    table = np.array([[float(c) for c in row] for row in rows])
    np.testing.assert_array_equal(table[:, :2], X)  # inputs written at full precision
    mean = table[:, [2, 4]]
    rmse = regression_metrics(y, mean)["rmse"]
    np.testing.assert_allclose(rmse, s.metrics["rmse"], rtol=1e-6)
    assert np.all(table[:, [3, 5]] > 0) and set(table[:, 6]) == {0.0}


def test_header_in_any_order_carries_extra_columns_and_flags_extrapolation(store, tmp_path):
    points = tmp_path / "pts.csv"
    points.write_text("id,v,u\nA,0.1,1.0\nB,0.5,1.5\nC,3.0,0.2\n")
    r = alflow("predict", store, points)  # CSV on stdout
    assert r.returncode == 0, r.stderr
    header, rows = _read_csv(r.stdout)
    assert header == ["u", "v", "id", "wave_mean", "wave_std", "level_mean", "level_std",
                      "extrapolated"]
    assert [row[2] for row in rows] == ["A", "B", "C"]
    assert [row[-1] for row in rows] == ["0", "0", "1"]
    s = load_surrogate(store)
    with pytest.warns(ExtrapolationWarning):
        mean, std = s.predict(np.array([[1.0, 0.1], [1.5, 0.5], [0.2, 3.0]]))
    got = np.array([[float(row[j]) for j in (3, 4, 5, 6)] for row in rows])
    np.testing.assert_array_equal(got[:, [0, 2]], mean)  # same process-independent numbers
    np.testing.assert_allclose(got[:, [1, 3]], std, rtol=1e-6)
    assert "1 of 3 points lie outside the oracle's bounds" in r.stderr
    assert "alflow: predicted 3 points with iteration" in r.stderr


def test_npy_and_npz_inputs_and_npz_output(store, test_set, tmp_path):
    X = test_set[0][:5]
    np.save(tmp_path / "p.npy", X)
    np.savez(tmp_path / "cols.npz", v=X[:, 1], u=X[:, 0])
    outs = []
    for src in ("p.npy", "cols.npz"):
        out = tmp_path / f"{src}.out.npz"
        r = alflow("predict", store, tmp_path / src, "-o", out, "--model", "last",
                   "--samples", "20")
        assert r.returncode == 0, r.stderr
        with np.load(out) as z:
            outs.append({k: z[k] for k in z.files})
    a, b = outs
    np.testing.assert_array_equal(a["X"], X)
    np.testing.assert_array_equal(a["mean"], b["mean"])
    np.testing.assert_array_equal(a["std"], b["std"])
    assert a["mean"].shape == (5, 2) and list(a["output_names"]) == OUTPUTS
    assert int(a["iteration"]) == load_surrogate(store, "last").iteration
    np.testing.assert_allclose(a["std"], load_surrogate(store, "last").predict(X, T=20)[1],
                               rtol=1e-6)


def test_output_is_never_overwritten_without_force_nor_ever_the_store(store, tmp_path):
    points = tmp_path / "pts.csv"
    points.write_text("u,v\n1.0,0.1\n")
    out = tmp_path / "out.csv"
    out.write_text("precious\n")
    _one_line_error(alflow("predict", store, points, "-o", out), "already exists; pass --force")
    assert out.read_text() == "precious\n"
    r = alflow("predict", store, points, "-o", out, "--force")
    assert r.returncode == 0 and out.read_text().startswith("u,v,wave_mean")
    before = dir_state(store.parent)
    for target in (store, Path(str(store) + ".journal"), Path(str(store) + ".lock"),
                   Path(str(store) + ".journal.csv")):
        _one_line_error(cli("predict", store, points, "-o", target, "--force"),
                        "refusing to write")
        _one_line_error(cli("export-model", store, "-o", target, "--force"),
                        "refusing to write")
    link = tmp_path / "link.csv"
    link.symlink_to(store)
    _one_line_error(cli("predict", store, points, "-o", link, "--force"), "refusing to write")
    assert dir_state(store.parent) == before


def test_bad_inputs_give_one_line_and_exit_2_before_writing(store, tmp_path):
    out = tmp_path / "never.csv"
    cases = {
        "wrong.csv": ("u,w\n1,2\n", "missing input column(s) v; the surrogate takes u, v"),
        "nan.csv": ("u,v\n1,0.2\n1,nan\n", "nan.csv line 3, column v: NaN or infinite"),
        "inf.csv": ("u,v\ninf,0.2\n", "inf.csv line 2, column u: NaN or infinite"),
        "text.csv": ("u,v\n1,abc\n", "text.csv line 2, column v: 'abc' is not a number"),
        "short.csv": ("u,v\n1\n", "short.csv line 2 has 1 values, expected 2"),
        "positional.csv": ("1,2,3\n", "no header and 3 columns; the surrogate takes 2 inputs"),
        "empty.csv": ("", "is empty"),
        "points.txt": ("1,2\n", "must be .csv, .npy or .npz"),
    }
    for name, (text, fragment) in cases.items():
        (tmp_path / name).write_text(text)
        _one_line_error(cli("predict", store, tmp_path / name, "-o", out), fragment)
    # the same as a user runs it, for two of them
    _one_line_error(alflow("predict", store, tmp_path / "wrong.csv", "-o", out),
                    cases["wrong.csv"][1])
    _one_line_error(alflow("predict", store, tmp_path / "nan.csv"), cases["nan.csv"][1])
    np.save(tmp_path / "wide.npy", np.zeros((2, 3)))
    _one_line_error(cli("predict", store, tmp_path / "wide.npy", "-o", out),
                    "has shape (2, 3); the surrogate takes (n, 2)")
    ok = tmp_path / "ok.csv"
    ok.write_text("u,v\n1,0.2\n")
    _one_line_error(cli("predict", store, ok, "-o", out, "--model", "99"),
                    "iteration 99 has no model checkpoint; checkpoints: 0-3")
    _one_line_error(cli("predict", store, ok, "--model", "newest"),
                    "model must be 'best', 'last' or an iteration number")
    _one_line_error(cli("predict", store, ok, "--samples", "1"), "--samples must be >= 2")
    _one_line_error(cli("predict", store, ok, "-o", tmp_path / "o.xlsx"),
                    "must end in .csv or .npz")
    _one_line_error(cli("predict", store, tmp_path / "missing.csv"), "input not found")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file")
    _one_line_error(alflow("predict", junk, ok), "junk.h5")
    _one_line_error(cli("export-model", junk), "junk.h5")
    bare = tmp_path / "bare.h5"
    CampaignStore.create(bare, config={}, oracle_info={"name": "x"},
                         pool_X=np.zeros((3, 2))).close()
    _one_line_error(cli("predict", bare, ok), "no model checkpoint yet")
    _one_line_error(cli("export-model", bare, "-o", tmp_path / "m.onnx"),
                    "no model checkpoint yet")
    assert not out.exists() and not (tmp_path / "m.onnx").exists()


def test_export_model_writes_a_checked_onnx_file(store, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "surrogate.onnx"
    r = alflow("export-model", store, "-o", out, "--model", "1")
    assert r.returncode == 0, r.stderr
    assert "iteration 1 (as requested)" in r.stdout
    assert "matches alcore's predict on 40 points" in r.stdout
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    X = np.array([[0.5, 0.5]])
    np.testing.assert_allclose(sess.run(None, {"X": X})[0],
                               load_surrogate(store, 1).predict_mean(X), rtol=1e-5)
    digest = sha(out)
    _one_line_error(cli("export-model", store, "-o", out), "already exists; pass --force")
    assert sha(out) == digest
    _one_line_error(cli("export-model", store, "-o", out, "--model", "7", "--force"),
                    "iteration 7 has no model checkpoint")
    assert sha(out) == digest


def test_help_of_the_new_commands():
    for cmd in ("predict", "export-model"):
        r = cli(cmd, "--help")
        assert r.returncode == 0 and f"usage: alflow {cmd}" in r.stdout
    r = alflow("--help")
    assert "predict" in r.stdout and "export-model" in r.stdout
