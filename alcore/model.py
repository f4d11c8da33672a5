"""`DropoutMLP`: the surrogate of alflow, an MLP regressor with dropout after each hidden layer.

Design choices, and why:

* **Speed.** A study trains thousands of these on two cores, so training avoids the generic
  machinery whose per-step overhead dominates for a 2x100 network: parameters of one network
  live in one flat float32 vector, the backward pass is written out by hand (tested against
  autograd), AdamW is applied to the flat vector in a handful of tensor ops, mini-batches are
  slices of a tensor permuted once per epoch, and the dropout masks of a whole epoch are drawn
  in one call (four 16-bit uniforms per 64-bit random draw).  On the 2-core box this ran
  2-7x faster per epoch than `nn.Sequential` + autograd + `torch.optim.AdamW` (2x quiet, more
  under load, where per-op overhead dominates).
* **Standardised inputs and outputs.** Fitted on the data given to `fit` and stored with the
  model, so the network always works in comparable units and the NNGP code can use the
  standardised samples (`sample(..., standardised=True)`).
* **Defaults chosen by measurement** (`benchmarks/training_noise.py`, 2x100 MLP, 100 and 500
  noise-free points of a 9-d smooth function and of Branin, 6 model seeds on the same data):
  a cosine learning-rate schedule annealed to zero over all epochs (it is what makes the end
  point of training reproducible), lr 3e-3, 300 epochs but at least ``min_steps=2000`` optimiser
  steps (small data sets have one or two mini-batches per epoch and were badly under-trained),
  and **no early stopping by default**.  Early stopping on a held-out slice (with best-weights
  restore, available via ``early_stopping=True``) made both the test RMSE and its seed-to-seed
  spread *worse* on these deterministic targets: it stops while the cosine learning rate is
  still high, and it withholds 10% of the expensive labels from training.
* **Warm start.** `fit(X, y, warm_start=True)` keeps the current weights but refits the
  normaliser to the new data *and rewrites the first and last layers so that the network
  computes exactly the same function in original units as before*.  Keeping the old
  normaliser would leave the standardised units drifting away from the data as a campaign
  grows (the NNGP code assumes unit-scale outputs); refitting it without rewriting the weights
  would throw away what the warm start is for.  Dropout acts only on hidden units, so the
  rewrite is exact for the stochastic network too.
* **No pickle.** `get_state()` gives plain numpy arrays only (architecture encoded as numbers),
  `from_state` rebuilds a model that predicts identically.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from alcore import mc

ACTIVATIONS: tuple[str, ...] = ("relu", "tanh", "gelu", "silu", "elu")  # state codes: index
LR_SCHEDULES: tuple[str, ...] = ("cosine", "none", "constant")  # "constant" = "none"
STATE_FORMAT_VERSION = 1
_PREDICT_CHUNK = 65536

ProgressFn = Callable[[int, int, float, float], None]


@dataclass
class FitReport:
    """Summary of one `fit` call (for ensembles: totals/means over members)."""

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


def _seed_int(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0]
               & 0x7FFF_FFFF_FFFF_FFFF)


def _as_2d(name: str, a: np.ndarray, dtype=np.float64) -> np.ndarray:
    a = np.asarray(a, dtype=dtype)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D; got shape {a.shape}")
    return a


class _Net:
    """One network: flat float32 parameter vector with per-layer views."""

    def __init__(self, sizes: Sequence[int], device: torch.device):
        self.sizes = list(sizes)
        n = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        self.theta = torch.zeros(n, dtype=torch.float32, device=device)
        self.grad = torch.zeros_like(self.theta)
        self.W, self.b = self._views(self.theta)
        self.gW, self.gb = self._views(self.grad)

    def _views(self, flat: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        Ws, bs, o = [], [], 0
        for a, b in zip(self.sizes[:-1], self.sizes[1:]):
            Ws.append(flat[o:o + a * b].view(b, a))
            o += a * b
            bs.append(flat[o:o + b])
            o += b
        return Ws, bs

    def init(self, gen: torch.Generator, activation: str) -> None:
        gain = 1.0 if activation == "tanh" else math.sqrt(2.0)
        for li, W in enumerate(self.W):
            fan_in = W.shape[1]
            g = 1.0 if li == len(self.W) - 1 else gain
            bound = g * math.sqrt(3.0 / fan_in)      # uniform with std g/sqrt(fan_in)
            W.copy_((torch.rand(W.shape, generator=gen) * 2 - 1) * bound)
            self.b[li].zero_()

    def layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return list(zip(self.W, self.b))


def _act_and_grad(name: str) -> tuple[Callable, Callable]:
    """Activation and ``grad_in = grad_out * act'(z)`` (may overwrite grad_out), for manual backprop."""
    if name == "relu":
        # sign(relu(z)) is the 0/1 derivative; cheaper on CPU than masked_fill_ with a bool mask
        return torch.relu, lambda g, z, a: g.mul_(torch.sign(a))
    if name == "tanh":
        return torch.tanh, lambda g, z, a: g.mul_(1.0 - a * a)
    if name == "gelu":
        c = 1.0 / math.sqrt(2.0 * math.pi)

        def ggelu(g, z, a):
            cdf = 0.5 * (1.0 + torch.erf(z * (1.0 / math.sqrt(2.0))))
            return g.mul_(cdf + z * torch.exp(-0.5 * z * z) * c)
        return torch.nn.functional.gelu, ggelu
    if name == "silu":
        def gsilu(g, z, a):
            s = torch.sigmoid(z)
            return g.mul_(s * (1.0 + z * (1.0 - s)))
        return torch.nn.functional.silu, gsilu
    if name == "elu":
        # elu'(z) = 1 for z > 0, exp(z) = elu(z) + 1 otherwise: min(elu(z) + 1, 1) covers both
        return torch.nn.functional.elu, lambda g, z, a: g.mul_((a + 1.0).clamp_(max=1.0))
    raise ValueError(f"activation must be one of {ACTIVATIONS}; got {name!r}")


