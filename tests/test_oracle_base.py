"""The Oracle interface, FunctionOracle, validation and picklability of every built-in."""

from __future__ import annotations

import cloudpickle
import numpy as np
import pytest

from oracles import FunctionOracle, Oracle, OracleSetupError, OutputShapeError, resolve


def test_function_oracle_wraps_scalar_and_vector_functions():
    o = FunctionOracle(lambda x: x.sum(), bounds=[[0, 1], [-1, 1]], name="sum")
    assert o.input_dim == 2 and o.output_dim == 1
    assert o.output_names == ("y",) and o.input_names == ("x0", "x1")
    np.testing.assert_allclose(o([0.25, 0.5]), [0.75])
    v = FunctionOracle(lambda x: [x[0], x[0] ** 2], bounds=[[0, 2]], output_names=["a", "b"])
    np.testing.assert_allclose(v.evaluate_batch(np.array([[1.0], [2.0]])), [[1, 1], [2, 4]])


def test_function_oracle_passes_extra_params_to_the_function():
    o = FunctionOracle(lambda x, scale: scale * x[0], bounds=[[0, 1]], scale=3.0)
    assert o([2.0])[0] == 6.0
    assert o.info()["params"]["scale"] == 3.0


@pytest.mark.parametrize(
    "bounds, msg",
    [([[1, 0]], "low must be < high"), ([[0, 1, 2]], r"shape \(d, 2\)"), ([[0, np.inf]], "finite"), ("ab", "numbers")],
)
def test_bad_bounds_are_named(bounds, msg):
    with pytest.raises(ValueError, match=msg):
        FunctionOracle(lambda x: 0.0, bounds=bounds)


def test_wrong_input_and_output_shapes_fail_loudly():
    o = FunctionOracle(lambda x: [1.0, 2.0], bounds=[[0, 1]])  # says k=1, returns 2
    with pytest.raises(OutputShapeError, match=r"output must have shape \(1,\)") as ei:
        o([0.5])
    assert isinstance(ei.value, (ValueError, OracleSetupError))  # a set-up error: never retried
    assert "set oracle.params output_names = ['y0', 'y1']" in str(ei.value)
    named = FunctionOracle(lambda x: [1.0, 2.0, 3.0], bounds=[[0, 1]], output_names=["a", "b"])
    with pytest.raises(OutputShapeError, match=r"output_names = \['a', 'b', 'y2'\]"):
        named([0.5])
    with pytest.raises(ValueError, match=r"input must have shape \(1,\)"):
        FunctionOracle(lambda x: 0.0, bounds=[[0, 1]])([0.1, 0.2])


def test_name_lists_must_match_dimensions():
    with pytest.raises(ValueError, match="input_names has 1 entries"):
        FunctionOracle(lambda x: 0.0, bounds=[[0, 1], [0, 1]], input_names=["a"])


def test_info_is_provenance():
    o = resolve("heat2d", n=16, b=2)
    info = o.info()
    assert info["name"] == "heat2d" and info["version"] == o.version
    assert info["params"] == {"n": 16, "b": 2}
    assert info["output_names"] == ["mean_u", "max_u"] and len(info["bounds"]) == 4


@pytest.mark.parametrize(
    "spec, params",
    [("heat2d", {"n": 16}), ("burgers1d", {"N": 32}), ("rosenbrock", {"dim": 3}), ("branin", {}),
     ("ishigami", {})],
)
def test_builtins_survive_cloudpickle(spec, params):
    o = resolve(spec, **params)
    assert isinstance(o, Oracle)
    x = o.bounds.mean(axis=1) + 0.1 * np.diff(o.bounds, axis=1)[:, 0]
    o2 = cloudpickle.loads(cloudpickle.dumps(o))
    np.testing.assert_array_equal(o(x), o2(x))


def test_function_oracle_with_closure_survives_cloudpickle():
    offset = 4.0
    o = FunctionOracle(lambda x: x[0] + offset, bounds=[[0, 1]])
    assert cloudpickle.loads(cloudpickle.dumps(o))([1.0])[0] == 5.0


def test_default_evaluate_batch_checks_columns():
    o = resolve("branin")
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        o.evaluate_batch(np.zeros((3, 3)))
    assert o.fixed_points() is None
