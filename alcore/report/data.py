"""Read a campaign store into the plain arrays the report draws.

Why a separate module: the figures and the HTML must not know how the store is laid out, and
the store's readers must not know about plotting. :func:`load_campaign` is the only place that
touches :class:`alcore.store.CampaignStore`; it also reconstructs what the store keeps only
implicitly (which points were the initial design, how many labels each iteration's model saw,
elapsed campaign time), tolerating older or partial stores (a campaign still running, a
campaign stopped before its first iteration).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from alcore.surrogate.choice import ModelChoice, SurrogateError, choose_model
from alcore.surrogate.selection_record import model_selection

#: Status codes of ``store.status`` (docs/architecture.md, alcore.store.StoreStatus).
UNLABELLED, REQUESTED, LABELLED, FAILED = 0, 1, 2, 3

#: Acquisition iteration of points that belong to the initial design (not selected by a model).
INITIAL = -1


@dataclass
class IterationRecord:
    """One campaign iteration as the report needs it."""

    iteration: int
    n_labels: int                       # labelled points the iteration's model was trained on
    test_rmse: np.ndarray | None        # (k,) test RMSE per output, None if no test set
    train_rmse: np.ndarray | None       # (k,) training RMSE per output, if recorded
    timings: dict[str, float]           # step -> seconds
    end_time: float | None              # unix time the iteration was recorded, if known
    n_selected: int = 0
    n_failed: int | None = None         # failed points when the iteration was recorded
    nll: float | None = None            # mean NLL of the calibrated std (same set as the RMSE)
    coverage90: float | None = None     # share of points inside the central 90% interval


@dataclass
class CampaignData:
    """Everything the report shows about one store, as numpy arrays and plain values."""

    path: Path
    name: str
    strategy: str
    oracle: str
    input_names: list[str]
    output_names: list[str]
    output_units: list[str]             # "" where the oracle does not say
    input_units: list[str]              # "" where the oracle does not say
    pool_X: np.ndarray                  # (P, d)
    status: np.ndarray                  # (P,) int8
    outputs: np.ndarray                 # (P, k), NaN where not labelled
    acquired_in: np.ndarray             # (P,) int: INITIAL, iteration that selected it, or -2
    wall_time: np.ndarray               # (P,) seconds per oracle call, NaN where unknown
    failure_reason: list[str]           # (P,) "" where none
    iterations: list[IterationRecord]
    config: dict[str, Any] = field(default_factory=dict)
    created: float | None = None        # unix time the store was created, if known
    model_choice: ModelChoice | None = None  # what `alflow predict` / load_surrogate would use
    model_note: str = "no model checkpoint yet"  # why there is no model_choice
    model_selection: dict[str, Any] | None = None  # alcore.surrogate.selection_record.model_selection

    @property
    def n_labelled(self) -> int:
        return int(np.count_nonzero(self.status == LABELLED))

    @property
    def n_failed(self) -> int:
        return int(np.count_nonzero(self.status == FAILED))

    @property
    def n_requested(self) -> int:
        return int(np.count_nonzero(self.status == REQUESTED))

    @property
    def label(self) -> str:
        """Legend label: the strategy, which is what comparisons are about."""
        return self.strategy or self.name


# ----------------------------------------------------------------------------- helpers

def _get(obj: Any, *names: str, default: Any = None) -> Any:
    """First present attribute / mapping key / zero-argument method among ``names``."""
    for name in names:
        if isinstance(obj, Mapping) and name in obj:
            return obj[name]
        if not isinstance(obj, Mapping) and hasattr(obj, name):
            val = getattr(obj, name)
            return val() if callable(val) else val
    return default


def _as_vector(value: Any, k: int) -> np.ndarray | None:
    """A per-output metric as a (k,) float array: lists are per output, a scalar is broadcast
    only when there is a single output (a mean over outputs must not pose as a per-output
    value)."""
    if value is None:
        return None
    if isinstance(value, Mapping):  # {"per_output": [...], "mean": x} or {"name": x}
        inner = _get(value, "per_output", "values", "outputs")
        value = inner if inner is not None else list(value.values())
    arr = np.asarray(value, dtype=float).reshape(-1)
    if arr.size == k:
        return arr
    if arr.size == 1 and k == 1:
        return arr
    if arr.size == k + 1:  # per-output values followed by their mean
        return arr[:k]
    return None


def _metric(metrics: Mapping[str, Any], split: str, name: str, k: int) -> np.ndarray | None:
    """Find metric ``name`` of ``split`` ("test"/"train") in the shapes a metrics dict takes:
    nested ``{"test": {"rmse": [...]}}``, flat ``{"test_rmse": [...]}`` or, for the test
    split only, bare ``{"rmse": [...]}``."""
    nested = metrics.get(split)
    if isinstance(nested, Mapping):
        for key in (f"{name}_per_output", name):
            if key in nested:
                return _as_vector(nested[key], k)
    for key in (f"{split}_{name}_per_output", f"{split}_{name}", f"{split}/{name}",
                f"{split}.{name}"):
        if key in metrics:
            return _as_vector(metrics[key], k)
    # alcore.campaign.evaluate: bare keys, with "on" saying which set they were computed on
    on = str(metrics.get("on", "test"))
    if on == split:
        for key in (f"{name}_per_output", name):
            if key in metrics:
                vec = _as_vector(metrics[key], k)
                if vec is not None:
                    return vec
    return None


def _to_unix(value: Any) -> float | None:
    """Timestamps come as unix seconds or ISO-8601 strings; anything else is unknown."""
    if value is None:
        return None
    if isinstance(value, (int, float, np.number)):
        v = float(value)
        return v if math.isfinite(v) and v > 0 else None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _str_array(values: Any, n: int) -> list[str]:
    if values is None:
        return [""] * n
    out = []
    for v in list(values):
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        out.append("" if v is None else str(v))
    return (out + [""] * n)[:n]


def _names(info: Mapping[str, Any], key: str, n: int, prefix: str) -> list[str]:
    names = info.get(key) if isinstance(info, Mapping) else None
    if names is not None and len(names) == n:
        return [str(s) for s in names]
    return [f"{prefix}{i}" for i in range(n)]


def _units(info: Mapping[str, Any], key: str, k: int) -> list[str]:
    """Units from the oracle's info (``input_units``/``output_units``), if it gives them."""
    units = info.get(key) if isinstance(info, Mapping) else None
    if units is None and isinstance(info.get("params"), Mapping):
        units = info["params"].get(key)
    if units is not None and len(units) == k:
        return [str(u) for u in units]
    return [""] * k


