"""resolve() by every route (built-in, entry point, module:attr, file.py:attr) and available()."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pytest

from oracles import FunctionOracle, Oracle, available, resolve
from oracles.registry import BUILTINS, OracleNotFound

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PKG = ROOT / "examples" / "custom_oracle"


def make_site(tmp_path: Path) -> Path:
    """A site dir with a real dist-info: importlib.metadata finds entry points from it.

    Two entry points: the example package's oracle class (its source is on the path too) and a
    factory in a module that exists only here.
    """
    site = tmp_path / "site"
    site.mkdir()
    shutil.copytree(EXAMPLE_PKG / "alflow_example_oracle", site / "alflow_example_oracle")
    (site / "tinyoracle.py").write_text(
        "from oracles import FunctionOracle\n"
        "def make(scale=1.0):\n"
        "    '''tiny scaled square (factory)'''\n"
        "    o = FunctionOracle(lambda x: scale * x[0] ** 2, bounds=[[-1, 1]], name='tiny')\n"
        "    o.description = 'tiny scaled square from a test package'\n"
        "    return o\n"
    )
    dist = site / "alflow_test_oracles-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: alflow-test-oracles\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[alflow.oracles]\n"
        "damped_oscillator = alflow_example_oracle:DampedOscillator\n"
        "tiny = tinyoracle:make\n"
    )
    return site


@pytest.fixture
def site(tmp_path, monkeypatch):
    s = make_site(tmp_path)
    monkeypatch.syspath_prepend(str(s))
    yield s
    for m in ("alflow_example_oracle", "tinyoracle"):
        sys.modules.pop(m, None)


def test_builtin_short_names_all_resolve():
    for name in BUILTINS:
        if name == "command":
            o = resolve(name, argv=["true"], bounds=[[0, 1]])
        elif name == "table":
            o = resolve(name, X=[[0.0], [1.0]], y=[1.0, 2.0])
        elif name == "california" and not (ROOT.parent / "shared" / "data" / "cal_housing.data").exists():
            continue
        else:
            o = resolve(name)
        assert isinstance(o, Oracle)
        assert o.name == name
        assert name in available()


def test_entry_point_route(site):
    assert {"damped_oscillator", "tiny"} <= set(available())
    o = resolve("damped_oscillator", t_end=3.0)
    assert o.name == "damped_oscillator" and o.info()["params"] == {"t_end": 3.0}
    y = o([2.0, 0.0001])  # almost undamped: x(t) ~ cos(omega t)
    assert y[0] == pytest.approx(np.cos(6.0), abs=1e-3)
    assert y[1] == pytest.approx(np.pi / 4, abs=1e-3)  # first zero at pi / (2 omega)
    tiny = resolve("tiny", scale=3.0)
    assert tiny([0.5])[0] == 0.75
    assert "tiny scaled square" in available()["tiny"]
    with pytest.raises(ValueError, match="unknown parameter.*'t_ned'.*did you mean 't_end'"):
        resolve("damped_oscillator", t_ned=1.0)


def test_module_attr_route(site):
    assert resolve("oracles.analytic:Branin").name == "branin"       # a class
    assert resolve("tinyoracle:make", scale=2.0)([1.0])[0] == 2.0    # a factory
    o = resolve("math:fsum", bounds=[[0, 1], [0, 1]])                # a plain function
    assert isinstance(o, FunctionOracle) and o([0.25, 0.5])[0] == 0.75
    with pytest.raises(OracleNotFound, match="cannot import module 'no_such_mod'"):
        resolve("no_such_mod:thing")
    with pytest.raises(OracleNotFound, match="has no attribute 'Nope'"):
        resolve("oracles.analytic:Nope")


def test_file_route_class_instance_factory_and_function(tmp_path):
    f = tmp_path / "my_sim.py"
    f.write_text(
        "import numpy as np\n"
        "from oracles import Oracle, FunctionOracle\n"
        "class Cubic(Oracle):\n"
        "    name = 'cubic'\n"
        "    description = 'x^3'\n"
        "    def __init__(self, c=1.0):\n"
        "        self.c = c\n"
        "        self._setup([[-1, 1]], ['y'], params={'c': c})\n"
        "    def _evaluate(self, x):\n"
        "        return [self.c * x[0] ** 3]\n"
        "INSTANCE = Cubic(c=2.0)\n"
        "def make(c=5.0):\n"
        "    return Cubic(c=c)\n"
        "def plain(x, shift=0.0):\n"
        "    '''sum plus shift'''\n"
        "    return float(np.sum(x)) + shift\n"
    )
    assert resolve(f"{f}:Cubic", c=3.0)([0.5])[0] == 0.375
    assert resolve(f"{f}:INSTANCE")([1.0])[0] == 2.0
    assert resolve(f"{f}:make")([1.0])[0] == 5.0
    p = resolve(f"{f}:plain", bounds=[[0, 1]] * 3, shift=1.0)
    assert p([1, 2, 3])[0] == 7.0 and p.description == "sum plus shift"
    # a file module is shipped by value: workers need not import it
    clone = cloudpickle.loads(cloudpickle.dumps(resolve(f"{f}:Cubic", c=3.0)))
    assert clone([0.5])[0] == 0.375
    with pytest.raises(ValueError, match="plain function f\\(x\\); give its input domain as bounds"):
        resolve(f"{f}:plain")
    with pytest.raises(ValueError, match="takes no parameters"):
        resolve(f"{f}:INSTANCE", c=1.0)
    with pytest.raises(OracleNotFound, match="does not exist"):
        resolve(f"{tmp_path / 'missing.py'}:x")


def test_unknown_name_lists_close_matches():
    with pytest.raises(OracleNotFound, match="unknown oracle 'heat2'.*Did you mean 'heat2d'") as ei:
        resolve("heat2")
    assert "burgers1d" in str(ei.value)  # the full list is there too
    with pytest.raises(OracleNotFound, match="Did you mean 'rosenbrock'"):
        resolve("rosenbruck")


def test_unknown_and_missing_parameters_are_named():
    with pytest.raises(ValueError, match="unknown parameter.*'grid'.*allowed: n, b"):
        resolve("heat2d", grid=32)
    with pytest.raises(ValueError, match="unknown parameter.*'pth'.*did you mean 'path'"):
        resolve("california", pth="x")


def test_available_lists_every_builtin_with_one_line():
    av = available()
    assert set(BUILTINS) <= set(av)
    assert all(isinstance(v, str) and v and "\n" not in v for v in av.values())


def test_alflow_oracles_cli_lists_builtins_and_entry_point(tmp_path):
    site = make_site(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "COLUMNS": "200", "NO_COLOR": "1"}
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "oracles"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in (*BUILTINS, "damped_oscillator", "tiny"):
        assert name in proc.stdout, f"{name} missing from `alflow oracles` output:\n{proc.stdout}"


def _plain_file(tmp_path: Path) -> Path:
    f = tmp_path / "plainsim.py"
    f.write_text("def sim(x, scale=1.0, *, shift):\n    return scale * float(x[0]) + shift\n"
                 "def loose(x, **opts):\n    return float(x[0]) + len(opts)\n")
    return f


def test_plain_function_params_are_checked_against_its_signature_when_resolved(tmp_path):
    """Issue 16 item 6: a misspelt or missing oracle.params entry of a plain function is an
    error when the oracle is built (so `alflow validate` reports it), not on every point."""
    f = _plain_file(tmp_path)
    o = resolve(f"{f}:sim", bounds=[[0, 1]], scale=2.0, shift=1.0)
    assert o([0.5])[0] == 2.0
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) 'scal' \(did you mean 'scale'\?\)"):
        resolve(f"{f}:sim", bounds=[[0, 1]], scal=2.0, shift=1.0)
    with pytest.raises(ValueError, match=r"'output_name' \(did you mean 'output_names'\?\)"):
        resolve(f"{f}:sim", bounds=[[0, 1]], shift=1.0, output_name=["a"])
    with pytest.raises(ValueError, match=r"missing required parameter\(s\) 'shift'"):
        resolve(f"{f}:sim", bounds=[[0, 1]])
    # a function that takes **kwargs accepts any parameter
    assert resolve(f"{f}:loose", bounds=[[0, 1]], anything=1, goes=2)([0.5])[0] == 2.5


def test_alflow_validate_reports_an_unknown_plain_function_parameter(tmp_path):
    f = _plain_file(tmp_path)
    cfg = tmp_path / "camp.toml"
    cfg.write_text(
        "[campaign]\nname = \"p\"\nstore = \"camp.h5\"\n"
        f"[oracle]\nname = \"{f}:sim\"\nbounds = [[0.0, 1.0]]\nparams = {{ shfit = 1.0 }}\n"
        "[budget]\ninitial = 4\niterations = 1\n[dask]\nworkers = 0\n")
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "validate", str(cfg)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "'shfit' (did you mean 'shift'?)" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "camp.h5").exists()
