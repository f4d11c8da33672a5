"""``load_surrogate``: the product of a campaign as an object with ``predict`` and ``sample``.

A campaign stores one checkpoint (the ``DropoutMLP`` state) per iteration. ``load_surrogate``
opens the store read-only (a snapshot; it takes no lock and writes nothing, so it works while
the campaign runs, like ``alflow status``), picks a checkpoint by the rule of
:mod:`alcore.surrogate.choice`, and wraps the model with what a user needs to call it safely:
the input and output names, the oracle's bounds, the iteration's metrics and why it was chosen.

Shapes: ``X`` (n, d) in original units (see :mod:`alcore.surrogate.inputs` for the accepted
forms); ``predict`` returns ``mean`` (n, k) and ``std`` (n, k); ``interval`` the central
interval of the predictive (a Student-t with ``dof`` degrees of freedom, inf = Gaussian);
``sample`` returns (n, T, k).
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from alcore.predictive import interval_z

from .calibration import calibrated_std
from .choice import ModelChoice, SurrogateError, choose_model
from .inputs import ExtrapolationWarning, as_input_matrix, extrapolation_message, outside_bounds

__all__ = ["Surrogate", "load_surrogate"]


def _names(info: Mapping[str, Any], key: str, n: int, prefix: str) -> tuple[str, ...]:
    names = info.get(key)
    if names is not None and len(names) == n:
        return tuple(str(s) for s in names)
    return tuple(f"{prefix}{j}" for j in range(n))


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


class Surrogate:
    """A campaign's model of one iteration, in original units, with checked inputs.

    Build it with :func:`load_surrogate`. Attributes: ``input_names``, ``output_names``,
    ``bounds`` (d, 2) (the oracle's box; for table oracles the table's range),
    ``iteration``, ``metrics`` (that iteration's stored metrics, ``{}`` while it is not
    evaluated), ``choice`` (:class:`ModelChoice`: the rule and the reason), ``campaign``,
    ``oracle`` (name, version), ``store_path``, ``model`` (the :class:`DropoutMLP`) and
    ``state`` (its tensors, as stored).
    """

    def __init__(self, model: Any, state: Mapping[str, np.ndarray], *, choice: ModelChoice,
                 input_names: tuple[str, ...], output_names: tuple[str, ...], bounds: np.ndarray,
                 metrics: Mapping[str, Any], campaign: str | None, oracle: Mapping[str, str],
                 store_path: Path, store_id: str | None = None):
        self.model = model
        self.state = dict(state)
        self.choice = choice
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)
        self.bounds = _readonly(bounds)
        self.metrics = dict(metrics)
        self.campaign = campaign
        self.oracle = dict(oracle)
        self.store_path = store_path
        self.store_id = store_id

    @property
    def iteration(self) -> int:
        return self.choice.iteration

    @property
    def input_dim(self) -> int:
        return len(self.input_names)

    @property
    def output_dim(self) -> int:
        return len(self.output_names)

    # ------------------------------------------------------------------ inputs
    def check_inputs(self, X: Any) -> np.ndarray:
        """``X`` as a checked (n, d) float64 matrix (raises :class:`InputError`)."""
        return as_input_matrix(X, self.input_names)

    def extrapolated(self, X: Any) -> np.ndarray:
        """(n,) bool: True for points with an input outside the oracle's bounds."""
        return outside_bounds(self.check_inputs(X), self.bounds).any(axis=1)

    def _checked(self, X: Any) -> np.ndarray:
        A = self.check_inputs(X)
        msg = extrapolation_message(outside_bounds(A, self.bounds), self.input_names)
        if msg is not None:
            warnings.warn(msg, ExtrapolationWarning, stacklevel=3)
        return A

    # ------------------------------------------------------------------ predictions
    def predict_mean(self, X: Any) -> np.ndarray:
        """(n, k) dropout-off prediction: what the stored test metrics and ONNX export compute."""
        return self.model.predict(self._checked(X))

    def predict(self, X: Any, *, T: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)``, each (n, k) float64 in original units.

        ``mean`` is the dropout-off network (deterministic; the campaign's test metrics were
        computed on it). ``std`` is the calibrated predictive standard deviation from ``T``
        MC-dropout samples with shared masks drawn from ``seed`` (reproducible, and a row's
        value does not depend on the other rows). Warns (:class:`ExtrapolationWarning`) when
        points lie outside the oracle's bounds.
        """
        if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 2:
            raise ValueError(f"T must be an integer >= 2 (a std needs two samples); got {T!r}")
        A = self._checked(X)
        return self.model.predict(A), calibrated_std(self.model, self.state, A, T=int(T),
                                                     seed=seed)

    @property
    def dof(self) -> float:
        """Degrees of freedom of the Student-t predictive (inf: Gaussian); :mod:`alcore.predictive`."""
        return self.model.calibration_dof

    def interval(self, X: Any, level: float = 0.9, *, T: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)``, each (n, k): the central ``level`` interval of the predictive,
        ``mean -+ interval_z(dof, level) * std`` (1.645 std for a Gaussian at 90%; narrower in
        std units when the calibration chose heavy tails, because the std then counts the rare
        large errors too)."""
        mean, std = self.predict(X, T=T, seed=seed)
        half = interval_z(self.dof, level) * std
        return mean - half, mean + half

    def sample(self, X: Any, T: int = 200, seed: int = 0) -> np.ndarray:
        """(n, T, k) MC-dropout draws in original units; draw ``t`` is one thinned network
        shared by every point (so draws of different points are jointly distributed).

        Raw draws: the calibration of ``predict``'s std is not applied to them.
        """
        return self.model.sample(self._checked(X), T, seed=seed)

    def __repr__(self) -> str:
        return (f"Surrogate({self.campaign or self.store_path.name!r}, "
                f"{self.choice.describe()}, inputs {', '.join(self.input_names)} -> outputs "
                f"{', '.join(self.output_names)})")