# ----------------------------------------------------------------------------- assembly

def build_campaign(
    *,
    path: Path,
    config: Mapping[str, Any],
    oracle_info: Mapping[str, Any],
    pool_X: np.ndarray,
    status: np.ndarray,
    outputs: np.ndarray,
    iterations: Sequence[Mapping[str, Any]],
    wall_time: np.ndarray | None = None,
    failure_reason: Sequence[str] | None = None,
    created: Any = None,
    checkpoints: Sequence[int] | None = None,
    has_test: bool | None = None,
) -> CampaignData:
    """Assemble :class:`CampaignData` from the store's raw pieces (testable without a file).

    ``checkpoints`` (iterations with a saved model) and ``has_test`` feed the model choice of
    :func:`alcore.surrogate.choose_model`, so the report names the model ``alflow predict``
    would use; without checkpoints there is none.
    """
    pool_X = np.asarray(pool_X, dtype=float)
    if pool_X.ndim == 1:
        pool_X = pool_X[:, None]
    P, d = pool_X.shape
    status = np.asarray(status).astype(np.int8).reshape(-1)
    if status.shape != (P,):
        raise ValueError(f"store {path}: status has {status.size} entries, pool has {P} points")
    outputs = np.asarray(outputs, dtype=float)
    if outputs.ndim == 1:
        outputs = outputs[:, None]
    k = outputs.shape[1]

    # Which iteration selected each point. Iteration 0 draws the initial design
    # (alcore.campaign.select); points requested outside any iteration are initial too.
    acquired_in = np.full(P, -2, dtype=int)
    ever_requested = status != UNLABELLED
    acquired_in[ever_requested] = INITIAL
    sorted_iters = sorted(iterations, key=lambda it: int(_get(it, "iteration", default=0)))
    for it in sorted_iters:
        sel = np.asarray(_get(it, "selected", "indices", default=[]), dtype=int).reshape(-1)
        sel = sel[(sel >= 0) & (sel < P)]
        i = int(_get(it, "iteration", default=0))
        acquired_in[sel] = INITIAL if i == 0 else i

    records: list[IterationRecord] = []
    for it in sorted_iters:
        i = int(_get(it, "iteration", default=len(records)))
        metrics = _get(it, "metrics")
        if not metrics or _get(it, "finished", default=True) is False:
            continue  # selected but not finished yet (campaign running or stopped mid-way)
        timings = {str(key): float(v) for key, v in (_get(it, "timings", default={}) or {}).items()
                   if isinstance(v, (int, float, np.number)) and math.isfinite(float(v))}
        n_labels = _get(metrics, "labeled", "labelled", "n_labels", "n_labelled", "n_train")
        if n_labels is None:
            n_labels = _get(it, "labeled", "n_labels", "n_labelled", "n_train")
        if n_labels is None:
            # iteration i selects, labels, then trains: its model saw the initial design plus
            # what iterations up to i selected and got labelled
            n_labels = int(np.count_nonzero((status == LABELLED)
                                            & (acquired_in >= INITIAL) & (acquired_in <= i)))
        end_time = None
        for key in ("at", "end_time", "finished_at", "recorded_at", "timestamp", "time"):
            end_time = _to_unix(_get(it, key))
            if end_time is None and isinstance(metrics, Mapping):
                end_time = _to_unix(metrics.get(key))
            if end_time is not None:
                break
        sel = _get(it, "selected", "indices", default=[])
        records.append(IterationRecord(
            iteration=i, n_labels=int(n_labels),
            test_rmse=_metric(metrics, "test", "rmse", k),
            train_rmse=_metric(metrics, "train", "rmse", k),
            timings=timings, end_time=end_time, n_selected=len(np.asarray(sel).reshape(-1)),
            n_failed=(int(metrics["failed"]) if isinstance(metrics.get("failed"), (int, float))
                      else None),
            nll=_scalar(metrics.get("nll")), coverage90=_scalar(metrics.get("coverage90")),
        ))

    choice, note = _model_choice(sorted_iters, checkpoints, has_test)
    cfg = dict(config or {})
    acq = cfg.get("acquisition", {}) if isinstance(cfg.get("acquisition"), Mapping) else {}
    camp = cfg.get("campaign", {}) if isinstance(cfg.get("campaign"), Mapping) else {}
    ocfg = cfg.get("oracle", {}) if isinstance(cfg.get("oracle"), Mapping) else {}
    info = dict(oracle_info or {})
    wt = (np.full(P, np.nan) if wall_time is None
          else np.asarray(wall_time, dtype=float).reshape(-1))
    if wt.shape != (P,):
        wt = np.full(P, np.nan)
    return CampaignData(
        path=Path(path),
        name=str(camp.get("name") or Path(path).stem),
        strategy=str(acq.get("strategy") or ""),
        oracle=str(info.get("name") or ocfg.get("name") or "oracle"),
        input_names=_names(info, "input_names", d, "x"),
        output_names=_names(info, "output_names", k, "y"),
        output_units=_units(info, "output_units", k),
        input_units=_units(info, "input_units", d),
        pool_X=pool_X, status=status, outputs=outputs, acquired_in=acquired_in,
        wall_time=wt, failure_reason=_str_array(failure_reason, P),
        iterations=records, config=cfg, created=_to_unix(created),
        model_choice=choice, model_note=note,
        model_selection=model_selection([it for it in sorted_iters if isinstance(it, Mapping)]),
    )


