"""The oracle interface: one input vector in, one output vector out.

An oracle is whatever produces the label of a point — usually an expensive simulator. alflow
needs only a little from it: a box domain (to draw candidate pools), names for inputs and
outputs, a version string (provenance: a label is only comparable with labels made by the same
code), and ``oracle(x) -> (k,)``. Everything else (retries, timeouts, fan-out) lives in
:mod:`oracles.dispatch`, so oracles stay plain, picklable Python objects that Dask can ship.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np


class OracleError(RuntimeError):
    """An oracle could not produce a label for a point (the dispatcher records the reason)."""


class OracleTimeout(OracleError):
    """An evaluation ran past its time limit (its process group was killed)."""


class OracleSetupError(OracleError):
    """A failure that is the same for every point: the set-up is wrong, not the input.

    Examples: a function that returns 3 values where 1 is declared, a call that cannot bind its
    parameters, a module missing where the oracle runs. Retrying, or trying other points,
    cannot help, so the dispatcher never retries these (kind ``"setup"``) and the message
    says what to change.
    """


class OutputShapeError(OracleSetupError, ValueError):
    """The oracle returned a different number of outputs than it declares."""


def describe_unknown(unknown: Iterable[str], allowed: Sequence[str]) -> str:
    """``'scal' (did you mean 'scale'?), 'x'``: names with their closest allowed spelling."""
    parts = []
    for k in unknown:
        close = difflib.get_close_matches(k, list(allowed), n=1)
        parts.append(f"{k!r} (did you mean {close[0]!r}?)" if close else repr(k))
    return ", ".join(parts)


def as_bounds(bounds: Any, name: str = "bounds") -> np.ndarray:
    """Validate box bounds into a float (d, 2) array with low < high in every row."""
    try:
        b = np.asarray(bounds, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a (d, 2) array of numbers, got {bounds!r}") from exc
    if b.ndim == 1 and b.shape == (2,):
        b = b[None, :]
    if b.ndim != 2 or b.shape[1] != 2 or b.shape[0] < 1:
        raise ValueError(f"{name} must have shape (d, 2) with d >= 1, got shape {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError(f"{name} must be finite, got {b.tolist()}")
    bad = np.nonzero(b[:, 0] >= b[:, 1])[0]
    if bad.size:
        raise ValueError(f"{name}: low must be < high in every row; row(s) {bad.tolist()} are not")
    return b


def _names(names: Sequence[str] | None, n: int, prefix: str, what: str) -> tuple[str, ...]:
    if names is None:
        if prefix == "y" and n == 1:
            return ("y",)
        return tuple(f"{prefix}{i}" for i in range(n))
    if isinstance(names, str):
        names = [names]
    names = tuple(str(s) for s in names)
    if len(names) != n:
        raise ValueError(f"{what} has {len(names)} entries but the oracle has {n}: {names}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} must be unique, got {names}")
    return names


class Oracle:
    """Base class of every oracle.

    Subclasses call :meth:`_setup` in ``__init__`` (bounds, names, the parameters to record)
    and implement :meth:`_evaluate`. ``__call__`` checks the input shape and the output
    shape so that a broken simulator fails loudly at the point where it broke.
    """

    name: str = "oracle"
    version: str = "0"
    description: str = ""

    bounds: np.ndarray
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    params: dict[str, Any]

    def _setup(
        self,
        bounds: Any,
        output_names: Sequence[str] | None,
        input_names: Sequence[str] | None = None,
        params: dict[str, Any] | None = None,
        n_outputs: int | None = None,
    ) -> None:
        self.bounds = as_bounds(bounds)
        d = self.bounds.shape[0]
        self.input_names = _names(input_names, d, "x", "input_names")
        if n_outputs is None:
            n_outputs = 1 if output_names is None else len([output_names] if isinstance(output_names, str) else output_names)
        self.output_names = _names(output_names, n_outputs, "y", "output_names")
        self.params = dict(params or {})

    @property
    def input_dim(self) -> int:
        return int(self.bounds.shape[0])

    @property
    def output_dim(self) -> int:
        return len(self.output_names)

    def _evaluate(self, x: np.ndarray) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement _evaluate(x)")

    def _check_x(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if x.shape != (self.input_dim,):
            raise ValueError(f"{self.name}: input must have shape ({self.input_dim},), got {x.shape}")
        return x

    def _check_y(self, y: Any) -> np.ndarray:
        y = np.atleast_1d(np.asarray(y, dtype=float)).reshape(-1)
        if y.shape != (self.output_dim,):
            raise OutputShapeError(self.describe_output_mismatch(y.size))
        return y

    def describe_output_mismatch(self, n_returned: int) -> str:
        """One line for an output of ``n_returned`` values where ``output_dim`` are declared,
        saying what to set (it is the same for every point, so the user must fix it)."""
        k = self.output_dim
        return (f"{self.name}: returned {n_returned} output(s) but the oracle declares {k} "
                f"({', '.join(self.output_names)}), so its output must have shape ({k},): "
                f"{self._declare_outputs_hint(n_returned)}")

    def _declare_outputs_hint(self, n_returned: int) -> str:
        """How to fix a wrong output count; oracles whose outputs come from the config say
        which parameter to set."""
        return f"fix the outputs that {type(self).__name__} declares (its output_names)"

    def _suggested_output_names(self, n: int) -> list[str]:
        """Names for ``n`` outputs: the declared ones, extended, unless they are the defaults."""
        defaults = list(_names(None, n, "y", "output_names"))
        if self.output_names == _names(None, self.output_dim, "y", "output_names"):
            return defaults
        names = list(self.output_names[:n])
        return names + [f"y{i}" for i in range(len(names), n)]

    def abort(self) -> None:
        """Stop this oracle's evaluations running in this process, if it can.

        Called by the dispatcher when an evaluation overran its timeout: an oracle that runs
        external programs kills them, so the worker need not be restarted. The default does
        nothing (a Python thread cannot be interrupted; the dispatcher restarts the worker).
        """

    def __call__(self, x: Any) -> np.ndarray:
        """Evaluate one point ``x`` of shape (d,) to an output of shape (k,)."""
        return self._check_y(self._evaluate(self._check_x(x)))

    def evaluate_batch(self, X: Any) -> np.ndarray:
        """Evaluate (n, d) points to (n, k). The default loops; vectorised oracles override it."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.input_dim:
            raise ValueError(f"{self.name}: batch must have shape (n, {self.input_dim}), got {X.shape}")
        out = np.empty((X.shape[0], self.output_dim))
        for i, x in enumerate(X):
            out[i] = self(x)
        return out

    def fixed_points(self) -> np.ndarray | None:
        """All inputs of a pool-based oracle (a table); ``None`` for oracles defined on a box."""
        return None

    def info(self) -> dict[str, Any]:
        """Provenance record stored with a campaign: what produced its labels."""
        return {
            "name": self.name,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "version": self.version,
            "description": self.description,
            "params": _jsonable(self.params),
            "bounds": self.bounds.tolist(),
            "input_names": list(self.input_names),
            "output_names": list(self.output_names),
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} d={self.input_dim} k={self.output_dim}>"


