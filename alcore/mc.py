"""Monte-Carlo dropout sampling of an MLP, chunked over points, float32.

Why this module exists: the NNGP acquisition needs the *joint* distribution of the network
outputs over all points, and the empirical covariance over samples is only a covariance
between points if sample ``t`` is the same thinned network for every point.  So by default
(``shared_masks=True``) one dropout mask per layer and per sample is drawn once, of shape
``(T, width)``, and reused for every point: there is no per-element random number generation
on the pool at all, and a duplicated input row gets identical samples.

Speed: the layers before the first one with dropout do not depend on any mask, so they are
computed once per chunk and shared by all ``T`` samples.  The first mask is folded into the
next layer's weights (``W_t = W * m_t``), which turns that layer of all ``T`` thinned networks
into a single GEMM ``(c, h) @ (h, T*h')``.  Later layers multiply the activations by the masks
in place and use one plain GEMM.  The cost is therefore at most that of one dropout-off forward
pass on ``c*T`` rows — and with dropout only after the last hidden layer (the model's default)
about one dropout-off pass on ``c`` rows plus a ``(c, h) @ (h, T*k)`` product.

Dropout rates are per hidden layer (one number = the same rate everywhere); a layer of rate 0
draws no mask.

``shared_masks=False`` is the "pointwise" ablation used by public implementations: every
point and every sample gets its own masks.  Those masks are drawn per fixed block of
``POINTWISE_BLOCK`` points from a generator seeded by ``(seed, block)``, so that the result does
not depend on the chunk size either.

Weights are given as a list of ``(W, b)`` float32 tensors with ``W`` of shape
``(out_features, in_features)``; dropout follows hidden activations (those of rate > 0), never
the input or the output.  Everything here works in the model's standardised units.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from alcore._util import seed_int
from alcore.model.activations import get_activation

#: Memory budget (bytes) for the largest float32 activation tensor of one chunk.
DEFAULT_MEMORY_BUDGET = 64 * 1024 * 1024
#: Points per independently seeded block of masks in pointwise mode.
POINTWISE_BLOCK = 64

Weights = Sequence[tuple[torch.Tensor, torch.Tensor]]


def activation_fn(name: str, inplace: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation by name (from the one table, :mod:`alcore.model.activations`);
    ``inplace`` allows overwriting the argument (saves memory)."""
    a = get_activation(name)
    return a.fn_inplace if inplace else a.fn


def layer_rates(dropout: float | Sequence[float], n_hidden: int) -> tuple[float, ...]:
    """Dropout rate per hidden layer: one number for every layer, or one per layer."""
    if isinstance(dropout, (int, float, np.floating, np.integer)):
        rates = (float(dropout),) * n_hidden
    else:
        rates = tuple(float(p) for p in dropout)
        if len(rates) != n_hidden:
            raise ValueError(f"dropout: need one rate per hidden layer ({n_hidden}); got {list(rates)}")
    for p in rates:
        if not (0.0 <= p < 1.0):
            raise ValueError(f"dropout must be in [0, 1); got {p}")
    return rates


def _check_common(weights: Weights, dropout: float | Sequence[float], T: int) -> tuple[float, ...]:
    if len(weights) < 2:
        raise ValueError("weights: need at least one hidden layer (two (W, b) pairs)")
    rates = layer_rates(dropout, len(weights) - 1)
    if not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be a positive integer; got {T!r}")
    return rates