def _scalar(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _model_choice(iterations: Sequence[Mapping[str, Any]], checkpoints: Sequence[int] | None,
                  has_test: bool | None) -> tuple[ModelChoice | None, str]:
    """The "best" model of the campaign as ``load_surrogate`` picks it, or why there is none."""
    metrics = {int(_get(it, "iteration", default=-1)): dict(_get(it, "metrics") or {})
               for it in iterations if _get(it, "finished", default=True) is not False}
    try:
        return choose_model("best", checkpoints or [], metrics, has_test=has_test), ""
    except SurrogateError as exc:
        return None, str(exc)


def load_campaign(path: str | Path) -> CampaignData:
    """Open ``path`` read-only with :class:`alcore.store.CampaignStore` and read it.

    Read-only so that a report can be made while the campaign is still writing.
    """
    from alcore.store import CampaignStore  # local: keep `import alcore.report` light

    path = Path(path)
    store = CampaignStore.open(path, "r")
    try:
        meta = _get(store, "meta", default={}) or {}
        return build_campaign(
            path=path,
            config=_get(store, "config", default={}) or {},
            oracle_info=_get(store, "oracle_info", default={}) or {},
            pool_X=np.asarray(store.pool_X),
            status=np.asarray(store.status),
            outputs=np.asarray(store.outputs),
            iterations=list(store.iterations),
            wall_time=_get(store, "wall_time", "wall_times"),
            failure_reason=_get(store, "failure_reason", "failure_reasons"),
            created=_get(meta, "created", "created_at", "creation_time"),
            checkpoints=store.checkpoint_iterations(),
            has_test=store.test_X is not None and len(store.test_X) > 0,
        )
    finally:
        store.close()
