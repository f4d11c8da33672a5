"""Shipping oracles whose code exists only in this process to Dask workers.

An oracle loaded from ``path/file.py:attr`` lives in a module that the workers cannot import.
The registry registers such modules with cloudpickle to be pickled by value, but Dask pickles
with the standard :mod:`pickle` first, which refers to functions by module name and so fails on
the worker. :func:`shippable` wraps such an oracle so that its code travels as cloudpickle
bytes inside a class that is importable everywhere. The dispatcher applies it to every oracle it
sends, so callers never have to think about it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from oracles.base import Oracle


def _by_value_modules(oracle: Any) -> set[str]:
    """Modules of the oracle's code that exist only in this process (a ``file.py:attr`` plug-in,
    registered with cloudpickle to be pickled by value)."""
    try:
        import cloudpickle  # noqa: PLC0415
    except ImportError:  # pragma: no cover
        return set()
    registry = set(cloudpickle.list_registry_pickle_by_value())
    mods = {type(oracle).__module__, getattr(getattr(oracle, "fn", None), "__module__", None)}
    return {m for m in mods if m in registry}


def shippable(oracle: Any) -> Any:
    """The oracle in a form a Dask worker can unpickle.

    Dask pickles with the standard ``pickle`` first, which refers to functions by module name;
    an oracle defined in a ``path/file.py`` loaded by path lives in a module the workers cannot
    import. Such an oracle travels as cloudpickle bytes (code by value) inside
    :class:`_ByValueOracle`, whose own class is importable everywhere. Others pass unchanged.
    """
    if isinstance(oracle, _ByValueOracle) or not _by_value_modules(oracle):
        return oracle
    return _ByValueOracle(oracle)


class _ByValueOracle(Oracle):
    """Wraps an oracle whose code must be shipped by value (see :func:`shippable`)."""

    def __init__(self, inner: Any) -> None:
        import cloudpickle  # noqa: PLC0415

        self._payload = cloudpickle.dumps(inner)
        self._inner = inner
        self.name, self.version = inner.name, inner.version
        self.description = getattr(inner, "description", "")
        self._setup(inner.bounds, inner.output_names, inner.input_names,
                    params=dict(getattr(inner, "params", {}) or {}))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_inner"] = None  # rebuilt from the payload on the worker
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _unwrapped(self) -> Any:
        if self._inner is None:
            import cloudpickle  # noqa: PLC0415

            self._inner = cloudpickle.loads(self._payload)
        return self._inner

    # Delegate whole calls, not just ``_evaluate``: the wrapper must not change what the inner
    # oracle returns or raises (the dispatcher classifies bad outputs itself).
    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._unwrapped()(x)

    def evaluate_batch(self, X: np.ndarray) -> np.ndarray:
        return self._unwrapped().evaluate_batch(X)

    def _evaluate(self, x: np.ndarray) -> Any:  # pragma: no cover - __call__ is delegated
        return self._unwrapped()._evaluate(x)
