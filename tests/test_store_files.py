"""Bad files give one clear error and stay byte-for-byte untouched; good files are plain HDF5."""
from __future__ import annotations

import shutil
import subprocess

import h5py
import numpy as np
import pytest

from alcore.store import (CampaignStore, ForeignHDF5Error, NotHDF5Error, SchemaVersionError,
                          StoreNotFoundError)

from store_helpers import dir_state, make_store


@pytest.mark.parametrize("mode", ["r", "a"])
def test_non_hdf5_file(tmp_path, mode):
    p = tmp_path / "notes.h5"
    p.write_text("this is not HDF5\n" * 100)
    before = dir_state(tmp_path)
    with pytest.raises(NotHDF5Error, match="notes.h5 is not an HDF5 file"):
        CampaignStore.open(p, mode)
    assert dir_state(tmp_path) == before  # no lock or journal left either


@pytest.mark.parametrize("mode", ["r", "a"])
def test_empty_file(tmp_path, mode):
    p = tmp_path / "empty.h5"
    p.touch()
    with pytest.raises(NotHDF5Error):
        CampaignStore.open(p, mode)
    assert dir_state(tmp_path) == {"empty.h5": dir_state(tmp_path)["empty.h5"]}


@pytest.mark.parametrize("mode", ["r", "a"])
def test_foreign_hdf5_file(tmp_path, mode):
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f["data"] = np.arange(10)
        f.create_group("meta").attrs["something"] = "else"
    before = dir_state(tmp_path)
    with pytest.raises(ForeignHDF5Error, match="not an alflow store"):
        CampaignStore.open(p, mode)
    assert dir_state(tmp_path) == before


@pytest.mark.parametrize("mode", ["r", "a"])
def test_newer_schema(tmp_path, mode):
    p = tmp_path / "c.h5"
    make_store(p).close()
    with h5py.File(p, "r+") as f:
        f["meta"].attrs["schema_version"] = np.int32(99)
    before = dir_state(tmp_path)
    with pytest.raises(SchemaVersionError, match="schema version 99"):
        CampaignStore.open(p, mode)
    assert dir_state(tmp_path) == before


def test_missing_file(tmp_path):
    with pytest.raises(StoreNotFoundError):
        CampaignStore.open(tmp_path / "nope.h5")
    assert list(tmp_path.iterdir()) == []


def _filled(tmp_path):
    p = tmp_path / "c.h5"
    with make_store(p) as s:
        s.mark_requested([1, 2, 3], 0, [3.0, 2.0, 1.0])
        s.record_label(1, [0.5, 1.5], 2.0, "tcp://127.0.0.1:4001", submitted=1700000000.0,
                       started=1700000001.0, finished=1700000003.0)
        s.record_failure(2, "timeout after 60 s", 60.0, "tcp://127.0.0.1:4002", 2,
                         kind="timeout")
        s.record_iteration(0, {"rmse": [0.1, 0.2], "rmse_mean": 0.15, "nll": 1.0},
                           {"train_s": 3.0, "select_s": 0.5}, info={"model": "mlp"})
        s.save_checkpoint(0, {"layer0.weight": np.ones((4, 3), np.float32),
                              "x_mean": np.zeros(3)})
    return p


def test_plain_h5py_reads_everything_as_plain_arrays(tmp_path):
    p = _filled(tmp_path)
    kinds = {}
    with h5py.File(p, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                dt = obj.dtype
                assert dt.kind in "iuf" or h5py.check_string_dtype(dt) is not None, (name, dt)
                assert h5py.check_ref_dtype(dt) is None
                kinds[name] = dt.kind
            for v in obj.attrs.values():
                assert not isinstance(v, (h5py.Reference, h5py.RegionReference))
        f.visititems(visit)
        assert f["pool/X"].shape == (40, 3) and f["pool/y"].shape == (40, 2)
        assert f["pool/X"].maxshape == (None, 3) and f["pool/X"].chunks is not None
        assert f["pool/status"].dtype == np.int8 and f["pool/status"][1] == 2
        assert f["pool/worker"].asstr()[1] == "tcp://127.0.0.1:4001"
        assert f["pool/failure_reason"].asstr()[2] == "timeout after 60 s"
        assert f["pool/failure_kind"].asstr()[2] == "timeout" and f["pool/attempts"][1] == 1
        assert f["pool/started"][1] == 1700000001.0 and np.isnan(f["pool/started"][0])
        assert f["iterations/0000"].attrs["info_json"] == '{"model": "mlp"}'
        assert np.isnan(f["pool/y"][0]).all() and f["pool/y"][1].tolist() == [0.5, 1.5]
        assert f["iterations/0000/selected"][()].tolist() == [1, 2, 3]
        assert f["history/metrics.rmse_mean"][()].tolist() == [0.15]
        assert f["history/metrics.rmse.1"][()].tolist() == [0.2]
        assert f["history/timings.train_s"][()].tolist() == [3.0]
        assert f["checkpoints/0000/layer0.weight"].dtype == np.float32
        assert f["meta"].attrs["alflow_format"] == "alflow-campaign-store"
        assert '"hidden"' in f["meta/config_json"].asstr()[()]
    assert {"pool/X", "test/X", "test/y", "meta/config_json"} <= set(kinds)


@pytest.mark.skipif(shutil.which("h5dump") is None, reason="h5dump (hdf5-tools) not installed")
def test_h5dump_lists_documented_layout(tmp_path):
    p = _filled(tmp_path)
    out = subprocess.run(["h5dump", "-H", str(p)], capture_output=True, text=True,
                         timeout=60).stdout
    for name in ("GROUP \"meta\"", "DATASET \"config_json\"", "GROUP \"pool\"",
                 "DATASET \"X\"", "DATASET \"status\"", "DATASET \"y\"", "DATASET \"worker\"",
                 "GROUP \"iterations\"", "GROUP \"0000\"", "DATASET \"selected\"",
                 "GROUP \"history\"", "GROUP \"checkpoints\"", "ATTRIBUTE \"schema_version\"",
                 "DATASET \"submitted\"", "DATASET \"started\"", "DATASET \"finished\"",
                 "DATASET \"failure_kind\"", "ATTRIBUTE \"info_json\""):
        assert name in out, name
    assert "H5T_STD_I8LE" in out and "H5S_UNLIMITED" in out