def auto_chunk_size(T: int, widths: Sequence[int], budget_bytes: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Points per chunk so that one ``(chunk, T, max(width))`` float32 tensor fits the budget."""
    per_point = 4 * T * max(widths)
    return max(1, int(budget_bytes // per_point))


def dropout_mask(shape: Sequence[int], dropout: float, gen: torch.Generator,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """Inverted-dropout mask of ``shape``: 0 with probability ``dropout``, else ``1/(1-dropout)``.

    Why not ``torch.rand(shape) >= p``: drawing float uniforms is the most expensive part of
    both training and pointwise sampling on the CPU.  One full-range 64-bit integer gives four
    independent 16-bit uniforms, which is about 5x cheaper.  The rate is quantised to 1/65536
    (p=0.1 becomes 0.100006) and the scale uses the quantised rate, so E[mask] = 1 exactly.
    """
    n = int(np.prod(shape))
    thr = int(round(dropout * 65536))
    r = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2 ** 63), None, generator=gen)
    keep = r.view(torch.int16).view(-1)[:n] >= (thr - 32768)
    mask = keep.view(*shape).to(torch.float32).mul_(65536.0 / (65536 - thr))
    return mask.to(device)


def draw_shared_masks(widths: Sequence[int], T: int, dropout: float | Sequence[float], seed: int,
                      device: torch.device | str = "cpu") -> list[torch.Tensor | None]:
    """One inverted-dropout mask ``(T, width)`` per hidden layer (see `dropout_mask`).

    Drawn on the CPU from a generator seeded by ``seed`` so that CPU and CUDA runs use the
    same masks.  ``dropout``: one rate for every layer or one per layer; layers of rate 0 get
    ``None`` (and draw nothing).
    """
    rates = layer_rates(dropout, len(widths))
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return [dropout_mask((T, w), p, gen, device) if p > 0 else None for w, p in zip(widths, rates)]


def _pointwise_masks(start: int, stop: int, T: int, widths: Sequence[int], rates: Sequence[float],
                     seed: int, device: torch.device) -> list[torch.Tensor | None]:
    """Masks ``(stop-start, T, width)`` per hidden layer (None where the rate is 0), drawn per block of points."""
    parts: list[list[torch.Tensor]] = [[] for _ in widths]
    b0, b1 = start // POINTWISE_BLOCK, (stop - 1) // POINTWISE_BLOCK
    for block in range(b0, b1 + 1):
        gen = torch.Generator(device="cpu").manual_seed(seed_int(seed, block))
        lo = block * POINTWISE_BLOCK
        s, e = max(start, lo) - lo, min(stop, lo + POINTWISE_BLOCK) - lo
        for i, (w, p) in enumerate(zip(widths, rates)):
            if p > 0:
                parts[i].append(dropout_mask((POINTWISE_BLOCK, T, w), p, gen)[s:e])
    return [((torch.cat(q) if len(q) > 1 else q[0]).to(device) if q else None) for q in parts]


@torch.no_grad()
def mc_forward(weights: Weights, activation: str, dropout: float | Sequence[float], X: torch.Tensor, T: int,
               seed: int, shared_masks: bool = True, chunk_size: int | None = None,
               memory_budget: int = DEFAULT_MEMORY_BUDGET, out: np.ndarray | None = None,
               out_offset: int = 0) -> np.ndarray:
    """MC-dropout samples of the network on standardised inputs ``X`` (n, d).

    ``dropout``: one rate for every hidden layer, or one rate per hidden layer (0 = no dropout
    there).  Returns (or fills ``out[:, out_offset:out_offset+T]`` of) an array ``(n, T, k)`` in
    the network's own (standardised) output units.  ``out`` may be float32 or float64.

    With shared masks, every layer before the first one with dropout is deterministic and is
    computed once per chunk for all T samples; that layer's mask is folded into the next
    layer's weights (one GEMM for all T thinned networks).  With dropout only on the last
    hidden layer a sample costs one (width x k) column block: the whole pool's T samples are
    about one dropout-off forward pass.
    """
    rates = _check_common(weights, dropout, T)
    if X.ndim != 2 or X.shape[1] != weights[0][0].shape[1]:
        raise ValueError(f"X must have shape (n, {weights[0][0].shape[1]}); got {tuple(X.shape)}")
    if chunk_size is not None and (not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer or None; got {chunk_size!r}")
    n = X.shape[0]
    k = weights[-1][0].shape[0]
    L = len(weights)
    widths = [W.shape[0] for W, _ in weights[:-1]]
    if out is None:
        out = np.empty((n, T, k), dtype=np.float32)
        out_offset = 0
    elif out.shape[0] != n or out.shape[2] != k or out.shape[1] < out_offset + T:
        raise ValueError(f"out has shape {out.shape}, cannot hold (n={n}, T={T}, k={k}) at {out_offset}")
    if n == 0:
        return out
    chunk = int(chunk_size) if chunk_size is not None else auto_chunk_size(T, widths, memory_budget)
    if not shared_masks:
        chunk = int(math.ceil(chunk / POINTWISE_BLOCK) * POINTWISE_BLOCK)
    act = activation_fn(activation, inplace=True)
    device = X.device
    # f: the first hidden layer with dropout (L - 1 = none: every sample is the plain network)
    f = next((i for i, p in enumerate(rates) if p > 0), L - 1)
    if shared_masks:
        masks = draw_shared_masks(widths, T, rates, seed, device)
        if f < L - 1:
            # Fold mask f into layer f+1: Wcat[:, t*h:(t+1)*h] = (W_{f+1} * m_t)^T, when it fits.
            Wn, bn = weights[f + 1]
            fold = 4 * T * Wn.numel() <= memory_budget
            if fold:
                Wcat = (Wn.t().unsqueeze(0) * masks[f].unsqueeze(2)).permute(1, 0, 2).reshape(Wn.shape[1], -1)
                bcat = bn.repeat(T)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        c = stop - start
        h = X[start:stop]
        for li in range(min(f + 1, L - 1)):                         # deterministic prefix, shared by all t
            h = act(torch.addmm(weights[li][1], h, weights[li][0].t()))
        if f == L - 1:                                               # no dropout anywhere
            z = torch.addmm(weights[-1][1], h, weights[-1][0].t())
            out[start:stop, out_offset:out_offset + T, :] = z.unsqueeze(1).expand(c, T, k).cpu().numpy()
            continue
        if shared_masks:
            if fold:
                z = torch.addmm(bcat, h, Wcat).view(c, T, -1)        # layer f+1 of all T networks
                h = act(z) if f + 1 < L - 1 else z
                first = f + 2
            else:
                h = h.unsqueeze(1).expand(c, T, h.shape[1]).contiguous()
                first = f + 1
            for li in range(first, L):
                W, b = weights[li]
                m = masks[li - 1]
                if m is not None:
                    h.mul_(m.unsqueeze(0))
                z = torch.addmm(b, h.reshape(c * T, -1), W.t())
                h = (act(z) if li < L - 1 else z).view(c, T, -1)
        else:
            pm = _pointwise_masks(start, stop, T, widths, rates, seed, device)
            h = h.unsqueeze(1).expand(c, T, h.shape[1]) * pm[f]
            for li in range(f + 1, L):
                W, b = weights[li]
                z = torch.addmm(b, h.reshape(c * T, -1), W.t()).view(c, T, -1)
                if li < L - 1:
                    h = act(z)
                    if pm[li] is not None:
                        h.mul_(pm[li])
                else:
                    h = z
        out[start:stop, out_offset:out_offset + T, :] = h.cpu().numpy()
    return out


@torch.no_grad()
def plain_forward(weights: Weights, activation: str, X: torch.Tensor,
                  chunk_size: int | None = None) -> torch.Tensor:
    """Dropout-off forward pass (inverted dropout needs no rescaling at test time), chunked."""
    act = activation_fn(activation, inplace=True)
    n = X.shape[0]
    chunk = chunk_size or max(1, DEFAULT_MEMORY_BUDGET // (4 * max(W.shape[0] for W, _ in weights)))
    outs = []
    for start in range(0, n, chunk):
        h = X[start:start + chunk]
        for li, (W, b) in enumerate(weights):
            h = torch.addmm(b, h, W.t())
            if li < len(weights) - 1:
                h = act(h)
        outs.append(h)
    if not outs:
        return torch.empty((0, weights[-1][0].shape[0]), dtype=X.dtype, device=X.device)
    return torch.cat(outs)
