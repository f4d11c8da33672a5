"""alflow oracles: the simulators that label points, how to find them, and how to fan them out.

Public API: :class:`Oracle`, :class:`FunctionOracle`, :func:`resolve`, :func:`available`,
:class:`Dispatcher`, :class:`EvalResult`. See docs/oracles.md.
"""

from .base import FunctionOracle, Oracle, OracleError, OracleTimeout
from .dispatch import Dispatcher, EvalResult
from .registry import OracleNotFound, available, resolve

__all__ = [
    "Oracle",
    "FunctionOracle",
    "resolve",
    "available",
    "Dispatcher",
    "EvalResult",
    "OracleError",
    "OracleTimeout",
    "OracleNotFound",
]