def _jsonable(v: Any) -> Any:
    """Make parameters JSON-friendly for provenance (arrays to lists, paths to strings)."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return repr(v) if callable(v) else str(v)


class FunctionOracle(Oracle):
    """Wrap a plain ``f(x) -> float | array`` so it behaves as an :class:`Oracle`.

    The function cannot tell us its domain, so ``bounds`` is required (it comes from the
    campaign config). Extra keyword arguments are passed on to ``fn`` on every call, which is
    how config parameters reach a plain function.
    """

    version = "function"

    def __init__(
        self,
        fn: Callable[..., Any],
        bounds: Any,
        name: str | None = None,
        output_names: Sequence[str] | None = None,
        input_names: Sequence[str] | None = None,
        version: str | None = None,
        **fn_kwargs: Any,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"FunctionOracle needs a callable, got {fn!r}")
        self.fn = fn
        self.fn_kwargs = fn_kwargs
        self.name = name or getattr(fn, "__name__", "function")
        if version is not None:
            self.version = str(version)
        doc = (getattr(fn, "__doc__", None) or "").strip().splitlines()
        self.description = doc[0] if doc else f"plain function {self.name}"
        self._qualname = f"{getattr(fn, '__qualname__', self.name)}"
        check_function_params(fn, fn_kwargs, self._qualname)
        self._setup(bounds, output_names, input_names,
                    params={"function": f"{getattr(fn, '__module__', '?')}.{self._qualname}",
                            **fn_kwargs})

    def _declare_outputs_hint(self, n_returned: int) -> str:
        return f"set oracle.params output_names = {self._suggested_output_names(n_returned)}"

    def _evaluate(self, x: np.ndarray) -> Any:
        try:
            return self.fn(x, **self.fn_kwargs)
        except TypeError as exc:
            # Raised by the call itself (no frame of fn below ours) and the call does not
            # bind: the same for every x, so a set-up error rather than a property of x.
            tb = exc.__traceback__
            if tb is not None and tb.tb_next is None and not _binds(self.fn, x, self.fn_kwargs):
                raise OracleSetupError(
                    f"plain function {self._qualname} cannot be called as f(x, **params): {exc}") from exc
            raise


# Keys of oracle.params that FunctionOracle takes for itself rather than passing to the function.
FUNCTION_ORACLE_KEYS = ("bounds", "name", "output_names", "input_names", "version")


def _binds(fn: Callable[..., Any], x: Any, kwargs: dict[str, Any]) -> bool:
    try:
        inspect.signature(fn).bind(x, **kwargs)
    except TypeError:
        return False
    except ValueError:  # no signature (some builtins): cannot tell
        return False
    return True


def check_function_params(fn: Callable[..., Any], kwargs: dict[str, Any], label: str) -> None:
    """Check that ``fn(x, **kwargs)`` binds: unknown and missing parameters are named.

    Done when the oracle is built (so ``alflow validate`` reports a misspelt parameter) rather
    than on every point at run time.
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: nothing to check
        return
    if _binds(fn, object(), kwargs):
        return
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes_varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
    if not positional and not takes_varargs:
        raise ValueError(f"plain function {label} takes no positional argument for the input vector x")
    x_name = positional[0].name if positional else None
    named = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != x_name]
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        unknown = [k for k in kwargs if k not in named]
        if unknown:
            raise ValueError(
                f"plain function {label}: unknown parameter(s) "
                f"{describe_unknown(unknown, named + list(FUNCTION_ORACLE_KEYS))}; "
                f"besides {', '.join(FUNCTION_ORACLE_KEYS)} it takes: {', '.join(named) or 'none'}")
    missing = [p.name for p in params if p.name != x_name and p.default is p.empty and p.name not in kwargs
               and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if missing:
        raise ValueError(f"plain function {label}: missing required parameter(s) "
                         f"{', '.join(map(repr, missing))} (give them in oracle.params)")
    raise ValueError(f"plain function {label} cannot be called as f(x, **params) with params {sorted(kwargs)}")
