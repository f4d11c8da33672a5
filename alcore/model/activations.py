"""The one activation table of alflow's networks.

Every place that needs an activation (training, dropout-off prediction, MC-dropout sampling,
the state format, the config) looks it up here, so adding one is one entry.  The ``code`` of an
entry is what the model state stores as ``arch_activation``: codes are permanent (a state saved
today must load tomorrow), so new activations get new codes, old ones are never renumbered.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Activation", "ACTIVATION_TABLE", "ACTIVATIONS", "get_activation", "activation_from_code"]


@dataclass(frozen=True)
class Activation:
    """An activation: its function, an in-place variant (saves memory in sampling) and its
    initialisation gain (weights start with std ``gain / sqrt(fan_in)``, He-style)."""

    name: str
    code: int
    fn: Callable[[torch.Tensor], torch.Tensor]
    fn_inplace: Callable[[torch.Tensor], torch.Tensor]
    gain: float


_TABLE: tuple[Activation, ...] = (
    Activation("relu", 0, torch.relu, torch.relu_, math.sqrt(2.0)),
    Activation("tanh", 1, torch.tanh, torch.tanh_, 1.0),
    Activation("gelu", 2, F.gelu, F.gelu, math.sqrt(2.0)),
    Activation("silu", 3, F.silu, lambda z: F.silu(z, inplace=True), math.sqrt(2.0)),
    Activation("elu", 4, F.elu, lambda z: F.elu(z, inplace=True), math.sqrt(2.0)),
)

#: name -> Activation, in code order
ACTIVATION_TABLE: dict[str, Activation] = {a.name: a for a in _TABLE}
#: the names, in code order (what configs and error messages list)
ACTIVATIONS: tuple[str, ...] = tuple(ACTIVATION_TABLE)


def get_activation(name: str) -> Activation:
    """The activation called ``name``; ValueError listing the known names otherwise."""
    try:
        return ACTIVATION_TABLE[name]
    except (KeyError, TypeError):
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {name!r}") from None


def activation_from_code(code: int) -> Activation:
    """The activation stored as ``arch_activation = code`` in a model state."""
    for a in _TABLE:
        if a.code == int(code):
            return a
    raise ValueError(f"state arch_activation code {code} is unknown (known: 0..{len(_TABLE) - 1})")
