"""Find an oracle by name: ``resolve(spec, **params) -> Oracle`` and ``available()``.

A spec is tried as, in order:

1. a built-in short name (``heat2d``, ``burgers1d``, ``table``, ``california``, ``rosenbrock``,
   ``branin``, ``ishigami``, ``command``);
2. an entry point in the group ``alflow.oracles`` (how a third-party package registers one:
   ``[project.entry-points."alflow.oracles"] myname = "mypkg.mod:MyOracle"``);
3. ``path/to/file.py:attr`` (a spec whose left part ends in ``.py`` or contains a path
   separator) — the file is imported as a module and shipped to Dask workers by value, so it
   need not be importable there;
4. ``package.module:attr`` (attr may be dotted).

The attribute may be an :class:`Oracle` subclass (called with ``params``), an Oracle instance
(no params), a factory returning an Oracle (called with ``params``), or a plain function
``f(x)``, which is wrapped in a :class:`FunctionOracle` and then needs ``bounds=``.
Parameters are checked against the constructor's signature, so a misspelt one is an error
that names it and lists the allowed ones.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.metadata as md
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from typing import Any

from .base import FunctionOracle, Oracle, describe_unknown

ENTRY_POINT_GROUP = "alflow.oracles"

# name -> (import target, one-line description). Descriptions live here so that listing the
# built-ins imports nothing heavy.
BUILTINS: dict[str, tuple[str, str]] = {
    "heat2d": ("oracles.heat2d:Heat2D",
               "thermal block -div(kappa grad u)=1 on (0,1)^2, b*b log-conductivities -> mean(u), max(u); params n=64, b=3"),
    "burgers1d": ("oracles.burgers1d:Burgers1D",
                  "viscous Burgers, IC sum c_k sin(k pi x), (c1,c2,c3,log10 nu) -> u(.25,.5,.75), int u^2 at t=0.5; param N=512"),
    "table": ("oracles.table:TableOracle",
              "labels looked up in a data file (CSV, text, .npy/.npz, HDF5); params path, n_outputs, ..."),
    "california": ("oracles.datasets:california",
                   "California housing (StatLib cal_housing.data): 8 sklearn features -> median value/100k"),
    "rosenbrock": ("oracles.analytic:Rosenbrock", "Rosenbrock function on [-2,2]^dim; param dim=2"),
    "branin": ("oracles.analytic:Branin", "Branin-Hoo function on [-5,10]x[0,15]"),
    "ishigami": ("oracles.analytic:Ishigami", "Ishigami function on [-pi,pi]^3; params a=7, b=0.1"),
    "command": ("oracles.command:CommandOracle",
                "external program: argv list (no shell), JSON stdin/file -> JSON stdout/file; params argv, bounds"),
}


class OracleNotFound(LookupError):
    """No oracle matches a spec."""


def _entry_points() -> dict[str, md.EntryPoint]:
    eps = md.entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep for ep in eps}


def _import_attr(module: Any, attr: str, spec: str) -> Any:
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise OracleNotFound(f"oracle spec {spec!r}: {getattr(module, '__name__', module)!r} has no attribute {attr!r}") from None
    return obj


def _load_file(path_str: str, attr: str, spec: str) -> Any:
    path = Path(path_str).expanduser().resolve()
    if not path.is_file():
        raise OracleNotFound(f"oracle spec {spec!r}: file {path} does not exist")
    mod_name = "alflow_oracle_file_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    module = sys.modules.get(mod_name)
    if module is None or getattr(module, "__file__", None) != str(path):
        file_spec = importlib.util.spec_from_file_location(mod_name, path)
        if file_spec is None or file_spec.loader is None:
            raise OracleNotFound(f"oracle spec {spec!r}: cannot import {path}")
        module = importlib.util.module_from_spec(file_spec)
        sys.modules[mod_name] = module
        try:
            file_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[mod_name]
            raise
        # The workers cannot import this synthetic module: ship its objects by value.
        import cloudpickle

        cloudpickle.register_pickle_by_value(module)
    return _import_attr(module, attr, spec)


def _check_params(fn: Any, params: dict[str, Any], label: str) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    ps = sig.parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in ps):
        return
    allowed = [p.name for p in ps if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [k for k in params if k not in allowed]
    if unknown:
        hint = describe_unknown(unknown, allowed)
        raise ValueError(f"oracle {label}: unknown parameter(s) {hint}; allowed: {', '.join(allowed) or 'none'}")
    missing = [p.name for p in ps if p.default is p.empty and p.name not in params
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"]
    if missing:
        raise ValueError(f"oracle {label}: missing required parameter(s) {', '.join(map(repr, missing))}")


def _is_factory(fn: Any, params: dict[str, Any]) -> bool:
    """True when ``fn(**params)`` binds (a factory); False when it needs a positional x."""
    try:
        inspect.signature(fn).bind(**params)
        return True
    except TypeError:
        return False
    except ValueError:  # builtins without a signature: treat as plain functions
        return False


def instantiate(obj: Any, params: dict[str, Any], label: str) -> Oracle:
    """Turn what a spec points at (class, instance, factory, plain function) into an Oracle."""
    if isinstance(obj, Oracle):
        if params:
            raise ValueError(f"oracle {label} is an Oracle instance and takes no parameters, got {sorted(params)}")
        return obj
    if inspect.isclass(obj):
        if not issubclass(obj, Oracle):
            raise TypeError(f"oracle {label}: {obj!r} is a class but not a subclass of oracles.Oracle")
        _check_params(obj, params, label)
        return obj(**params)
    if not callable(obj):
        raise TypeError(f"oracle {label}: {obj!r} is neither an Oracle, an Oracle class nor a callable")
    if _is_factory(obj, params):
        out = obj(**params)
        if not isinstance(out, Oracle):
            raise TypeError(
                f"oracle {label}: factory {getattr(obj, '__name__', obj)!r} returned {type(out).__name__}, "
                "not an Oracle (a plain function f(x) needs bounds=...)"
            )
        return out
    if "bounds" not in params:
        try:
            required = [q for q in inspect.signature(obj).parameters.values()
                        if q.default is q.empty and q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            required = [None]
        if len(required) != 1 or (required[0] is not None and required[0].name in params):
            _check_params(obj, params, label)  # a factory called with wrong parameters: name them
        raise ValueError(
            f"oracle {label}: {getattr(obj, '__name__', obj)!r} is a plain function f(x); "
            "give its input domain as bounds=[[lo, hi], ...]"
        )
    p = dict(params)
    return FunctionOracle(obj, bounds=p.pop("bounds"), name=p.pop("name", None) or label.split(":")[-1],
                          output_names=p.pop("output_names", None), input_names=p.pop("input_names", None),
                          version=p.pop("version", None), **p)


def _looks_like_path(left: str) -> bool:
    return left.endswith(".py") or os.sep in left or "/" in left


def resolve(spec: str, **params: Any) -> Oracle:
    """The oracle named by ``spec``, built with ``params`` (see the module docstring)."""
    if isinstance(spec, Oracle):
        return instantiate(spec, params, repr(spec))
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"oracle spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if spec in BUILTINS:
        target = BUILTINS[spec][0]
        mod, attr = target.split(":")
        return instantiate(_import_attr(importlib.import_module(mod), attr, spec), params, spec)
    eps = _entry_points()
    if spec in eps:
        try:
            obj = eps[spec].load()
        except Exception as exc:
            raise OracleNotFound(f"oracle {spec!r}: entry point {eps[spec].value!r} failed to load: {exc}") from exc
        return instantiate(obj, params, spec)
    if ":" in spec:
        left, _, attr = spec.rpartition(":")
        if not attr:
            raise OracleNotFound(f"oracle spec {spec!r}: missing attribute after ':'")
        if _looks_like_path(left):
            return instantiate(_load_file(left, attr, spec), params, spec)
        try:
            module = importlib.import_module(left)
        except ImportError as exc:
            raise OracleNotFound(f"oracle spec {spec!r}: cannot import module {left!r}: {exc}") from exc
        return instantiate(_import_attr(module, attr, spec), params, spec)
    names = sorted(BUILTINS) + sorted(eps)
    close = difflib.get_close_matches(spec, names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise OracleNotFound(
        f"unknown oracle {spec!r}.{hint} Available: {', '.join(names)}; "
        "or give 'package.module:attr' or 'path/file.py:attr'."
    )


def _describe(ep: md.EntryPoint) -> str:
    try:
        obj = ep.load()
    except Exception as exc:  # a broken plug-in must not break the listing
        return f"(entry point {ep.value} failed to load: {type(exc).__name__}: {exc})"
    desc = getattr(obj, "description", None)
    if not isinstance(desc, str) or not desc:
        doc = (inspect.getdoc(obj) or "").strip().splitlines()
        desc = doc[0] if doc else ep.value
    return f"{desc} [entry point {ep.value}]"


def available() -> dict[str, str]:
    """Every resolvable short name -> a one-line description (built-ins, then entry points)."""
    out = {name: desc for name, (_, desc) in BUILTINS.items()}
    for name, ep in sorted(_entry_points().items()):
        if name not in out:
            out[name] = _describe(ep)
    return out