def forward_backward(net: _Net, x: torch.Tensor, y: torch.Tensor, masks: Sequence[torch.Tensor | None],
                     activation: str) -> torch.Tensor:
    """MSE loss (mean over rows and outputs) of the dropout network; writes the gradient to ``net.grad``.

    ``masks[l]`` (rows, width_l) multiplies the activation of hidden layer ``l`` (or is None).
    Returns the loss *sum* of squared errors as a 0-d tensor (no host sync).
    """
    act, dact = _act_and_grad(activation)
    L = len(net.W)
    hs = [x]
    zs, as_ = [], []
    h = x
    for li in range(L - 1):
        z = torch.addmm(net.b[li], h, net.W[li].t())
        a = act(z)
        m = masks[li]
        h = a * m if m is not None else a
        zs.append(z)
        as_.append(a)
        hs.append(h)
    out = torch.addmm(net.b[-1], h, net.W[-1].t())
    diff = out - y
    g = diff * torch.tensor(2.0 / diff.numel(), dtype=diff.dtype, device=diff.device)
    for li in range(L - 1, -1, -1):
        torch.mm(g.t(), hs[li], out=net.gW[li])
        torch.sum(g, 0, out=net.gb[li])
        if li > 0:
            g = g @ net.W[li]
            m = masks[li - 1]
            if m is not None:
                g.mul_(m)
            g = dact(g, zs[li - 1], as_[li - 1])
    return (diff * diff).sum()


