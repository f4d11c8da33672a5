"""`DropoutMLP`: alflow's surrogate, an MLP regressor (or a small ensemble of them) with dropout.

What it is for: its dropout-off prediction is the surrogate a user gets, and its MC-dropout
samples with masks shared by all points (:mod:`alcore.mc`) define the NNGP kernel that the
acquisition strategies use.  Dropout therefore has two jobs that pull apart: a rate large
enough everywhere regularises the mean (and put an error floor under it on deterministic
simulators, docs/results.md); the kernel only needs *some* stochastic layer.  The default puts
a small rate after the last hidden layer only (``dropout_layers="last"``): the samples are then
random reweightings of the last hidden layer's features, a last-layer kernel, and the network
below is trained without dropout noise.

Design choices, and why (evidence: ``benchmarks/training.py``, ``docs/results.md``):

* **Training to convergence.**  AdamW on the full batch while the data fit in one batch
  (``batch_size``), a cosine learning rate annealed to zero, and a step count that grows with
  the data: ``max(min_steps, epochs * batches_per_epoch)``.  A warm-started fit (the campaign
  between re-tunings) runs ``warm_fraction`` of that: it starts near a good optimum.  With
  ``polish_steps > 0`` L-BFGS then minimises the same loss in closed form (the expected loss
  over last-layer dropout masks, :mod:`alcore.model.polish`): AdamW stops short of it, and on
  smooth outputs that last stretch was a third of the error.
* **Standardised inputs and outputs**, fitted on the data given to `fit` and stored with the
  model, so the network always works in comparable units and the NNGP code can use the
  standardised samples (``sample(..., standardised=True)``).
* **Warm start.**  ``fit(X, y, warm_start=True)`` keeps the current weights but refits the
  normaliser *and rewrites the first and last layers so that the network computes exactly the
  same function in original units as before* (dropout acts on hidden units only, so the rewrite
  is exact for the stochastic network too).
* **Calibrated uncertainty.**  The raw MC-dropout std is not a predictive std; a post-hoc scale
  and floor fitted on out-of-fold residuals (:mod:`alcore.model.calibration`) travel with the
  model, and `predict_with_std` applies them.
* **Library training**: torch autograd and ``torch.optim.AdamW`` on stacked networks
  (:mod:`alcore.model.network`); threads as in :mod:`alcore.model.threads`.
* **Per-output networks** (``per_output=True``): each member is k networks of the same shape,
  network o trained on output o alone (a one-hot output weight in the loss) and used only for
  it — like one GP per output.  One network for all outputs shares its hidden features between
  them; on burgers1d's four outputs, with fronts in different places, per-output networks had
  5-30% less error at 550 labels (mean 15%, 4 of 4 seeds, held-out pool points: ``python
  benchmarks/model_settings.py burgers1d 550 g06d3,split 0,1,2,3``), while a 2x wider shared
  network gained nothing.  They cost k times the training; model selection decides
  (:mod:`alcore.model.selection`).
* **No pickle.**  `get_state` gives plain numpy arrays (:mod:`alcore.model.state`).
"""
from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from alcore import mc
from alcore._util import as_2d, seed_int
from alcore.model import state as state_fmt
from alcore.model.activations import ACTIVATIONS, get_activation
from alcore.model.network import ProgressFn, StackedMLP, TrainSettings, train_stacked
from alcore.model.polish import polish_stacked
from alcore.model.threads import training_threads
from alcore.predictive import check_dof

__all__ = ["CrossValidation", "DropoutMLP", "FitReport", "FoldStack", "LR_SCHEDULES", "DROPOUT_LAYERS", "seed_int", "as_2d"]

LR_SCHEDULES: tuple[str, ...] = ("cosine", "none", "constant")  # "constant" = "none"
DROPOUT_LAYERS: tuple[str, ...] = ("last", "all")
_PREDICT_CHUNK = 65536
#: fewest optimiser steps of a warm-started fit (see `DropoutMLP.steps_for`)
WARM_MIN_STEPS = 500


@dataclass
class FitReport:
    """Summary of one `fit` call (ensembles: totals/means over members)."""

    epochs_run: int                 # epochs actually run (summed over members)
    best_epoch: int                 # epoch (1-based) whose weights were kept, first member
    best_val_loss: float            # mean over members of the best validation MSE (standardised); NaN without a validation slice
    final_train_loss: float         # mean training MSE of the last epoch (standardised, with dropout)
    train_time_s: float
    n_train: int
    n_val: int
    warm_start: bool
    stopped_early: bool
    member_epochs: list[int] = field(default_factory=list)
    steps: int = 0                  # optimiser steps per member
    polish_iterations: int = 0      # L-BFGS iterations of the polish (alcore.model.polish), 0: none
    threads: int = 1                # torch threads used


