"""How much memory a campaign needs, estimated from its config before anything is built.

Why an estimate rather than caps on sizes: a wide network or a large pool is fine on a big
machine and impossible on a laptop; what matters is whether it fits *this* machine's RAM. The
figures are lower bounds of what alflow holds at its peak, so a config they refuse cannot run:

* the network: ``n_members`` copies (times k with ``per_output``) of an MLP ``d -> hidden... -> k`` with
  ``P = sum(in * out + out)`` float32 parameters, each held :data:`COPIES_PER_PARAMETER` times
  (weights, gradient, AdamW's two moments, the best-epoch snapshot, the exported state), plus
  one training batch of activations (``batch_size * sum(hidden)`` floats, forward, mask and
  backward);
* the pool of ``N`` points: its inputs (float64, and once more while the design is drawn), the
  store's per-point records (labels, status, times), and what acquisition builds over the whole
  pool each iteration: ``T`` MC-dropout samples per output (float32) and the centred
  ``(N, T)`` feature matrix per output (float64) of :mod:`alcore.nngp.features`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from alcore.config.sections import ModelSection

__all__ = ["MemoryEstimate", "estimate_memory", "network_parameters", "format_bytes", "COPIES_PER_PARAMETER"]

COPIES_PER_PARAMETER = 6
_FLOAT32 = 4
_FLOAT64 = 8
_STORE_BYTES_PER_POINT = 64  # status, wall time, submitted/started/finished, attempts, iteration
_BATCH_ACTIVATION_COPIES = 3


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of the two parts that grow with the config (see the module docstring)."""

    network_bytes: int
    pool_bytes: int
    parameters: int  # of one member

    @property
    def total_bytes(self) -> int:
        return self.network_bytes + self.pool_bytes


def network_parameters(d: int, hidden: Sequence[int], k: int) -> int:
    """Weights and biases of an MLP ``d -> hidden[0] -> ... -> k``."""
    sizes = [int(d), *(int(h) for h in hidden), int(k)]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def estimate_memory(model: ModelSection, samples: int, d: int, k: int, pool_size: int) -> MemoryEstimate:
    """Peak-memory lower bound for ``model`` (a ``ModelSection``), ``samples`` MC samples
    (``acquisition.samples``), ``d`` inputs, ``k`` outputs and a pool of ``pool_size`` points."""
    defaults = _model_defaults()
    members = (model.n_members or defaults["n_members"]) * (int(k) if model.per_output else 1)
    batch = model.batch_size or defaults["batch_size"]
    hidden = effective_hidden(model)
    params = network_parameters(d, hidden, k)
    network = (members * params * COPIES_PER_PARAMETER * _FLOAT32
               + batch * sum(hidden) * _BATCH_ACTIVATION_COPIES * _FLOAT32)
    per_point = (2 * d * _FLOAT64 + k * _FLOAT64 + _STORE_BYTES_PER_POINT
                 + samples * k * (_FLOAT32 + _FLOAT64))
    return MemoryEstimate(network_bytes=int(network), pool_bytes=int(pool_size) * int(per_point),
                          parameters=int(params))


def format_bytes(n: float) -> str:
    """``1.5 GiB``: binary units, three significant digits."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def effective_hidden(model: ModelSection) -> list[int]:
    """``model.hidden``, or DropoutMLP's default layer sizes when the config leaves it out."""
    return list(model.hidden) if model.hidden is not None else list(_model_defaults()["hidden"])


def _model_defaults() -> dict:
    """``DropoutMLP``'s own defaults for the keys a config may leave out."""
    from alcore.model import DropoutMLP  # noqa: PLC0415 (torch; only when estimating)

    params = inspect.signature(DropoutMLP.__init__).parameters
    return {"n_members": int(params["n_members"].default), "batch_size": int(params["batch_size"].default),
            "hidden": tuple(int(h) for h in params["hidden"].default)}