class DropoutMLP:
    """MLP regressor with dropout after every hidden activation; see the module docstring.

    Every argument has a default, so ``DropoutMLP()`` works.  ``n_members > 1`` trains a small
    ensemble of independently seeded networks: ``predict`` averages them and ``sample`` pools
    their MC samples (``T`` split across members).
    """

    def __init__(self, hidden: Sequence[int] = (100, 100), activation: str = "relu",
                 dropout: float = 0.1, weight_decay: float = 1e-4, lr: float = 3e-3,
                 epochs: int = 300, batch_size: int = 64, early_stopping: bool = False,
                 val_fraction: float = 0.1, patience: int = 30, lr_schedule: str = "cosine",
                 seed: int = 0, device: str = "auto", n_members: int = 1, min_steps: int = 2000):
        try:
            hidden_t = tuple(int(h) for h in hidden)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"hidden must be a sequence of positive integers; got {hidden!r}") from exc
        if len(hidden_t) == 0 or any(h < 1 for h in hidden_t) or any(
                isinstance(h, float) and not float(h).is_integer() for h in hidden):
            raise ValueError(f"hidden must be a non-empty sequence of positive integers; got {hidden!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}; got {activation!r}")
        if not (isinstance(dropout, (int, float)) and 0.0 <= dropout < 1.0):
            raise ValueError(f"dropout must be a number in [0, 1); got {dropout!r}")
        if not (isinstance(weight_decay, (int, float)) and weight_decay >= 0 and math.isfinite(weight_decay)):
            raise ValueError(f"weight_decay must be a finite number >= 0; got {weight_decay!r}")
        if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a finite number > 0; got {lr!r}")
        for name, v in (("epochs", epochs), ("batch_size", batch_size), ("patience", patience),
                        ("n_members", n_members)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer; got {v!r}")
        if isinstance(min_steps, bool) or not isinstance(min_steps, (int, np.integer)) or min_steps < 0:
            raise ValueError(f"min_steps must be a non-negative integer; got {min_steps!r}")
        if not isinstance(early_stopping, (bool, np.bool_)):
            raise ValueError(f"early_stopping must be a bool; got {early_stopping!r}")
        if not (isinstance(val_fraction, (int, float)) and 0.0 <= val_fraction <= 0.5):
            raise ValueError(f"val_fraction must be a number in [0, 0.5]; got {val_fraction!r}")
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}; got {lr_schedule!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
        self.hidden = hidden_t
        self.activation = activation
        self.dropout = float(dropout)
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
        self._device_arg = device
        self.device = _resolve_device(device)
        self._nets: list[_Net] = []
        self._x_mean = self._x_std = self._y_mean = self._y_std = None

    # ------------------------------------------------------------------ properties
    @property
    def is_fitted(self) -> bool:
        return bool(self._nets)

    @property
    def input_dim(self) -> int:
        self._require_fitted()
        return self._nets[0].sizes[0]

    @property
    def output_dim(self) -> int:
        self._require_fitted()
        return self._nets[0].sizes[-1]

    def _require_fitted(self) -> None:
        if not self._nets:
            raise RuntimeError("DropoutMLP is not fitted: call fit() or load_state() first")

    # ------------------------------------------------------------------ normalisation
    @staticmethod
    def _moments(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = a.mean(axis=0)
        std = a.std(axis=0)
        std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
        return mean, std

    def _to_tensor_x(self, X: np.ndarray) -> torch.Tensor:
        Xs = (X - self._x_mean) / self._x_std
        return torch.as_tensor(Xs, dtype=torch.float32, device=self.device)

    def _check_X(self, X, name: str = "X") -> np.ndarray:
        X = _as_2d(name, X)
        if self._nets and X.shape[1] != self.input_dim:
            raise ValueError(f"{name} has {X.shape[1]} columns; the model was fitted on {self.input_dim}")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{name} contains NaN or infinite values")
        return X

    # ------------------------------------------------------------------ training
    def epochs_for(self, n_train: int) -> int:
        """Epochs run on ``n_train`` points: ``epochs``, raised so that at least ``min_steps``
        optimiser steps are taken (small data sets have few steps per epoch and are otherwise
        under-trained; see benchmarks/training_noise.py)."""
        steps_per_epoch = math.ceil(n_train / min(self.batch_size, n_train))
        return max(self.epochs, math.ceil(self.min_steps / steps_per_epoch))

    def fit(self, X: np.ndarray, y: np.ndarray, warm_start: bool = False,
            progress: ProgressFn | None = None) -> FitReport:
        """Train on ``X`` (n, d) and ``y`` (n,) or (n, k).

        ``warm_start=True`` continues from the current weights (after a function-preserving
        re-standardisation, see the module docstring); on an unfitted model it trains afresh.
        ``progress(epoch, n_epochs, train_loss, val_loss)`` is called after every epoch.
        """
        t0 = time.perf_counter()
        X = _as_2d("X", X)
        y = _as_2d("y", y)
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
        if X.shape[0] < 2:
            raise ValueError(f"X: need at least 2 training points; got {X.shape[0]}")
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or infinite values")
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinite values")
        if progress is not None and not callable(progress):
            raise ValueError("progress must be callable or None")
        warm = bool(warm_start) and self.is_fitted
        n, d = X.shape
        k = y.shape[1]
        x_mean, x_std = self._moments(X)
        y_mean, y_std = self._moments(y)
        if warm:
            if d != self.input_dim or k != self.output_dim:
                raise ValueError(f"warm_start: model has {self.input_dim} inputs/{self.output_dim} outputs, "
                                 f"data has {d}/{k}")
            for net in self._nets:
                self._restandardise(net, x_mean, x_std, y_mean, y_std)
        else:
            sizes = [d, *self.hidden, k]
            self._nets = []
            for j in range(self.n_members):
                net = _Net(sizes, self.device)
                net.init(torch.Generator().manual_seed(_seed_int(self.seed, j, 0)), self.activation)
                self._nets.append(net)
        self._x_mean, self._x_std, self._y_mean, self._y_std = x_mean, x_std, y_mean, y_std

        Xt = self._to_tensor_x(X)
        yt = torch.as_tensor((y - y_mean) / y_std, dtype=torch.float32, device=self.device)
        n_val = 0
        if self.early_stopping and self.val_fraction > 0:
            n_val = int(round(self.val_fraction * n))
            if n_val < 1 or n - n_val < 1:
                n_val = 0
        reports = []
        ep = self.epochs_for(n - n_val)
        total_epochs = ep * self.n_members
        for j, net in enumerate(self._nets):
            split_gen = np.random.default_rng(_seed_int(self.seed, j, 1, n))
            perm = torch.as_tensor(split_gen.permutation(n), device=self.device)
            val_idx, tr_idx = perm[:n_val], perm[n_val:]
            cb = None
            if progress is not None:
                cb = (lambda e, tl, vl, off=j * ep: progress(off + e, total_epochs, tl, vl))
            reports.append(self._train_net(net, Xt[tr_idx], yt[tr_idx], Xt[val_idx], yt[val_idx],
                                           _seed_int(self.seed, j, 2, n), cb))
        self._last_report = FitReport(
            epochs_run=sum(r[0] for r in reports),
            best_epoch=reports[0][1],
            best_val_loss=float(np.mean([r[2] for r in reports])) if n_val else float("nan"),
            final_train_loss=float(np.mean([r[3] for r in reports])),
            train_time_s=time.perf_counter() - t0,
            n_train=n - n_val, n_val=n_val, warm_start=warm,
            stopped_early=any(r[4] for r in reports),
            member_epochs=[r[0] for r in reports],
        )
        return self._last_report

    def _train_net(self, net: _Net, Xtr: torch.Tensor, ytr: torch.Tensor, Xval: torch.Tensor,
                   yval: torch.Tensor, seed: int, cb) -> tuple[int, int, float, float, bool]:
        """AdamW on the flat parameter vector; returns (epochs, best_epoch, best_val, last_train, stopped)."""
        gen = torch.Generator(device="cpu").manual_seed(seed)
        n = Xtr.shape[0]
        bs = min(self.batch_size, n)
        steps_per_epoch = math.ceil(n / bs)
        n_epochs = self.epochs_for(n)
        total_steps = n_epochs * steps_per_epoch
        widths = list(self.hidden)
        p = self.dropout
        b1, b2, eps = 0.9, 0.999, 1e-8
        b2_t = torch.tensor(b2, dtype=torch.float32, device=self.device)
        eps_t = torch.tensor(eps, dtype=torch.float32, device=self.device)
        m_state = torch.zeros_like(net.theta)
        v_state = torch.zeros_like(net.theta)
        best = net.theta.clone()
        best_val, best_epoch, bad = math.inf, 0, 0
        has_val = Xval.shape[0] > 0
        step = 0
        last_train = float("nan")
        stopped = False
        epoch = 0
        for epoch in range(1, n_epochs + 1):
            perm = torch.randperm(n, generator=gen).to(self.device)
            Xp, yp = Xtr[perm], ytr[perm]
            if p > 0:
                masks = [mc.dropout_mask((n, w), p, gen, self.device) for w in widths]
            else:
                masks = [None] * len(widths)
            loss_sum = torch.zeros((), device=self.device)
            for s in range(0, n, bs):
                e = min(n, s + bs)
                loss_sum += forward_backward(net, Xp[s:e], yp[s:e],
                                             [m[s:e] if m is not None else None for m in masks],
                                             self.activation)
                step += 1
                lr_t = self.lr
                if self.lr_schedule == "cosine":
                    lr_t = self.lr * 0.5 * (1.0 + math.cos(math.pi * (step - 1) / total_steps))
                # AdamW (decoupled weight decay) on the flat vector, as torch.optim.AdamW except
                # that eps is added to sqrt(v) before the bias correction (negligible).  Python
                # floats only go where torch takes a Scalar argument; elsewhere 0-d tensors are
                # used, because wrapping a float per op costs a conversion on every step.
                g = net.grad
                if self.weight_decay:
                    net.theta.add_(net.theta, alpha=-lr_t * self.weight_decay)
                m_state.lerp_(g, 1.0 - b1)
                v_state.mul_(b2_t).addcmul_(g, g, value=1.0 - b2)
                denom = v_state.sqrt().add_(eps_t)
                net.theta.addcdiv_(m_state, denom,
                                   value=-lr_t * math.sqrt(1.0 - b2 ** step) / (1.0 - b1 ** step))
            last_train = loss_sum.item() / ytr.numel()
            if has_val:
                with torch.no_grad():
                    pv = mc.plain_forward(net.layers(), self.activation, Xval)
                    val = ((pv - yval) ** 2).mean().item()
                if val < best_val:
                    best_val, best_epoch, bad = val, epoch, 0
                    best.copy_(net.theta)
                else:
                    bad += 1
            else:
                val = float("nan")
            if cb is not None:
                cb(epoch, last_train, val)
            if has_val and bad >= self.patience:
                stopped = True
                break
        if has_val:
            net.theta.copy_(best)
        else:
            best_epoch = epoch
        return epoch, best_epoch, best_val if has_val else float("nan"), last_train, stopped

    def _restandardise(self, net: _Net, x_mean, x_std, y_mean, y_std) -> None:
        """Rewrite first/last layers for a new normaliser, keeping the function in original units."""
        dev = self.device
        f = lambda a: torch.as_tensor(a, dtype=torch.float64, device=dev)  # noqa: E731
        W1 = net.W[0].double()
        shift = (f(x_mean) - f(self._x_mean)) / f(self._x_std)           # (d,)
        new_b1 = net.b[0].double() + W1 @ shift
        new_W1 = W1 * (f(x_std) / f(self._x_std))[None, :]
        ratio = f(self._y_std) / f(y_std)                                  # (k,)
        WL = net.W[-1].double()
        new_WL = WL * ratio[:, None]
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
        for net in self._nets:
            out = mc.plain_forward(net.layers(), self.activation, Xt, _PREDICT_CHUNK)
            out = out.double().cpu().numpy()
            acc = out if acc is None else acc + out
        ys = acc / len(self._nets)
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
        m = len(self._nets)
        counts = [T // m + (1 if j < T % m else 0) for j in range(m)]
        off = 0
        for j, (net, Tj) in enumerate(zip(self._nets, counts)):
            if Tj == 0:
                continue
            member_seed = int(seed) if m == 1 else _seed_int(seed, j)
            mc.mc_forward(net.layers(), self.activation, self.dropout, Xt, Tj, member_seed,
                          shared_masks=shared_masks, chunk_size=chunk_size, out=out, out_offset=off)
            off += Tj
        if not standardised:
            out *= self._y_std.astype(dtype)
            out += self._y_mean.astype(dtype)
        return out

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, np.ndarray]:
        """Everything needed to rebuild the model, as plain numpy arrays (no pickle)."""
        self._require_fitted()
        st: dict[str, np.ndarray] = {
            "format_version": np.array(STATE_FORMAT_VERSION, dtype=np.int64),
            "arch_hidden": np.array(self.hidden, dtype=np.int64),
            "arch_activation": np.array(ACTIVATIONS.index(self.activation), dtype=np.int64),
            "arch_dropout": np.array(self.dropout, dtype=np.float64),
            "arch_n_members": np.array(self.n_members, dtype=np.int64),
            "arch_input_dim": np.array(self.input_dim, dtype=np.int64),
            "arch_output_dim": np.array(self.output_dim, dtype=np.int64),
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
        }
        for j, net in enumerate(self._nets):
            for li in range(len(net.W)):
                st[f"m{j}_W{li}"] = net.W[li].detach().cpu().numpy().copy()
                st[f"m{j}_b{li}"] = net.b[li].detach().cpu().numpy().copy()
        return st

    @staticmethod
    def _get(state: Mapping[str, np.ndarray], key: str) -> np.ndarray:
        if key not in state:
            raise ValueError(f"state is missing key {key!r}")
        return np.asarray(state[key])

    @classmethod
    def from_state(cls, state: Mapping[str, np.ndarray], device: str = "auto") -> DropoutMLP:
        """Rebuild a model from `get_state()` output; it predicts identically."""
        g = lambda k: cls._get(state, k)  # noqa: E731
        version = int(g("format_version"))
        if version != STATE_FORMAT_VERSION:
            raise ValueError(f"state format_version {version} is not supported (expected {STATE_FORMAT_VERSION})")
        act_code = int(g("arch_activation"))
        if not 0 <= act_code < len(ACTIVATIONS):
            raise ValueError(f"state arch_activation code {act_code} is unknown")
        sched_code = int(g("hp_lr_schedule"))
        if not 0 <= sched_code < len(LR_SCHEDULES):
            raise ValueError(f"state hp_lr_schedule code {sched_code} is unknown")
        model = cls(hidden=tuple(int(h) for h in g("arch_hidden").ravel()),
                    activation=ACTIVATIONS[act_code], dropout=float(g("arch_dropout")),
                    weight_decay=float(g("hp_weight_decay")), lr=float(g("hp_lr")),
                    epochs=int(g("hp_epochs")), batch_size=int(g("hp_batch_size")),
                    early_stopping=bool(int(g("hp_early_stopping"))),
                    val_fraction=float(g("hp_val_fraction")), patience=int(g("hp_patience")),
                    lr_schedule=LR_SCHEDULES[sched_code], seed=int(g("hp_seed")), device=device,
                    n_members=int(g("arch_n_members")),
                    min_steps=int(state["hp_min_steps"]) if "hp_min_steps" in state else 0)
        model.load_state(state)
        return model

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Load weights and normaliser (e.g. the previous iteration's, for a warm start).

        The architecture in ``state`` must match this model's (hidden sizes, activation,
        number of members); training hyperparameters stay those of this model.
        """
        g = lambda k: self._get(state, k)  # noqa: E731
        hidden = tuple(int(h) for h in g("arch_hidden").ravel())
        act = ACTIVATIONS[int(g("arch_activation"))] if 0 <= int(g("arch_activation")) < len(ACTIVATIONS) else None
        members = int(g("arch_n_members"))
        if hidden != self.hidden:
            raise ValueError(f"state arch_hidden {hidden} does not match the model's hidden {self.hidden}")
        if act != self.activation:
            raise ValueError(f"state arch_activation {act!r} does not match the model's {self.activation!r}")
        if members != self.n_members:
            raise ValueError(f"state arch_n_members {members} does not match the model's {self.n_members}")
        d, k = int(g("arch_input_dim")), int(g("arch_output_dim"))
        sizes = [d, *hidden, k]
        nets = []
        for j in range(members):
            net = _Net(sizes, self.device)
            for li in range(len(sizes) - 1):
                W = g(f"m{j}_W{li}")
                b = g(f"m{j}_b{li}")
                if W.shape != tuple(net.W[li].shape) or b.shape != tuple(net.b[li].shape):
                    raise ValueError(f"state m{j}_W{li}/m{j}_b{li} have shapes {W.shape}/{b.shape}, "
                                     f"expected {tuple(net.W[li].shape)}/{tuple(net.b[li].shape)}")
                net.W[li].copy_(torch.as_tensor(W, dtype=torch.float32))
                net.b[li].copy_(torch.as_tensor(b, dtype=torch.float32))
            nets.append(net)
        norms = [g(k_).astype(np.float64).ravel().copy() for k_ in ("norm_x_mean", "norm_x_std", "norm_y_mean", "norm_y_std")]
        for name, arr, dim in zip(("norm_x_mean", "norm_x_std", "norm_y_mean", "norm_y_std"), norms, (d, d, k, k)):
            if arr.shape != (dim,):
                raise ValueError(f"state {name} has shape {arr.shape}, expected ({dim},)")
        self._nets = nets
        self._x_mean, self._x_std, self._y_mean, self._y_std = norms

    def __repr__(self) -> str:
        return (f"DropoutMLP(hidden={self.hidden}, activation={self.activation!r}, dropout={self.dropout}, "
                f"n_members={self.n_members}, fitted={self.is_fitted})")
