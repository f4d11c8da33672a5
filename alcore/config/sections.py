"""The sections of a campaign config, validated with pydantic before anything runs.

Why pydantic with ``extra="forbid"``: a typo in an overnight campaign's config (``hiden = [..]``)
must fail in the first second, not silently fall back to a default and waste a night of
simulator time. Every error names the key path (``acquisition.strategy``) and, where the set of
allowed values is known, lists them with a close-match suggestion.

Why integers are strict (:class:`_Section`): pydantic's lax mode reads ``true`` as 1 and an
integral float such as ``1e20`` as a 21-digit int, so ``pool.size = true`` silently meant a pool
of one point. Every int key of every section, also those added later, must be a TOML integer
that fits a signed 64-bit integer (what numpy, HDF5 and torch hold).

What can only be checked against the oracle and this machine (memory, devices, files, the Dask
scheduler) is :mod:`alcore.config.preflight`'s job.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from alcore.config.deadline import timezone_problem

__all__ = [
    "CampaignConfig",
    "CampaignSection",
    "OracleSection",
    "PoolSection",
    "TestSection",
    "ModelSection",
    "AcquisitionSection",
    "BudgetSection",
    "DaskSection",
    "strategy_names",
    "SEED_MAX",
    "STEPS_MAX",
]

#: Largest ``campaign.seed``: 32 bits, the seed range every generator accepts (numpy's legacy
#: ``RandomState``, torch, CUDA). The campaign derives every further seed from it in one place,
#: :func:`alcore.campaign.seeds.seeds` (at most ``100_003 * seed + iteration``); with 32 bits those
#: stay far below torch's ``manual_seed`` limit of 2**64 - 1.
SEED_MAX = 2**32 - 1

#: Largest ``model.epochs`` / ``model.min_steps``: every epoch is at least one optimiser step, and
#: 10**9 steps of even the smallest network (~10 us each on a CPU) take about three hours per
#: training, which a campaign repeats every iteration.
STEPS_MAX = 10**9

_INT64_MAX = 2**63 - 1


def strategy_names() -> list[str]:
    """Registered acquisition strategies (the registry, numpy and scipy only, is imported when
    an acquisition section is checked, not when this module loads)."""
    from alcore import strategies  # noqa: PLC0415  (lazy on purpose)

    return list(strategies.available())


def strategy_parameters(name: str) -> dict[str, Any] | None:
    """Parameter defaults of strategy ``name``; None when no strategy has that name."""
    from alcore import strategies  # noqa: PLC0415

    record = strategies.REGISTRY.get(name)
    return None if record is None else dict(record.defaults)


def did_you_mean(value: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _int_shape(annotation: Any) -> str | None:
    """``"one"`` for an int field (``int``, ``int | None``), ``"list"`` for ``list[int]``."""
    if annotation is int:
        return "one"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds = {_int_shape(a) for a in args if a is not type(None)}
        others = [a for a in args if a is not type(None) and _int_shape(a) is None]
        return kinds.pop() if len(kinds) == 1 and not others else None
    if origin is list and args == (int,):
        return "list"
    return None


def _upper_bound(field: Any) -> int:
    """The field's own ``le``/``lt`` bound, capped at 64 bits."""
    for m in getattr(field, "metadata", ()):
        if getattr(m, "le", None) is not None:
            return min(int(m.le), _INT64_MAX)
        if getattr(m, "lt", None) is not None:
            return min(int(m.lt) - 1, _INT64_MAX)
    return _INT64_MAX


