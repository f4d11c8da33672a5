"""A stack of independent MLPs of one shape, and their training with torch autograd + AdamW.

Why stacked: a surrogate fit trains several networks of the same shape at once — the members
of a small ensemble, and during model selection the K cross-validation folds of every member.
Their parameters live in tensors with a leading *stack* axis ``M`` (``W[l]``: (M, out, in)),
every layer is one batched GEMM over the stack, and each network sees its own rows through a
per-network row weight (0 = not in this network's training set: the held-out fold).  One
optimiser step therefore updates all M networks, and they stay independent: the loss is a sum of
per-network losses and AdamW is element-wise.  ``benchmarks/training.py`` measures it against a
loop over networks and against the hand-written backward pass this replaced: 5 stacked folds
cost 5.2 / 28 / 155 ms per step at 100 / 1,000 / 5,000 rows, a loop over the folds 10.7 / 36 /
111 ms, the hand-written version 4.5 / 34 / 155 ms — the library is never 1.5x slower.

Shapes: inputs X (n, d) shared by every network (already standardised), targets Y (n, k),
row weights (M, n).  Dropout (inverted, rate ``dropout[l]`` after hidden layer ``l``) is drawn
independently per network, row and unit during training; sampling with *shared* masks for the
NNGP kernel is :mod:`alcore.mc`'s job.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from alcore import mc
from alcore.model.activations import get_activation

__all__ = ["StackedMLP", "TrainSettings", "TrainResult", "gather_rows", "output_mean", "train_stacked"]

#: progress(epoch, n_epochs, train_loss, val_loss) — the campaign's hook signature
ProgressFn = Callable[[int, int, float, float], None]


class StackedMLP:
    """``M`` MLPs with layer sizes ``sizes`` = [d, h1, ..., hL, k], parameters stacked on axis 0."""

    def __init__(self, sizes: Sequence[int], n_stack: int, activation: str,
                 dropout: Sequence[float], device: torch.device | str = "cpu"):
        self.sizes = [int(s) for s in sizes]
        if len(self.sizes) < 3:
            raise ValueError("StackedMLP needs at least one hidden layer")
        if len(dropout) != len(self.sizes) - 2:
            raise ValueError(f"dropout needs one rate per hidden layer ({len(self.sizes) - 2}); got {list(dropout)}")
        self.n_stack = int(n_stack)
        self.activation = get_activation(activation)
        self.dropout = tuple(float(p) for p in dropout)
        self.device = torch.device(device)
        # one flat leaf tensor (one AdamW tensor: few, large element-wise ops per step), with
        # per-layer views W[l] (M, out, in) and b[l] (M, out)
        self._shapes = [((self.n_stack, b, a), (self.n_stack, b)) for a, b in zip(self.sizes[:-1], self.sizes[1:])]
        self.theta = torch.zeros(sum(math.prod(w) + math.prod(b) for w, b in self._shapes), device=self.device)
        decay = torch.zeros_like(self.theta)
        for (lo, hi), _ in self._slices():
            decay[lo:hi] = 1.0
        self.decay_mask = decay          # 1 on weights, 0 on biases (weight decay spares biases)

    def _slices(self) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        out, o = [], 0
        for w, b in self._shapes:
            nw, nb = math.prod(w), math.prod(b)
            out.append(((o, o + nw), (o + nw, o + nw + nb)))
            o += nw + nb
        return out

    def views(self, flat: torch.Tensor | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(W list, b list) as views of ``flat`` (default: the parameters)."""
        flat = self.theta if flat is None else flat
        Ws, bs = [], []
        for ((wl, wh), (bl, bh)), (ws, bsh) in zip(self._slices(), self._shapes):
            Ws.append(flat[wl:wh].view(ws))
            bs.append(flat[bl:bh].view(bsh))
        return Ws, bs

    @property
    def W(self) -> list[torch.Tensor]:
        return self.views(self.theta.detach())[0]

    @property
    def b(self) -> list[torch.Tensor]:
        return self.views(self.theta.detach())[1]

    @property
    def widths(self) -> list[int]:
        return self.sizes[1:-1]

    def init(self, gens: Sequence[torch.Generator], gain: float | None = None) -> None:
        """Uniform weights of std ``gain/sqrt(fan_in)`` in the hidden layers (default: the
        activation's He gain) and ``1/sqrt(fan_in)`` in the output layer; zero biases.
        ``gens[j]`` seeds network j, so a network's start does not depend on what it is stacked with.

        The gain is a smoothness prior: a small one starts from (and, with AdamW, stays near) a
        smoother function, which is what smooth simulator outputs want (docs/results.md)."""
        if len(gens) != self.n_stack:
            raise ValueError(f"need {self.n_stack} generators, got {len(gens)}")
        Ws, bs = self.W, self.b
        with torch.no_grad():
            for li, W in enumerate(Ws):
                g = 1.0 if li == len(Ws) - 1 else (self.activation.gain if gain is None else float(gain))
                bound = g * math.sqrt(3.0 / W.shape[2])
                for j, gen in enumerate(gens):
                    W[j].copy_((torch.rand(W.shape[1:], generator=gen) * 2 - 1) * bound)
                bs[li].zero_()

    def last_hidden(self, X: torch.Tensor, masks: Sequence[torch.Tensor | None] | None = None,
                    flat: torch.Tensor | None = None) -> torch.Tensor:
        """The last hidden layer's activations (M, n, h_L), masked by ``masks[L-1]`` when given
        (arguments as in `forward`, which applies the output layer to them)."""
        return self._last_hidden(*self.views(self.theta.detach() if flat is None else flat), X, masks)

    def forward(self, X: torch.Tensor, masks: Sequence[torch.Tensor | None] | None = None,
                flat: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs (M, n, k) for inputs X (n, d) shared by all networks or (M, n, d) one set per
        network; ``masks[l]`` (M, n, width_l) or None.
        ``flat``: the parameter tensor to differentiate through (default: detached parameters)."""
        Ws, bs = self.views(self.theta.detach() if flat is None else flat)
        return torch.baddbmm(bs[-1].unsqueeze(1), self._last_hidden(Ws, bs, X, masks), Ws[-1].transpose(1, 2))

    def _last_hidden(self, Ws: list[torch.Tensor], bs: list[torch.Tensor], X: torch.Tensor,
                     masks: Sequence[torch.Tensor | None] | None) -> torch.Tensor:
        act = self.activation.fn

        def activate(h: torch.Tensor, layer: int) -> torch.Tensor:
            m = masks[layer] if masks is not None else None
            return act(h) if m is None else act(h) * m

        h = torch.matmul(X, Ws[0].transpose(1, 2)) + bs[0].unsqueeze(1)          # (M, n, h1)
        for li in range(1, len(Ws) - 1):
            h = torch.baddbmm(bs[li].unsqueeze(1), activate(h, li - 1), Ws[li].transpose(1, 2))
        return activate(h, len(Ws) - 2)

    def member_layers(self, j: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Network j as a list of (W (out, in), b (out,)) detached views (what :mod:`alcore.mc` takes)."""
        Ws, bs = self.W, self.b
        return [(W[j], b[j]) for W, b in zip(Ws, bs)]

    def select(self, idx: Sequence[int]) -> StackedMLP:
        """A new stack of the networks ``idx`` (copies)."""
        out = StackedMLP(self.sizes, len(idx), self.activation.name, self.dropout, self.device)
        ix = torch.as_tensor(list(idx), dtype=torch.long, device=self.device)
        with torch.no_grad():
            for dst, src in zip([*out.W, *out.b], [*self.W, *self.b]):
                dst.copy_(src.index_select(0, ix))
        return out


@dataclass(frozen=True)
class TrainSettings:
    """How to train: AdamW for ``steps`` optimiser steps, full batch when ``batch_size`` is None
    or >= n, a cosine learning rate from ``lr`` to 0 after a linear warm-up of ``warmup_steps``."""

    steps: int
    lr: float = 3e-3
    weight_decay: float = 1e-4
    batch_size: int | None = None
    schedule: str = "cosine"            # "cosine" | "constant"
    warmup_steps: int = 0
    patience: int | None = None         # early stopping (epochs) on the validation rows; None: off
    seed: int = 0


@dataclass
class TrainResult:
    steps_run: int
    epochs_run: int
    best_epoch: int                     # epoch whose weights were kept (last one without validation)
    best_val_loss: float                # mean over networks; NaN without validation rows
    final_train_loss: float             # mean over networks of the last epoch's weighted MSE (with dropout)
    stopped_early: bool
    seconds: float


def _lr_at(s: TrainSettings, step: int) -> float:
    """Learning rate of optimiser step ``step`` (0-based)."""
    if s.warmup_steps and step < s.warmup_steps:
        return s.lr * (step + 1) / s.warmup_steps
    if s.schedule == "constant":
        return s.lr
    span = max(1, s.steps - s.warmup_steps)
    return s.lr * 0.5 * (1.0 + math.cos(math.pi * (step - s.warmup_steps) / span))


def _copy_members(net: StackedMLP, dst: torch.Tensor, src: torch.Tensor, which: torch.Tensor) -> None:
    """dst[networks ``which``] = src[...] for flat parameter tensors of ``net``'s layout."""
    with torch.no_grad():
        Wd, bd = net.views(dst)
        Ws, bs = net.views(src)
        for a, b in zip([*Wd, *bd], [*Ws, *bs]):
            a[which] = b[which]


def _adam_kwargs() -> dict:
    """fused Adam where this torch build has it on CPU (torch >= 2.4), else foreach."""
    try:
        torch.optim.Adam([torch.zeros(1, requires_grad=True)], fused=True)
        return {"fused": True}
    except (RuntimeError, TypeError, ValueError):  # pragma: no cover - older torch
        return {"foreach": True}


_ADAM_KW = _adam_kwargs()


def _weighted_mse(out: torch.Tensor, Y: torch.Tensor, w: torch.Tensor, wsum: torch.Tensor,
                  output_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Per-network weighted MSE (M,): sum_i w_mi * mean_k (out - y)^2 / sum_i w_mi, the mean
    over outputs weighted by ``output_weights`` (M, k) when given (see `train_stacked`)."""
    return (output_mean((out - Y).pow(2), output_weights) * w).sum(dim=1) / wsum


def output_mean(per_output: torch.Tensor, output_weights: torch.Tensor | None) -> torch.Tensor:
    """(M, m, k) -> (M, m): the mean over outputs, or their ``output_weights`` (M, k)-weighted mean."""
    if output_weights is None:
        return per_output.mean(dim=2)
    return (per_output * output_weights.unsqueeze(1)).sum(dim=2) / output_weights.sum(dim=1, keepdim=True)


def gather_rows(X: torch.Tensor, Y: torch.Tensor, M: int, row_weights: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(X, Y, w) for ``M`` networks that each see their own weighted rows.

    Without ``row_weights``: X (n, d), Y (n, k) shared, w all ones (M, n).  With ``row_weights``
    (M, n): each network's rows gathered into (M, m, d) and (M, m, k) tensors (m = the most rows
    any network has; shorter ones are padded with weight-0 rows), so no compute is spent on rows
    a network must not see (a held-out fold)."""
    dev = X.device
    if row_weights is None:
        return X, Y, torch.ones(M, X.shape[0], device=dev)
    rw = row_weights.to(dev, torch.float32)
    keep = rw > 0
    m = int(keep.sum(dim=1).max())
    idx = torch.zeros(M, m, dtype=torch.long, device=dev)
    w = torch.zeros(M, m, device=dev)
    for j in range(M):
        r = torch.nonzero(keep[j]).flatten()
        idx[j, :r.numel()] = r
        w[j, :r.numel()] = rw[j, r]
    return X[idx], Y[idx], w


def train_stacked(net: StackedMLP, X: torch.Tensor, Y: torch.Tensor, settings: TrainSettings,
                  row_weights: torch.Tensor | None = None, val_weights: torch.Tensor | None = None,
                  progress: ProgressFn | None = None, output_weights: torch.Tensor | None = None) -> TrainResult:
    """Train every network of ``net`` in place on its weighted rows of (X, Y).

    ``row_weights`` (M, n), default all ones.  ``val_weights`` (M, n): rows whose dropout-off
    loss is tracked once per epoch; with ``settings.patience`` training stops when no network
    improved for that many epochs, and every network gets back its best weights.
    ``output_weights`` (M, k), default all ones: how much each output counts in a network's
    loss (a one-hot row: the network learns that output alone — per-output networks).
    """
    t0 = time.perf_counter()
    M = net.n_stack
    dev = net.device
    X_all, Y_all = X, Y
    X, Y, w = gather_rows(X, Y, M, row_weights)
    n = w.shape[1]
    # mini-batches are shared by all networks (the same positions of each network's rows)
    bs = n if settings.batch_size is None else max(1, min(int(settings.batch_size), n))
    steps_per_epoch = math.ceil(n / bs)
    gen = torch.Generator(device="cpu").manual_seed(int(settings.seed))
    theta = net.theta.detach().requires_grad_(True)
    # Adam on the one flat tensor + decoupled weight decay on the weights only (= AdamW with a
    # bias-free decay group, without a second tensor).  fused=True: one kernel per step on CPU.
    opt = torch.optim.Adam([theta], lr=settings.lr, betas=(0.9, 0.999), eps=1e-8, **_ADAM_KW)
    decay = net.decay_mask
    ow = None if output_weights is None else output_weights.to(dev, torch.float32)
    has_val = val_weights is not None and bool((val_weights > 0).any())
    if has_val:
        vw = val_weights.to(dev, torch.float32)
        vsum = vw.sum(dim=1).clamp_min(1e-12)
        best = theta.detach().clone()
        bsl = net._slices()
        best_val = torch.full((M,), math.inf, device=dev)
        best_epoch = torch.zeros(M, dtype=torch.long)
    n_epochs = math.ceil(settings.steps / steps_per_epoch)
    report_every = max(1, math.ceil(n_epochs / 200))
    rates = net.dropout
    step, epoch, bad, stopped = 0, 0, 0, False
    last_train = float("nan")
    for epoch in range(1, n_epochs + 1):
        order = torch.randperm(n, generator=gen).to(dev) if bs < n else None
        loss_acc = torch.zeros((), device=dev)
        for s in range(0, n, bs):
            if step >= settings.steps:
                break
            rows = order[s:s + bs] if order is not None else None
            xb = X if rows is None else X.index_select(X.dim() - 2, rows)
            yb = Y if rows is None else Y.index_select(Y.dim() - 2, rows)
            wb = w if rows is None else w.index_select(1, rows)
            c = xb.shape[-2]
            masks = [mc.dropout_mask((M, c, width), p, gen, dev) if p > 0 else None
                     for width, p in zip(net.widths, rates)]
            wsum = wb.sum(dim=1).clamp_min(1e-12)
            loss_m = _weighted_mse(net.forward(xb, masks, flat=theta), yb, wb, wsum, ow)
            lr = _lr_at(settings, step)
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad(set_to_none=True)
            loss_m.sum().backward()
            if settings.weight_decay:
                with torch.no_grad():
                    theta.addcmul_(decay, theta, value=-lr * settings.weight_decay)
            opt.step()
            loss_acc = loss_acc + loss_m.detach().mean()
            step += 1
        val = float("nan")
        if has_val:
            with torch.no_grad():
                vl = _weighted_mse(net.forward(X_all), Y_all, vw, vsum, ow)
            improved = vl < best_val
            if bool(improved.any()):
                bad = 0
                best_val = torch.where(improved, vl, best_val)
                best_epoch[improved.cpu()] = epoch
                _copy_members(net, best, theta.detach(), improved)
            else:
                bad += 1
            val = float(vl.mean())
        if progress is not None and (epoch % report_every == 0 or epoch == n_epochs):
            last_train = float(loss_acc) / steps_per_epoch
            progress(epoch, n_epochs, last_train, val)
        if has_val and settings.patience is not None and bad >= settings.patience:
            stopped = True
            break
    last_train = float(loss_acc) / max(1, steps_per_epoch)
    with torch.no_grad():
        net.theta.copy_(best if has_val else theta.detach())
    if has_val:
        be, bv = int(best_epoch[0]), float(best_val.mean())
    else:
        be, bv = epoch, float("nan")
    return TrainResult(steps_run=step, epochs_run=epoch, best_epoch=be, best_val_loss=bv,
                       final_train_loss=last_train, stopped_early=stopped,
                       seconds=time.perf_counter() - t0)