@dataclass(frozen=True)
class FoldStack:
    """The trained networks of a cross-validation, kept so that a candidate which only adds a
    polish (:mod:`alcore.model.polish`) continues from them instead of repeating their AdamW
    training (`DropoutMLP.cross_validate`'s ``continue_from``)."""

    net: StackedMLP                 # K x M networks, fold-major
    fold_ids: np.ndarray            # (K,) the folds trained, in stack order
    training: str                   # the hyperparameters and seed that trained them, without polish_steps
    data: str                       # digest of the X, y and folds they were trained on
    polish_steps: int               # L-BFGS iterations already applied


@dataclass
class CrossValidation:
    """Out-of-fold predictions of K-fold cross-validation, in original units."""

    pred: np.ndarray                # (m, k) dropout-off prediction of the fold that held the row out
    mc_std: np.ndarray              # (m, k) raw MC-dropout std of that fold's model (shared masks)
    rows: np.ndarray                # (m,) the rows predicted: all rows, or those of the held-out folds run
    folds: np.ndarray               # (n,) fold of each row
    seconds: float
    stack: FoldStack | None = field(default=None, repr=False, compare=False)


def _digest(*arrays: np.ndarray) -> str:
    """A fingerprint of arrays' shapes and bytes (which data a `FoldStack` was trained on)."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(repr((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _resolve_device(device: str | torch.device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'; got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError("device='mps' but MPS is not available")
        return torch.device("mps")
    if device == "cpu" or device.startswith("cuda"):
        try:
            dev = torch.device(device)
        except RuntimeError as exc:
            raise ValueError(f"device: cannot parse {device!r}") from exc
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but CUDA is not available")
        return dev
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'; got {device!r}")


def _int_arg(name: str, v, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be a {kind} integer; got {v!r}")
    return int(v)


def _moments(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = a.mean(axis=0)
    std = a.std(axis=0)
    std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
    return mean, std


class DropoutMLP:
    """MLP regressor with dropout (see the module docstring).  Every argument has a default.

    ``dropout`` is the rate; ``dropout_layers`` says where: ``"last"`` (after the last hidden
    layer only), ``"all"`` (after every hidden layer), or one rate per hidden layer.
    ``n_members > 1`` trains a small ensemble of independently seeded networks: `predict`
    averages them and `sample` pools their MC samples (``T`` split across members).
    ``per_output=True`` makes every member one network per output (module docstring).
    """

    def __init__(self, hidden: Sequence[int] = (128, 128), activation: str = "silu",
                 dropout: float = 0.05, weight_decay: float = 1e-4, lr: float = 1e-2,
                 epochs: int = 300, batch_size: int = 1024, early_stopping: bool = False,
                 val_fraction: float = 0.1, patience: int = 30, lr_schedule: str = "cosine",
                 seed: int = 0, device: str = "auto", n_members: int = 1, min_steps: int = 3000,
                 dropout_layers: str | Sequence[float] = "last", warm_fraction: float = 0.3,
                 init_gain: float | None = 0.6, polish_steps: int = 0, per_output: bool = False):
        try:
            hidden_t = tuple(int(h) for h in hidden)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"hidden must be a sequence of positive integers; got {hidden!r}") from exc
        if len(hidden_t) == 0 or any(h < 1 for h in hidden_t) or any(
                isinstance(h, float) and not float(h).is_integer() for h in hidden):
            raise ValueError(f"hidden must be a non-empty sequence of positive integers; got {hidden!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}; got {activation!r}")
        if not (isinstance(dropout, (int, float)) and not isinstance(dropout, bool) and 0.0 <= dropout < 1.0):
            raise ValueError(f"dropout must be a number in [0, 1); got {dropout!r}")
        if isinstance(dropout_layers, str):
            if dropout_layers not in DROPOUT_LAYERS:
                raise ValueError(f"dropout_layers must be one of {DROPOUT_LAYERS} or one rate per hidden layer; "
                                 f"got {dropout_layers!r}")
            rates = ((float(dropout),) * len(hidden_t) if dropout_layers == "all"
                     else (0.0,) * (len(hidden_t) - 1) + (float(dropout),))
        else:
            try:
                rates = tuple(float(p) for p in dropout_layers)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"dropout_layers must be 'last', 'all' or a list of rates; got {dropout_layers!r}") from exc
            if len(rates) != len(hidden_t) or not all(0.0 <= p < 1.0 for p in rates):
                raise ValueError(f"dropout_layers: need {len(hidden_t)} rates in [0, 1); got {list(rates)}")
        if not (isinstance(weight_decay, (int, float)) and weight_decay >= 0 and math.isfinite(weight_decay)):
            raise ValueError(f"weight_decay must be a finite number >= 0; got {weight_decay!r}")
        if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a finite number > 0; got {lr!r}")
        for name in ("epochs", "batch_size", "patience", "n_members"):
            _int_arg(name, locals()[name], 1)
        _int_arg("min_steps", min_steps, 0)
        _int_arg("polish_steps", polish_steps, 0)
        if polish_steps > 0 and any(p > 0 for p in rates[:-1]):
            raise ValueError("polish_steps needs dropout on the last hidden layer only (dropout_layers='last'); "
                             f"got rates {list(rates)}")
        if not isinstance(early_stopping, (bool, np.bool_)):
            raise ValueError(f"early_stopping must be a bool; got {early_stopping!r}")
        if not isinstance(per_output, (bool, np.bool_)):
            raise ValueError(f"per_output must be a bool; got {per_output!r}")
        if not (isinstance(val_fraction, (int, float)) and 0.0 <= val_fraction <= 0.5):
            raise ValueError(f"val_fraction must be a number in [0, 0.5]; got {val_fraction!r}")
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}; got {lr_schedule!r}")
        _int_arg("seed", seed, 0)
        if not (isinstance(warm_fraction, (int, float)) and 0.0 < warm_fraction <= 1.0):
            raise ValueError(f"warm_fraction must be a number in (0, 1]; got {warm_fraction!r}")
        if init_gain is not None and not (isinstance(init_gain, (int, float)) and 0 < init_gain < 100):
            raise ValueError(f"init_gain must be a number > 0 or None; got {init_gain!r}")
        self.hidden = hidden_t
        self.activation = activation
        self.init_gain = None if init_gain is None else float(init_gain)
        self.dropout_rates: tuple[float, ...] = rates
        self.dropout = float(max(rates))
        self.dropout_layers = dropout_layers if isinstance(dropout_layers, str) else list(rates)
        self.weight_decay = float(weight_decay)
        self.lr = float(lr)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.early_stopping = bool(early_stopping)
        self.val_fraction = float(val_fraction)
        self.patience = int(patience)
        self.lr_schedule = lr_schedule
        self.seed = int(seed)
        self.n_members = int(n_members)
        self.min_steps = int(min_steps)
        self.warm_fraction = float(warm_fraction)
        self.polish_steps = int(polish_steps)
        self.per_output = bool(per_output)
        self._device_arg = device
        self.device = _resolve_device(device)
        self._net: StackedMLP | None = None
        self._x_mean = self._x_std = self._y_mean = self._y_std = None
        self._calib_scale: np.ndarray | None = None
        self._calib_floor: np.ndarray | None = None
        self._calib_dof: float = math.inf
        self._last_report: FitReport | None = None

    # ------------------------------------------------------------------ properties
    @property
    def is_fitted(self) -> bool:
        return self._net is not None

    @property
    def input_dim(self) -> int:
        self._require_fitted()
        return self._net.sizes[0]

    @property
    def output_dim(self) -> int:
        self._require_fitted()
        return self._net.sizes[-1]

    def _require_fitted(self) -> None:
        if self._net is None:
            raise RuntimeError("DropoutMLP is not fitted: call fit() or load_state() first")

    def member_layers(self, j: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Network j's layers as (W (out, in), b) float32 tensors (standardised units): member j,
        or with ``per_output`` the network of member j // k for output j % k."""
        self._require_fitted()
        return self._net.member_layers(j)

    def networks_per_member(self, k: int) -> int:
        """k with ``per_output`` (one network per output), else 1."""
        return k if self.per_output else 1

    def n_networks(self, k: int) -> int:
        """Networks one fitted model of this kind holds for k outputs (members x per member)."""
        return self.n_members * self.networks_per_member(k)

    def splits_outputs(self, k: int) -> bool:
        """Whether, for k outputs, each member really is several networks (per_output and k > 1):
        what a state's ``arch_per_output`` records."""
        return self.networks_per_member(k) > 1

    def _network_seeds(self, k: int) -> list[int]:
        g = self.networks_per_member(k)
        return [seed_int(self.seed, j, 0) if g == 1 else seed_int(self.seed, j, 0, o)
                for j in range(self.n_members) for o in range(g)]

    def _output_weights(self, k: int, repeats: int) -> torch.Tensor | None:
        """(repeats * n_members * k, k) one-hot output weights of per-output networks (None: all
        outputs count), for ``repeats`` stacked copies of the model (cross-validation folds)."""
        if self.networks_per_member(k) == 1:
            return None
        return torch.eye(k).repeat(repeats * self.n_members, 1)

    def _network_layers(self, net: StackedMLP, base: int, j: int, k: int) -> list[tuple[list, int | None]]:
        """[(layers, output)] of member j of the model whose networks start at stack index
        ``base``: its one network (output None: all), or its k per-output networks, each with
        its output layer cut to row o (it computes output o only)."""
        g = self.networks_per_member(k)
        if g == 1:
            return [(net.member_layers(base + j), None)]
        out = []
        for o in range(g):
            layers = net.member_layers(base + j * g + o)
            W, b = layers[-1]
            out.append(([*layers[:-1], (W[o:o + 1], b[o:o + 1])], o))
        return out

    def _plain(self, net: StackedMLP, base: int, j: int, Xt: torch.Tensor, k: int,
               chunk: int | None = None) -> np.ndarray:
        """Dropout-off output (n, k) float64 of member j (standardised units)."""
        parts = self._network_layers(net, base, j, k)
        if parts[0][1] is None:
            return mc.plain_forward(parts[0][0], self.activation, Xt, chunk).double().cpu().numpy()
        out = np.empty((Xt.shape[0], k))
        for layers, o in parts:
            out[:, o] = mc.plain_forward(layers, self.activation, Xt, chunk).double().cpu().numpy()[:, 0]
        return out

    def _mc(self, net: StackedMLP, base: int, j: int, Xt: torch.Tensor, k: int, T: int, seed: int,
            out: np.ndarray, offset: int, shared_masks: bool = True, chunk_size: int | None = None) -> None:
        """Fill ``out[:, offset:offset+T]`` (n, ., k) with member j's MC samples (standardised)."""
        for layers, o in self._network_layers(net, base, j, k):
            target = out if o is None else out[:, :, o:o + 1]
            mc.mc_forward(layers, self.activation, self.dropout_rates, Xt, T, seed, shared_masks=shared_masks,
                          chunk_size=chunk_size, out=target, out_offset=offset)

    def hyperparameters(self) -> dict:
        """The constructor arguments that define how this model trains (JSON-able)."""
        return {"hidden": list(self.hidden), "activation": self.activation, "dropout": self.dropout,
                "dropout_layers": self.dropout_layers, "weight_decay": self.weight_decay, "lr": self.lr,
                "epochs": self.epochs, "batch_size": self.batch_size, "early_stopping": self.early_stopping,
                "val_fraction": self.val_fraction, "patience": self.patience, "lr_schedule": self.lr_schedule,
                "n_members": self.n_members, "min_steps": self.min_steps, "warm_fraction": self.warm_fraction,
                "init_gain": self.init_gain, "polish_steps": self.polish_steps, "per_output": self.per_output}

    # ------------------------------------------------------------------ inputs
    def _to_tensor_x(self, X: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((X - self._x_mean) / self._x_std, dtype=torch.float32, device=self.device)

    def _check_X(self, X, name: str = "X") -> np.ndarray:
        X = as_2d(name, X)
        if self._net is not None and X.shape[1] != self.input_dim:
            raise ValueError(f"{name} has {X.shape[1]} columns; the model was fitted on {self.input_dim}")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{name} contains NaN or infinite values")
        return X

    def _check_xy(self, X, y) -> tuple[np.ndarray, np.ndarray]:
        X = as_2d("X", X)
        y = as_2d("y", y)
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
        if X.shape[0] < 2:
            raise ValueError(f"need at least 2 training points; got {X.shape[0]}")
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or infinite values")
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinite values")
        return X, y

    # ------------------------------------------------------------------ training
    def batch_for(self, n_train: int) -> int:
        """Rows per optimiser step: the full batch up to ``batch_size`` rows."""
        return min(self.batch_size, n_train)

    def epochs_for(self, n_train: int) -> int:
        """Epochs run on ``n_train`` points: ``epochs``, raised so that at least ``min_steps``
        optimiser steps are taken (one step per epoch while the data fit in one batch)."""
        steps_per_epoch = math.ceil(n_train / self.batch_for(n_train))
        return max(self.epochs, math.ceil(self.min_steps / steps_per_epoch))

    def steps_for(self, n_train: int, warm: bool = False) -> int:
        """Optimiser steps of a fit on ``n_train`` points.  A warm start runs ``warm_fraction``
        of them, but never fewer than ``WARM_MIN_STEPS`` (or all of them, if fewer): the saving
        is for long fits; a short one cut to a third would barely learn the new labels."""
        steps = self.epochs_for(n_train) * math.ceil(n_train / self.batch_for(n_train))
        if not warm:
            return steps
        return max(math.ceil(steps * self.warm_fraction), min(steps, WARM_MIN_STEPS))

    def _settings(self, n_train: int, warm: bool, seed: int) -> TrainSettings:
        return TrainSettings(steps=self.steps_for(n_train, warm), lr=self.lr, weight_decay=self.weight_decay,
                             batch_size=self.batch_for(n_train),
                             schedule="cosine" if self.lr_schedule == "cosine" else "constant",
                             patience=self.patience if self.early_stopping else None, seed=seed)

    def _new_stack(self, d: int, k: int, seeds: Sequence[int]) -> StackedMLP:
        net = StackedMLP([d, *self.hidden, k], len(seeds), self.activation, self.dropout_rates, self.device)
        net.init([torch.Generator().manual_seed(s) for s in seeds], gain=self.init_gain)
        return net

    def fit(self, X: np.ndarray, y: np.ndarray, warm_start: bool = False,
            progress: ProgressFn | None = None) -> FitReport:
        """Train on (X, y); ``warm_start`` continues from the current weights (see the module
        docstring).  ``progress(epoch, n_epochs, train_loss, val_loss)`` is called up to ~200 times."""
        t0 = time.perf_counter()
        X, y = self._check_xy(X, y)
        n, d = X.shape
        k = y.shape[1]
        warm = bool(warm_start) and self._net is not None
        if warm and (self.input_dim != d or self.output_dim != k):
            raise ValueError(f"warm_start: the model was fitted on {self.input_dim} inputs/{self.output_dim} "
                             f"outputs, got {d}/{k}")
        x_mean, x_std = _moments(X)
        y_mean, y_std = _moments(y)
        if warm:
            self._restandardise(x_mean, x_std, y_mean, y_std)
        else:
            self._net = self._new_stack(d, k, self._network_seeds(k))
        self._x_mean, self._x_std, self._y_mean, self._y_std = x_mean, x_std, y_mean, y_std
        Xt = self._to_tensor_x(X)
        yt = torch.as_tensor((y - y_mean) / y_std, dtype=torch.float32, device=self.device)
        M = self.n_members
        g = self.networks_per_member(k)
        n_val = int(round(self.val_fraction * n)) if self.early_stopping else 0
        n_val = min(n_val, n - 2)
        train_w = torch.ones(self.n_networks(k), n)
        val_w = None
        if n_val > 0:
            val_w = torch.zeros(self.n_networks(k), n)
            for j in range(M):
                perm = np.random.default_rng(seed_int(self.seed, j, 1, n)).permutation(n)
                val_w[j * g:(j + 1) * g, perm[:n_val]] = 1.0
            train_w = 1.0 - val_w
        ow = self._output_weights(k, 1)
        with training_threads() as threads:
            res = train_stacked(self._net, Xt, yt, self._settings(n - n_val, warm, seed_int(self.seed, 2, n)),
                                train_w, val_w, progress, output_weights=ow)
            polished = polish_stacked(self._net, Xt, yt, self.polish_steps, train_w, ow)
        self._last_report = FitReport(
            epochs_run=res.epochs_run * M, best_epoch=res.best_epoch, best_val_loss=res.best_val_loss,
            final_train_loss=res.final_train_loss, train_time_s=time.perf_counter() - t0,
            n_train=n - n_val, n_val=n_val, warm_start=warm, stopped_early=res.stopped_early,
            member_epochs=[res.epochs_run] * M, steps=res.steps_run, threads=threads,
            polish_iterations=polished.iterations)
        return self._last_report

    def cross_validate(self, X: np.ndarray, y: np.ndarray, folds: np.ndarray, T: int = 50,
                       seed: int = 0, only_folds: Sequence[int] | None = None,
                       continue_from: CrossValidation | None = None) -> CrossValidation:
        """K-fold out-of-fold predictions with this model's settings (the model itself is unchanged).

        All K folds x ``n_members`` (x k per output) networks train as one stack, fold f's networks on the rows
        with ``folds != f``; the normaliser is the full data's (a negligible leak of the held-out
        rows' mean and std, for one shared input scaling).  Returns each row's prediction and raw
        MC std (``T`` shared-mask samples) from the fold that did not see it.  ``only_folds``
        trains just those folds (e.g. one: a hold-out split at a fraction of the cost).

        ``continue_from``: the cross-validation, on the same X, y and folds, of a model that
        differs from this one only in fewer ``polish_steps`` (none); its networks are copied and
        polished, which gives the same result as training from scratch without repeating the
        AdamW phase (model selection scores "deeper" and "deeper + polish" this way).
        """
        t0 = time.perf_counter()
        X, y = self._check_xy(X, y)
        folds = np.asarray(folds, dtype=np.int64)
        if folds.shape != (X.shape[0],):
            raise ValueError(f"folds must have one entry per row ({X.shape[0]}); got shape {folds.shape}")
        fold_ids = np.unique(folds)
        if fold_ids.size < 2:
            raise ValueError("cross_validate needs at least 2 folds")
        if only_folds is not None:
            fold_ids = np.array(sorted(set(int(f) for f in only_folds) & set(fold_ids.tolist())))
            if fold_ids.size == 0:
                raise ValueError(f"only_folds {list(only_folds)} names no fold of {np.unique(folds).tolist()}")
        n, d = X.shape
        k = y.shape[1]
        x_mean, x_std = _moments(X)
        y_mean, y_std = _moments(y)
        Xt = torch.as_tensor((X - x_mean) / x_std, dtype=torch.float32, device=self.device)
        yt = torch.as_tensor((y - y_mean) / y_std, dtype=torch.float32, device=self.device)
        M, K = self.n_members, fold_ids.size
        N = self.n_networks(k)                        # networks per fold
        w = torch.ones(K * N, n)
        for fi, f in enumerate(fold_ids):
            w[fi * N:(fi + 1) * N, torch.as_tensor(folds == f)] = 0.0
        ow = self._output_weights(k, K)
        training = self.training_key(seed)
        data = _digest(X, y, folds)
        with training_threads():
            if continue_from is None:
                net = self._new_stack(d, k, [s for _ in range(K) for s in self._network_seeds(k)])
                n_train = int(np.min([np.sum(folds != f) for f in fold_ids]))
                settings = self._settings(n_train, False, seed_int(self.seed, 2, n))
                if settings.patience is not None:
                    settings = TrainSettings(**{**settings.__dict__, "patience": None})
                train_stacked(net, Xt, yt, settings, w, output_weights=ow)
                polish_stacked(net, Xt, yt, self.polish_steps, w, ow)
            else:
                net = self._continued_stack(continue_from, fold_ids, training, data)
                polish_stacked(net, Xt, yt, self.polish_steps - continue_from.stack.polish_steps, w, ow)
        rows_all = np.flatnonzero(np.isin(folds, fold_ids))
        where = np.full(n, -1)
        where[rows_all] = np.arange(rows_all.size)
        pred = np.empty((rows_all.size, k))
        std = np.empty((rows_all.size, k))
        counts = [T // M + (1 if j < T % M else 0) for j in range(M)]
        for fi, f in enumerate(fold_ids):
            rows = np.flatnonzero(folds == f)
            xr = Xt[torch.as_tensor(rows)]
            acc = np.zeros((rows.size, k))
            samples = np.empty((rows.size, T, k))
            off = 0
            for j in range(M):
                acc += self._plain(net, fi * N, j, xr, k)
                if counts[j]:
                    self._mc(net, fi * N, j, xr, k, counts[j], seed_int(seed, j), samples, off)
                    off += counts[j]
            pred[where[rows]] = acc / M * y_std + y_mean
            std[where[rows]] = samples.std(axis=1) * y_std
        return CrossValidation(pred=pred, mc_std=std, rows=rows_all, folds=folds, seconds=time.perf_counter() - t0,
                               stack=FoldStack(net, fold_ids, training, data, self.polish_steps))

    def training_key(self, seed: int) -> str:
        """What determines this model's cross-validation networks (CV ``seed`` included) before
        their polish: two models with equal keys differ at most in ``polish_steps``."""
        hp = {key: v for key, v in self.hyperparameters().items() if key != "polish_steps"}
        return repr(sorted(hp.items())) + f" seed={self.seed} cv_seed={seed}"

    def _continued_stack(self, source: CrossValidation, fold_ids: np.ndarray, training: str,
                         data: str) -> StackedMLP:
        """A copy of ``source``'s fold networks, after checking they are this model's before its polish."""
        stack = source.stack
        if stack is None:
            raise ValueError("continue_from has no trained networks (a CrossValidation from cross_validate)")
        if stack.training != training:
            raise ValueError("continue_from was trained with other settings or seeds than this model "
                             "(only polish_steps may differ)")
        if stack.polish_steps > self.polish_steps:
            raise ValueError(f"continue_from is polished {stack.polish_steps} iterations, more than this "
                             f"model's {self.polish_steps}")
        if stack.data != data or not np.array_equal(stack.fold_ids, fold_ids):
            raise ValueError("continue_from was cross-validated on other rows, labels or folds")
        return stack.net.select(range(stack.net.n_stack))

    def _restandardise(self, x_mean, x_std, y_mean, y_std) -> None:
        """Rewrite first/last layers for a new normaliser, keeping the function in original units."""
        net = self._net
        dev = self.device
        f = lambda a: torch.as_tensor(a, dtype=torch.float64, device=dev)  # noqa: E731
        with torch.no_grad():
            W1 = net.W[0].double()                                            # (M, h1, d)
            shift = (f(x_mean) - f(self._x_mean)) / f(self._x_std)            # (d,)
            new_b1 = net.b[0].double() + W1 @ shift
            new_W1 = W1 * (f(x_std) / f(self._x_std))[None, None, :]
            ratio = f(self._y_std) / f(y_std)                                 # (k,)
            new_WL = net.W[-1].double() * ratio[None, :, None]
            new_bL = (net.b[-1].double() * f(self._y_std) + f(self._y_mean) - f(y_mean)) / f(y_std)
            net.W[0].copy_(new_W1.float())
            net.b[0].copy_(new_b1.float())
            net.W[-1].copy_(new_WL.float())
            net.b[-1].copy_(new_bL.float())

    # ------------------------------------------------------------------ inference
    def predict(self, X: np.ndarray, standardised: bool = False) -> np.ndarray:
        """Dropout-off prediction (n, k) float64 (ensembles: the mean of members)."""
        self._require_fitted()
        X = self._check_X(X)
        Xt = self._to_tensor_x(X)
        acc = None
        for j in range(self.n_members):
            out = self._plain(self._net, 0, j, Xt, self.output_dim, _PREDICT_CHUNK)
            acc = out if acc is None else acc + out
        ys = acc / self.n_members
        return ys if standardised else ys * self._y_std + self._y_mean

    def sample(self, X: np.ndarray, T: int, seed: int = 0, shared_masks: bool = True,
               chunk_size: int | None = None, standardised: bool = False,
               dtype: type = np.float64) -> np.ndarray:
        """MC-dropout samples (n, T, k), in original units unless ``standardised``.

        ``shared_masks=True``: sample t is one thinned network for every point (duplicate rows
        get identical samples).  ``False``: independent masks per point and sample (ablation).
        ``chunk_size`` (points per chunk) only trades memory for speed; results do not depend on
        it.  ``dtype=np.float32`` halves the memory of the result for very large pools.
        """
        self._require_fitted()
        X = self._check_X(X)
        if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
            raise ValueError(f"T must be a positive integer; got {T!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64; got {dtype}")
        Xt = self._to_tensor_x(X)
        out = np.empty((X.shape[0], int(T), self.output_dim), dtype=dtype)
        m = self.n_members
        counts = [T // m + (1 if j < T % m else 0) for j in range(m)]
        off = 0
        for j, Tj in enumerate(counts):
            if Tj == 0:
                continue
            member_seed = int(seed) if m == 1 else seed_int(seed, j)
            self._mc(self._net, 0, j, Xt, self.output_dim, Tj, member_seed, out, off,
                     shared_masks=shared_masks, chunk_size=chunk_size)
            off += Tj
        if not standardised:
            out *= self._y_std.astype(dtype)
            out += self._y_mean.astype(dtype)
        return out

    # ------------------------------------------------------------------ calibration
    @property
    def calibration(self) -> tuple[np.ndarray, np.ndarray]:
        """(std_scale (k,), std_floor (k,)) applied by `predict_with_std` (1 and 0 when uncalibrated)."""
        self._require_fitted()
        k = self.output_dim
        scale = self._calib_scale if self._calib_scale is not None else np.ones(k)
        floor = self._calib_floor if self._calib_floor is not None else np.zeros(k)
        return scale.copy(), floor.copy()

    @property
    def calibration_dof(self) -> float:
        """The predictive's Student-t degrees of freedom (:mod:`alcore.predictive`; inf: Gaussian)."""
        return self._calib_dof

    def set_calibration(self, std_scale, std_floor, dof: float | None = None) -> None:
        """Set the post-hoc std calibration (original units): std = sqrt((scale*mc_std)^2 + floor^2),
        and the predictive's tails: a Student-t with ``dof`` degrees of freedom (None/inf: Gaussian)."""
        self._require_fitted()
        nu = math.inf if dof is None else check_dof(dof)
        k = self.output_dim
        s = np.broadcast_to(np.asarray(std_scale, dtype=np.float64), (k,)).copy()
        f = np.broadcast_to(np.asarray(std_floor, dtype=np.float64), (k,)).copy()
        if not (np.all(np.isfinite(s)) and np.all(s > 0) and np.all(np.isfinite(f)) and np.all(f >= 0)):
            raise ValueError(f"calibration needs std_scale > 0 and std_floor >= 0 (finite); got {s}, {f}")
        self._calib_scale, self._calib_floor, self._calib_dof = s, f, nu

    def predict_with_std(self, X: np.ndarray, T: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(mean (n, k), calibrated std (n, k)): the dropout-off prediction and
        ``sqrt((calib_std_scale * mc_std)^2 + calib_std_floor^2)`` from ``T`` MC samples — the
        predictive's standard deviation; its shape is a Student-t with `calibration_dof`
        (intervals: :func:`alcore.predictive.interval_z`)."""
        mean = self.predict(X)
        mc_std = self.sample(X, T, seed=seed).std(axis=1)
        scale, floor = self.calibration
        return mean, np.sqrt((scale * mc_std) ** 2 + floor ** 2)

    # ------------------------------------------------------------------ state
    def architecture(self) -> state_fmt.Architecture:
        self._require_fitted()
        return state_fmt.Architecture(self.hidden, self.activation, self.dropout_rates, self.n_members,
                                      self.input_dim, self.output_dim, self.splits_outputs(self.output_dim))

    def get_state(self) -> dict[str, np.ndarray]:
        """Everything needed to rebuild the model, as plain numpy arrays (no pickle)."""
        self._require_fitted()
        st: dict[str, np.ndarray] = {"format_version": np.array(state_fmt.STATE_FORMAT_VERSION, dtype=np.int64)}
        st.update(self.architecture().to_state())
        st.update({
            "norm_x_mean": np.asarray(self._x_mean, dtype=np.float64).copy(),
            "norm_x_std": np.asarray(self._x_std, dtype=np.float64).copy(),
            "norm_y_mean": np.asarray(self._y_mean, dtype=np.float64).copy(),
            "norm_y_std": np.asarray(self._y_std, dtype=np.float64).copy(),
            "hp_weight_decay": np.array(self.weight_decay),
            "hp_lr": np.array(self.lr),
            "hp_epochs": np.array(self.epochs, dtype=np.int64),
            "hp_min_steps": np.array(self.min_steps, dtype=np.int64),
            "hp_batch_size": np.array(self.batch_size, dtype=np.int64),
            "hp_early_stopping": np.array(int(self.early_stopping), dtype=np.int64),
            "hp_val_fraction": np.array(self.val_fraction),
            "hp_patience": np.array(self.patience, dtype=np.int64),
            "hp_lr_schedule": np.array(LR_SCHEDULES.index(self.lr_schedule), dtype=np.int64),
            "hp_seed": np.array(self.seed, dtype=np.int64),
            "hp_warm_fraction": np.array(self.warm_fraction),
            "hp_init_gain": np.array(np.nan if self.init_gain is None else self.init_gain),
            "hp_polish_steps": np.array(self.polish_steps),
        })
        if self._calib_scale is not None:
            st["calib_std_scale"] = self._calib_scale.copy()
            st["calib_std_floor"] = self._calib_floor.copy()
            st["calib_dof"] = np.array(self._calib_dof, dtype=np.float64)
        st.update(state_fmt.stack_to_state(self._net))
        return st

    @classmethod
    def from_state(cls, state: Mapping[str, np.ndarray], device: str = "auto") -> DropoutMLP:
        """Rebuild a model from `get_state()` output; it predicts identically."""
        arch = state_fmt.architecture_of(state)
        g = lambda k: state_fmt.require(state, k)  # noqa: E731
        sched_code = int(g("hp_lr_schedule"))
        if not 0 <= sched_code < len(LR_SCHEDULES):
            raise ValueError(f"state hp_lr_schedule code {sched_code} is unknown")
        opt = lambda k, default, cast: cast(state[k]) if k in state else default  # noqa: E731
        model = cls(hidden=arch.hidden, activation=arch.activation, dropout=max(arch.dropout_layers),
                    dropout_layers=list(arch.dropout_layers),
                    weight_decay=float(g("hp_weight_decay")), lr=float(g("hp_lr")),
                    epochs=int(g("hp_epochs")), batch_size=int(g("hp_batch_size")),
                    early_stopping=bool(int(g("hp_early_stopping"))),
                    val_fraction=float(g("hp_val_fraction")), patience=int(g("hp_patience")),
                    lr_schedule=LR_SCHEDULES[sched_code], seed=int(g("hp_seed")), device=device,
                    n_members=arch.n_members, min_steps=opt("hp_min_steps", 0, int),
                    warm_fraction=opt("hp_warm_fraction", 1.0, float),
                    init_gain=None if not np.isfinite(opt("hp_init_gain", np.nan, float)) else float(state["hp_init_gain"]),
                    polish_steps=opt("hp_polish_steps", 0, int), per_output=arch.per_output)
        model.load_state(state)
        return model

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Load weights, normaliser and calibration (e.g. the previous iteration's, for a warm start).

        The architecture in ``state`` must match this model's (hidden sizes, activation, dropout
        layout, number of members, per-output networks); training hyperparameters stay those of this model.
        """
        arch = state_fmt.architecture_of(state)
        if arch.hidden != self.hidden:
            raise ValueError(f"state arch_hidden {arch.hidden} does not match the model's hidden {self.hidden}")
        if arch.activation != self.activation:
            raise ValueError(f"state arch_activation {arch.activation!r} does not match the model's {self.activation!r}")
        if arch.n_members != self.n_members:
            raise ValueError(f"state arch_n_members {arch.n_members} does not match the model's {self.n_members}")
        if arch.per_output != self.splits_outputs(arch.output_dim):
            raise ValueError(f"state arch_per_output {int(arch.per_output)} does not match the model's "
                             f"per_output={self.per_output}")
        if not np.allclose(arch.dropout_layers, self.dropout_rates):
            raise ValueError(f"state arch_dropout_layers {list(arch.dropout_layers)} does not match the model's "
                             f"{list(self.dropout_rates)}")
        d, k = arch.input_dim, arch.output_dim
        net = state_fmt.stack_from_state(state, arch, self.device)
        keys = ("norm_x_mean", "norm_x_std", "norm_y_mean", "norm_y_std")
        norms = [state_fmt.require(state, key).astype(np.float64).ravel().copy() for key in keys]
        for name, arr, dim in zip(keys, norms, (d, d, k, k)):
            if arr.shape != (dim,):
                raise ValueError(f"state {name} has shape {arr.shape}, expected ({dim},)")
        scale = floor = None
        dof = state_fmt.calibration_dof_of(state)
        if "calib_std_scale" in state or "calib_std_floor" in state:
            scale = np.broadcast_to(np.asarray(state.get("calib_std_scale", 1.0), dtype=np.float64), (k,)).copy()
            floor = np.broadcast_to(np.asarray(state.get("calib_std_floor", 0.0), dtype=np.float64), (k,)).copy()
        self._net = net
        self._x_mean, self._x_std, self._y_mean, self._y_std = norms
        self._calib_scale, self._calib_floor, self._calib_dof = scale, floor, dof

    def __repr__(self) -> str:
        return (f"DropoutMLP(hidden={self.hidden}, activation={self.activation!r}, dropout={self.dropout}, "
                f"dropout_layers={self.dropout_layers!r}, n_members={self.n_members}, per_output={self.per_output}, "
                f"fitted={self.is_fitted})")
