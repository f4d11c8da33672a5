"""The model state: everything needed to rebuild a `DropoutMLP`, as plain numpy arrays (no pickle).

Keys (INTERFACES.md section 5; the ONNX exporter and ``load_surrogate`` read the ``arch_*``,
``norm_*`` and weight keys, so they are stable):

* ``format_version`` — 3 (version 1 states, written before per-layer dropout and calibration,
  still load: every hidden layer has ``arch_dropout``, no calibration; version 2 states have no
  ``arch_per_output``: one network per member);
* ``arch_hidden`` (L,), ``arch_activation`` (code in :mod:`alcore.model.activations`),
  ``arch_dropout`` (the largest rate), ``arch_dropout_layers`` (L,) rate after each hidden
  layer (new in version 2; absent = ``arch_dropout`` everywhere), ``arch_n_members``,
  ``arch_per_output`` (new in version 3; 1: every member is k networks, network o predicting
  output o alone), ``arch_input_dim``, ``arch_output_dim``;
* ``norm_x_mean``, ``norm_x_std`` (d,), ``norm_y_mean``, ``norm_y_std`` (k,);
* ``m{i}_W{l}`` (out, in) float32 and ``m{i}_b{l}`` (out,) for network i and layer l: i = j for
  member j, or i = j * k + o with ``arch_per_output`` (network o of member j; every network has
  k outputs, only output o is trained and used);
* ``calib_std_scale``, ``calib_std_floor`` (k,), original output units: the calibrated
  std is ``sqrt((scale * mc_std)^2 + floor^2)``; absent = scale 1, floor 0;
* ``calib_dof`` () — the predictive's Student-t degrees of freedom (:mod:`alcore.predictive`;
  inf = Gaussian; absent, as in states written before session 7 = Gaussian);
* ``hp_*`` — training hyperparameters (how the model trains when fitted again).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from alcore.model.activations import activation_from_code, get_activation
from alcore.model.network import StackedMLP
from alcore.predictive import check_dof

__all__ = ["STATE_FORMAT_VERSION", "Architecture", "architecture_of", "stack_to_state", "stack_from_state",
           "require", "calibration_dof_of"]

STATE_FORMAT_VERSION = 3
SUPPORTED_VERSIONS = (1, 2, 3)


@dataclass(frozen=True)
class Architecture:
    """What a state's weights mean: the shapes, activation, dropout per hidden layer, members,
    and whether each member is one network per output."""

    hidden: tuple[int, ...]
    activation: str
    dropout_layers: tuple[float, ...]
    n_members: int
    input_dim: int
    output_dim: int
    per_output: bool = False

    @property
    def sizes(self) -> list[int]:
        return [self.input_dim, *self.hidden, self.output_dim]

    @property
    def n_networks(self) -> int:
        """Networks in the stack: ``n_members``, times ``output_dim`` when per output."""
        return self.n_members * (self.output_dim if self.per_output else 1)

    def to_state(self) -> dict[str, np.ndarray]:
        return {
            "arch_hidden": np.array(self.hidden, dtype=np.int64),
            "arch_activation": np.array(get_activation(self.activation).code, dtype=np.int64),
            "arch_dropout": np.array(max(self.dropout_layers), dtype=np.float64),
            "arch_dropout_layers": np.array(self.dropout_layers, dtype=np.float64),
            "arch_n_members": np.array(self.n_members, dtype=np.int64),
            "arch_per_output": np.array(int(self.per_output), dtype=np.int64),
            "arch_input_dim": np.array(self.input_dim, dtype=np.int64),
            "arch_output_dim": np.array(self.output_dim, dtype=np.int64),
        }


def require(state: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    """``state[key]`` as an array; ValueError naming the key when it is missing."""
    if key not in state:
        raise ValueError(f"state is missing key {key!r}")
    return np.asarray(state[key])


def calibration_dof_of(state: Mapping[str, np.ndarray]) -> float:
    """The state's ``calib_dof`` (checked: > 2 or inf); absent, as before session 7: inf, the Gaussian."""
    if "calib_dof" not in state:
        return float("inf")
    return check_dof(float(np.asarray(state["calib_dof"]).reshape(())))


def architecture_of(state: Mapping[str, np.ndarray]) -> Architecture:
    """The architecture a state describes (checks the format version and the codes)."""
    version = int(require(state, "format_version"))
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"state format_version {version} is not supported (expected one of {SUPPORTED_VERSIONS})")
    hidden = tuple(int(h) for h in require(state, "arch_hidden").ravel())
    act = activation_from_code(int(require(state, "arch_activation"))).name
    if "arch_dropout_layers" in state:
        rates = tuple(float(p) for p in np.asarray(state["arch_dropout_layers"]).ravel())
        if len(rates) != len(hidden):
            raise ValueError(f"state arch_dropout_layers has {len(rates)} rates for {len(hidden)} hidden layers")
    else:
        rates = (float(require(state, "arch_dropout")),) * len(hidden)
    per_output = int(np.asarray(state.get("arch_per_output", 0)))
    if per_output not in (0, 1):
        raise ValueError(f"state arch_per_output must be 0 or 1; got {per_output}")
    return Architecture(hidden, act, rates, int(require(state, "arch_n_members")),
                        int(require(state, "arch_input_dim")), int(require(state, "arch_output_dim")),
                        bool(per_output))


def stack_to_state(net: StackedMLP) -> dict[str, np.ndarray]:
    """Weights of every network as ``m{i}_W{l}`` / ``m{i}_b{l}`` float32 arrays (W as (out, in))."""
    st: dict[str, np.ndarray] = {}
    for j in range(net.n_stack):
        for li, (W, b) in enumerate(net.member_layers(j)):
            st[f"m{j}_W{li}"] = W.cpu().numpy().astype(np.float32, copy=True)
            st[f"m{j}_b{li}"] = b.cpu().numpy().astype(np.float32, copy=True)
    return st


def stack_from_state(state: Mapping[str, np.ndarray], arch: Architecture, device: torch.device) -> StackedMLP:
    """The networks' weights of ``state`` as a `StackedMLP` (shapes checked against ``arch``)."""
    net = StackedMLP(arch.sizes, arch.n_networks, arch.activation, arch.dropout_layers, device)
    with torch.no_grad():
        for j in range(arch.n_networks):
            for li in range(len(net.W)):
                W, b = require(state, f"m{j}_W{li}"), require(state, f"m{j}_b{li}")
                want_w, want_b = tuple(net.W[li].shape[1:]), tuple(net.b[li].shape[1:])
                if W.shape != want_w or b.shape != want_b:
                    raise ValueError(f"state m{j}_W{li}/m{j}_b{li} have shapes {W.shape}/{b.shape}, "
                                     f"expected {want_w}/{want_b}")
                net.W[li][j].copy_(torch.as_tensor(W, dtype=torch.float32))
                net.b[li][j].copy_(torch.as_tensor(b, dtype=torch.float32))
    return net