def _whole_number(v: Any, field: Any) -> None:
    """Raise ``ValueError`` unless ``v`` is an int (not a bool) within the field's bound.

    The bound is checked here, before pydantic's own ``le``, so that a 21-digit seed is told
    its real limit (and why: the field's description) rather than a 64-bit overflow.
    """
    if isinstance(v, bool):
        raise ValueError(f"must be an integer, got {str(v).lower()} (a boolean)")
    if isinstance(v, float):
        raise ValueError(f"must be an integer, got {v:g} (a float; write it without a decimal point or exponent)")
    top = _upper_bound(field)
    if isinstance(v, int) and v > top:
        why = f": {field.description}" if getattr(field, "description", None) else ""
        raise ValueError(f"{v} is too large (at most {top}{why})")
    if isinstance(v, int) and v < -_INT64_MAX - 1:
        raise ValueError(f"{v} is too small")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_integers(cls, v: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        shape = _int_shape(field.annotation) if field is not None else None
        if shape == "one" and v is not None:
            _whole_number(v, field)
        elif shape == "list" and isinstance(v, list):
            for item in v:
                _whole_number(item, None)
        return v


class CampaignSection(_Section):
    """Who the campaign is and where it lives."""

    name: str = Field(min_length=1, max_length=100)
    store: Path
    seed: int = Field(default=0, ge=0, le=SEED_MAX,
                      description="seeds are 32-bit, the range every numpy and torch generator accepts")
    report_dir: Path | None = None  # default: <store stem>_report next to the store
    # "batch": select a batch, label it, train, repeat. "async": every worker stays busy; each
    # finished evaluation is stored and replaced at once, the model retrains in the background
    # (alcore.campaign.async_loop).
    mode: Literal["batch", "async"] = "batch"
    # async mode: a new model version starts training once this many labels arrived since the
    # last one (None: acquisition.batch_size, so both modes train about equally often)
    retrain_every: int | None = Field(default=None, ge=1)

    @field_validator("name")
    @classmethod
    def _name_chars(cls, v: str) -> str:
        # The name becomes part of Prefect flow-run names and artifact keys.
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\- ]*", v):
            raise ValueError(
                f"'{v}' must start with a letter or digit and use only letters, digits, "
                "spaces, '_', '-', '.'"
            )
        return v


class OracleSection(_Section):
    """Which simulator labels points; resolved by ``oracles.resolve`` at run time."""

    name: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    bounds: list[list[float]] | None = None

    @field_validator("bounds")
    @classmethod
    def _bounds_shape(cls, v: list[list[float]] | None) -> list[list[float]] | None:
        if v is None:
            return v
        if len(v) == 0:
            raise ValueError("must list one [lo, hi] pair per input")
        for i, pair in enumerate(v):
            if len(pair) != 2:
                raise ValueError(f"entry {i} must be a [lo, hi] pair, got {pair}")
            lo, hi = pair
            if not lo < hi:
                raise ValueError(f"entry {i}: lo must be < hi, got [{lo}, {hi}]")
        return v


class PoolSection(_Section):
    """The candidate pool: a seeded space-filling design over the oracle's domain, or a file."""

    size: int | None = Field(default=None, ge=1)
    design: Literal["sobol", "lhs", "random"] = "sobol"
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "PoolSection":
        if self.file is not None and self.size is not None:
            # For table oracles size caps the split; for files it would be ambiguous.
            raise ValueError("give either size or file, not both")
        return self


class TestSection(_Section):
    """Held-out test set used for the learning curve (size 0: none)."""

    __test__ = False  # not a pytest class

    size: int = Field(default=0, ge=0)
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "TestSection":
        if self.file is not None and self.size:
            raise ValueError("give either size or file, not both")
        return self


