"""alflow oracles: the simulators that label points, how to find them, and how to fan them out.

Public API: :class:`Oracle`, :class:`FunctionOracle`, :func:`resolve`, :func:`available`,
:class:`Dispatcher` (``evaluate`` a batch, or ``stream`` points one at a time),
:class:`EvalResult` (with its failure ``kind``, see :mod:`oracles.evaluation`),
:class:`NoWorkersLeft`. See docs/oracles.md.
"""

from .base import FunctionOracle, Oracle, OracleError, OracleSetupError, OracleTimeout, OutputShapeError
from .dispatch import Dispatcher
from .evaluation import KINDS, EvalResult
from .registry import OracleNotFound, available, resolve
from .stream import EvalStream, NoWorkersLeft

__all__ = [
    "Oracle",
    "FunctionOracle",
    "resolve",
    "available",
    "Dispatcher",
    "EvalStream",
    "EvalResult",
    "KINDS",
    "NoWorkersLeft",
    "OracleError",
    "OracleSetupError",
    "OracleTimeout",
    "OutputShapeError",
    "OracleNotFound",
]
