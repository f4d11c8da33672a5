"""table oracle (CSV, text, .npy, .npz, HDF5) and the California housing loader."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from oracles import resolve
from oracles import datasets
from oracles.table import TableOracle

rng = np.random.default_rng(3)
X = np.round(rng.uniform(-1, 1, (20, 3)), 6)
Y = np.round(np.column_stack([X.sum(1), X[:, 0] * X[:, 1]]), 6)


def check(o: TableOracle, n_outputs: int = 2):
    assert o.input_dim == 3 and o.output_dim == n_outputs
    np.testing.assert_allclose(o.fixed_points(), X)
    for i in (0, 7, 19):
        np.testing.assert_allclose(o(X[i]), Y[i, :n_outputs])
    np.testing.assert_allclose(o.evaluate_batch(X[[3, 1]]), Y[[3, 1], :n_outputs])
    np.testing.assert_allclose(o.bounds, np.column_stack([X.min(0), X.max(0)]))


def test_csv_with_header(tmp_path):
    p = tmp_path / "d.csv"
    np.savetxt(p, np.column_stack([X, Y]), delimiter=",", header="a,b,c,s,p", comments="", fmt="%.6f")
    o = resolve("table", path=str(p), n_outputs=2)
    check(o)
    assert o.input_names == ("a", "b", "c") and o.output_names == ("s", "p")
    by_name = resolve("table", path=str(p), input_columns=["a", "b", "c"], output_columns=["p"])
    np.testing.assert_allclose(by_name(X[2]), Y[2, 1:])
    assert by_name.output_names == ("p",)


def test_whitespace_text_without_header(tmp_path):
    p = tmp_path / "d.dat"
    np.savetxt(p, np.column_stack([X, Y]), fmt="%.6f")
    check(resolve("table", path=str(p), n_outputs=2))


def test_npy_npz_and_hdf5(tmp_path):
    np.save(tmp_path / "d.npy", np.column_stack([X, Y]))
    check(resolve("table", path=str(tmp_path / "d.npy"), n_outputs=2))
    np.savez(tmp_path / "d.npz", X=X, y=Y)
    check(resolve("table", path=str(tmp_path / "d.npz")))
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["inputs"] = X
        f["labels"] = Y
        f["all"] = np.column_stack([X, Y])
    check(resolve("table", path=str(tmp_path / "d.h5"), x_key="inputs", y_key="labels"))
    check(resolve("table", path=str(tmp_path / "d.h5"), key="all", n_outputs=2))


def test_point_not_in_table_is_a_clear_error():
    o = TableOracle(X=X, y=Y)
    with pytest.raises(KeyError, match="not in the table"):
        o(X[0] + 1e-9)
    # -0.0 and 0.0 are the same point
    o2 = TableOracle(X=np.array([[0.0, 1.0]]), y=np.array([5.0]))
    assert o2([-0.0, 1.0])[0] == 5.0


def test_duplicates_keep_first_label_and_bad_input_is_named(tmp_path):
    o = TableOracle(X=np.vstack([X, X[:2]]), y=np.vstack([Y, Y[:2] + 100]))
    assert o.n_duplicates == 2 and o.fixed_points().shape == (20, 3)
    np.testing.assert_allclose(o(X[1]), Y[1])
    with pytest.raises(FileNotFoundError, match="not found"):
        resolve("table", path=str(tmp_path / "missing.csv"))
    with pytest.raises(ValueError, match="column 'zz' not found"):
        p = tmp_path / "h.csv"
        p.write_text("a,b\n1,2\n")
        resolve("table", path=str(p), output_columns=["zz"])
    with pytest.raises(ValueError, match="either path= or X="):
        TableOracle(path="x.csv", X=X, y=Y)


CAL = Path(datasets.candidate_paths()[-2]).resolve()


@pytest.mark.skipif(not CAL.exists(), reason="cal_housing.data not present in ../shared/data")
def test_california_derives_sklearn_features():
    o = resolve("california")
    assert o.input_names == datasets.FEATURES and o.output_names == ("MedHouseVal",)
    P = o.fixed_points()
    assert P.shape == (20640, 8)
    raw = np.loadtxt(CAL, delimiter=",", max_rows=1)
    # first StatLib row: lon, lat, age, rooms, bedrooms, pop, households, income, value
    lon, lat, age, rooms, bed, pop, hh, inc, val = raw
    np.testing.assert_allclose(P[0], [inc, age, rooms / hh, bed / hh, pop, pop / hh, lat, lon])
    assert o(P[0])[0] == pytest.approx(val / 1e5)
    assert o(P[0])[0] == pytest.approx(4.526)  # sklearn's documented first target
    assert 0.14 < o.outputs.min() and o.outputs.max() <= 5.00001


def test_california_search_order_and_missing_file_error(tmp_path, monkeypatch):
    small = tmp_path / "cal.data"
    small.write_text("-122.23,37.88,41,880,129,322,126,8.3252,452600\n-122.22,37.86,21,7099,1106,2401,1138,8.3014,358500\n")
    monkeypatch.setenv(datasets.ENV_VAR, str(small))
    o = resolve("california")
    assert o.fixed_points().shape == (2, 8) and o.info()["params"]["source"] == str(small.resolve())
    # explicit path beats the env var
    assert resolve("california", path=str(small)).fixed_points().shape == (2, 8)
    with pytest.raises(FileNotFoundError, match="is not a file"):
        resolve("california", path=str(tmp_path / "nope.data"))
    # nothing anywhere, no sklearn -> an error that says where to put the file
    monkeypatch.delenv(datasets.ENV_VAR)
    monkeypatch.setattr(datasets, "_PROJECT_ROOT", tmp_path / "a" / "b")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(FileNotFoundError, match=f"set {datasets.ENV_VAR}"):
        resolve("california")