class ModelSection(_Section):
    """The surrogate: DropoutMLP hyper-parameters (names as in ``alcore.model.DropoutMLP``) and
    how it is chosen (``alcore.model.fit.fit_surrogate``).

    Keys left out take the model's own defaults (``None`` here), so tuning the defaults in
    ``alcore.model`` reaches every config that did not choose otherwise.  ``select = "auto"``
    (default) picks the network by K-fold cross-validation on the labels, on the initial design
    and whenever the labelled set has doubled, within ``tuning_budget_s`` seconds; the keys
    given here are the base every candidate starts from.  ``select = "fixed"`` trains exactly
    the model given here (its std is still calibrated on the same schedule).
    """

    select: Literal["auto", "fixed"] = "auto"
    tuning_budget_s: float = Field(default=300.0, gt=0.0)
    hidden: list[int] | None = Field(default=None, min_length=1)
    activation: str | None = None
    dropout: float | None = Field(default=None, gt=0.0, lt=1.0)
    dropout_layers: Literal["last", "all"] | None = None
    epochs: int | None = Field(default=None, ge=1, le=STEPS_MAX,
                               description="every epoch is at least one optimiser step, repeated every iteration")
    min_steps: int | None = Field(default=None, ge=0, le=STEPS_MAX,
                                  description="optimiser steps per training, repeated every iteration")
    lr: float | None = Field(default=None, gt=0.0)
    weight_decay: float | None = Field(default=None, ge=0.0)
    batch_size: int | None = Field(default=None, ge=1)
    early_stopping: bool | None = None
    val_fraction: float | None = Field(default=None, ge=0.0, le=0.5)
    patience: int | None = Field(default=None, ge=1)
    lr_schedule: Literal["cosine", "constant", "none"] | None = None
    n_members: int | None = Field(default=None, ge=1)
    per_output: bool | None = Field(default=None,
                                    description="one network per output (k times the training); auto selection tries both")
    polish_steps: int | None = Field(default=None, ge=0, le=STEPS_MAX,
                                     description="L-BFGS iterations after AdamW, repeated every iteration")
    device: str = "auto"
    warm_start: bool = True

    @model_validator(mode="after")
    def _polish_needs_last_layer_dropout(self) -> ModelSection:
        if self.polish_steps and self.dropout_layers == "all":
            raise ValueError("polish_steps needs dropout_layers = \"last\": the polished loss is the expected "
                             "loss over last-layer dropout masks (alcore/model/polish.py)")
        return self

    @field_validator("hidden")
    @classmethod
    def _positive_layers(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and any(h < 1 for h in v):
            raise ValueError(f"layer sizes must be >= 1, got {v}")
        return v

    @field_validator("activation")
    @classmethod
    def _known_activation(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from alcore.model.activations import ACTIVATIONS  # noqa: PLC0415  (the one table; pulls in torch)

        if v not in ACTIVATIONS:
            raise ValueError(f"'{v}' is not one of {', '.join(ACTIVATIONS)}{did_you_mean(v, list(ACTIVATIONS))}")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", v):
            raise ValueError(f"'{v}' is not one of auto, cpu, cuda, cuda:N, mps")
        return v

    def model_kwargs(self, seed: int) -> dict[str, Any]:
        """Keyword arguments for ``DropoutMLP``: the keys set here (``select``,
        ``tuning_budget_s`` and ``warm_start`` are fit_surrogate's / the campaign's)."""
        kw = {k: v for k, v in self.model_dump(exclude={"warm_start", "select", "tuning_budget_s"}).items()
              if v is not None}
        if "hidden" in kw:
            kw["hidden"] = tuple(kw["hidden"])
        kw["seed"] = seed
        return kw


class AcquisitionSection(_Section):
    """How the next batch is chosen.

    Strategy-specific parameters may be written in the section itself (``n_target = 500``)
    or in a ``params`` sub-table; either way they are checked against the strategy's own
    parameter list, so a parameter of another strategy is an error, not a silent no-op.
    """

    # LCMD on the NNGP kernel: best or tied-best on heat2d, burgers1d and California, and the
    # only strategy never worse than random beyond noise (docs/results.md, 10 paired seeds).
    strategy: str = "nngp_lcmd"
    samples: int = Field(default=100, ge=2)  # T, MC-dropout samples
    reg: float = Field(default=1e-2, gt=0.0)  # relative to the mean prior variance
    batch_size: int = Field(default=10, ge=1)
    params: dict[str, Any] = Field(default_factory=dict)  # strategy-specific extras
    # Learn where evaluations fail (kind "error") and weight every strategy by P(success)
    # (alcore.feasibility); no effect until something failed.
    avoid_failures: bool = True

    @model_validator(mode="before")
    @classmethod
    def _gather_strategy_params(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = set(cls.model_fields)
        extra = {k: v for k, v in data.items() if k not in known}
        if not extra:
            return data
        # a section without ``strategy`` takes the default strategy's parameters
        strategy = data.get("strategy", cls.model_fields["strategy"].default)
        accepted = strategy_parameters(str(strategy)) or {}
        moved = {k: v for k, v in extra.items() if k in accepted}
        if not moved:
            return data  # leave the unknown keys for extra="forbid" to name
        out = {k: v for k, v in data.items() if k not in moved}
        params = dict(out.get("params") or {}) if isinstance(out.get("params"), dict) else {}
        params.update(moved)
        out["params"] = params
        return out

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, v: str) -> str:
        names = strategy_names()
        if v not in names:
            raise ValueError(f"'{v}' is not one of {', '.join(names)}{did_you_mean(v, names)}")
        return v

    @model_validator(mode="after")
    def _params_of_strategy(self) -> "AcquisitionSection":
        accepted = strategy_parameters(self.strategy) or {}  # the name was checked above
        unknown = sorted(set(self.params) - set(accepted))
        if unknown:
            hint = did_you_mean(unknown[0], sorted(accepted))
            allowed = ", ".join(sorted(accepted)) or "none"
            raise ValueError(
                f"params.{unknown[0]}: not a parameter of strategy '{self.strategy}'{hint} "
                f"(it accepts: {allowed})"
            )
        from alcore import strategies  # noqa: PLC0415

        for key, check in strategies.get(self.strategy).validators.items():
            if key in self.params:
                try:
                    check(self.params[key], key)
                except ValueError as exc:
                    raise ValueError(f"params: {exc}") from None
        return self


class BudgetSection(_Section):
    """When to stop: the first of these that is reached."""

    initial: int = Field(default=20, ge=2)
    iterations: int = Field(default=10, ge=0)
    max_labels: int | None = Field(default=None, ge=1)
    deadline: str | None = None  # "HH:MM" in `timezone`; the next such time after the run starts
    timezone: str | None = None  # IANA name of the deadline's time zone; None: the machine's
    target_rmse: float | None = Field(default=None, gt=0.0)

    @field_validator("deadline")
    @classmethod
    def _hhmm(cls, v: str | None) -> str | None:
        if v is None:
            return v
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", v.strip())
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            raise ValueError(f"'{v}' is not a time of day as \"HH:MM\" (e.g. \"06:30\")")
        return f"{int(m.group(1)):02d}:{m.group(2)}"

    @field_validator("timezone")
    @classmethod
    def _iana(cls, v: str | None) -> str | None:
        problem = timezone_problem(v) if v is not None else None
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _initial_within_budget(self) -> "BudgetSection":
        if self.max_labels is not None and self.initial > self.max_labels:
            raise ValueError(f"initial ({self.initial}) exceeds max_labels ({self.max_labels})")
        return self


class DaskSection(_Section):
    """Where oracle evaluations run: a local cluster by default, or an existing scheduler."""

    workers: int | None = Field(default=None, ge=0)  # None: one per core; 0: in-process
    address: str | None = None
    retries: int = Field(default=2, ge=0)
    timeout: float | None = Field(default=None, gt=0.0)  # seconds per evaluation
    # Dask's dashboard: true (a free port of 127.0.0.1) or "host:port" for the local cluster;
    # with `address`, true shows that scheduler's own dashboard link. Needs bokeh.
    dashboard: bool | str = False

    @field_validator("dashboard")
    @classmethod
    def _dashboard(cls, v: bool | str) -> bool | str:
        if isinstance(v, str) and not re.fullmatch(r"[\w.\-]*:\d{1,5}", v):
            raise ValueError(f"'{v}' is not true, false or an address like \"127.0.0.1:8787\"")
        return v

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"(tcp|tls|inproc|ucx|ws|wss)://\S+", v):
            raise ValueError(f"'{v}' is not a scheduler address like tcp://host:8786")
        return v

    @model_validator(mode="after")
    def _one_target(self) -> "DaskSection":
        if self.workers is not None and self.address is not None:
            raise ValueError("give either workers (a local cluster) or address (an existing scheduler), not both")
        return self


class CampaignConfig(_Section):
    """The whole campaign. ``source`` is the config file, when it came from one."""

    campaign: CampaignSection
    oracle: OracleSection
    pool: PoolSection = Field(default_factory=PoolSection)
    test: TestSection = Field(default_factory=TestSection)
    model: ModelSection = Field(default_factory=ModelSection)
    acquisition: AcquisitionSection = Field(default_factory=AcquisitionSection)
    budget: BudgetSection = Field(default_factory=BudgetSection)
    dask: DaskSection = Field(default_factory=DaskSection)
    _source: str | None = PrivateAttr(default=None)  # set by load_config

    @model_validator(mode="after")
    def _cross_checks(self) -> "CampaignConfig":
        if self.pool.size is not None and self.budget.initial > self.pool.size:
            raise ValueError(
                f"budget.initial ({self.budget.initial}) exceeds pool.size ({self.pool.size})"
            )
        return self

    # --- derived values -------------------------------------------------------------------
    @property
    def source(self) -> str | None:
        """The config file as the user named it (prefixes every error about this config)."""
        return self._source

    @property
    def store_path(self) -> Path:
        return Path(self.campaign.store)

    @property
    def report_dir(self) -> Path:
        if self.campaign.report_dir is not None:
            return Path(self.campaign.report_dir)
        p = self.store_path
        return p.with_name(p.stem + "_report")

    @property
    def label_budget(self) -> int:
        """Labels the campaign may spend (failures count: they cost simulator time too)."""
        planned = self.budget.initial + self.budget.iterations * self.acquisition.batch_size
        if self.budget.max_labels is not None:
            return min(planned, self.budget.max_labels)
        return planned

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (paths as strings): what the store keeps as provenance."""
        return self.model_dump(mode="json")