def load_surrogate(store: str | os.PathLike[str] | Any, model: str | int = "best", *,
                   device: str = "cpu") -> Surrogate:
    """The surrogate of a campaign store: ``model`` is ``"best"``, ``"last"`` or an iteration.

    ``store`` is a path (opened read-only and closed again) or an open
    :class:`~alcore.store.CampaignStore`. Raises :class:`~alcore.store.StoreError` for a
    missing or foreign file and :class:`SurrogateError` when there is no checkpoint, the
    iteration asked for has none, or the checkpoint cannot be rebuilt.
    """
    from alcore.store import CampaignStore  # noqa: PLC0415 - keep `import alcore` light

    if isinstance(store, CampaignStore):
        return _from_store(store, model, device)
    with CampaignStore.open(Path(store), mode="r") as st:
        return _from_store(st, model, device)


def _from_store(st: Any, spec: str | int, device: str) -> Surrogate:
    from alcore.model import DropoutMLP  # noqa: PLC0415 - torch only when a model is loaded

    finished = {int(it["iteration"]): it["metrics"] or {} for it in st.iterations
                if it.get("finished")}
    has_test = st.test_X is not None and len(st.test_X) > 0
    try:
        choice = choose_model(spec, st.checkpoint_iterations(), finished, has_test=has_test)
    except SurrogateError as exc:
        raise SurrogateError(f"{st.path}: {exc}") from None
    state = st.load_checkpoint(choice.iteration)
    try:
        net = DropoutMLP.from_state(state, device=device)
    except (ValueError, KeyError, TypeError) as exc:
        raise SurrogateError(f"{st.path}: the checkpoint of iteration {choice.iteration} cannot "
                             f"be rebuilt: {exc}") from None
    info = st.oracle_info or {}
    d, k = net.input_dim, net.output_dim
    bounds = np.asarray(info.get("bounds", []), dtype=np.float64)
    if bounds.shape != (d, 2):  # an oracle that did not record its box: the pool's range
        pool = np.asarray(st.pool_X, dtype=np.float64)
        bounds = np.column_stack([pool.min(axis=0), pool.max(axis=0)])
    cfg = st.config or {}
    meta = st.meta or {}
    return Surrogate(
        net, state, choice=choice,
        input_names=_names(info, "input_names", d, "x"),
        output_names=_names(info, "output_names", k, "y"),
        bounds=bounds, metrics=finished.get(choice.iteration, {}),
        campaign=(cfg.get("campaign") or {}).get("name"),
        oracle={"name": str(info.get("name") or meta.get("oracle_name") or ""),
                "version": str(info.get("version") or meta.get("oracle_version") or "")},
        store_path=Path(st.path), store_id=meta.get("store_id"),
    )
