"""Monte-Carlo dropout sampling of an MLP, chunked over points, float32.

Why this module exists: the NNGP acquisition needs the *joint* distribution of the network
outputs over all points, and the empirical covariance over samples is only a covariance
between points if sample ``t`` is the same thinned network for every point.  So by default
(``shared_masks=True``) one dropout mask per layer and per sample is drawn once, of shape
``(T, width)``, and reused for every point: there is no per-element random number generation
on the pool at all, and a duplicated input row gets identical samples.

Speed: the first hidden layer does not depend on any mask, so it is computed once per chunk
and shared by all ``T`` samples.  The mask that follows it is folded into the next layer's
weights (``W_t = W * m_t``), which turns the second layer of all ``T`` thinned networks into a
single GEMM ``(c, h1) @ (h1, T*h2)``.  Later layers multiply the activations by the masks in
place and use one plain GEMM.  The cost is therefore at most that of one dropout-off forward
pass on ``c*T`` rows.

``shared_masks=False`` is the "pointwise" ablation used by public implementations: every
point and every sample gets its own masks.  Those masks are drawn per fixed block of
``POINTWISE_BLOCK`` points from a generator seeded by ``(seed, block)``, so that the result does
not depend on the chunk size either.

Weights are given as a list of ``(W, b)`` float32 tensors with ``W`` of shape
``(out_features, in_features)``; dropout follows every hidden activation, never the input or
the output.  Everything here works in the model's standardised units.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

#: Memory budget (bytes) for the largest float32 activation tensor of one chunk.
DEFAULT_MEMORY_BUDGET = 64 * 1024 * 1024
#: Points per independently seeded block of masks in pointwise mode.
POINTWISE_BLOCK = 64

Weights = Sequence[tuple[torch.Tensor, torch.Tensor]]


def activation_fn(name: str, inplace: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation by name; ``inplace`` allows overwriting the argument (saves memory)."""
    if name == "relu":
        return torch.relu_ if inplace else torch.relu
    if name == "tanh":
        return torch.tanh_ if inplace else torch.tanh
    if name == "gelu":
        return torch.nn.functional.gelu
    if name == "silu":
        return lambda z: torch.nn.functional.silu(z, inplace=inplace)
    if name == "elu":
        return lambda z: torch.nn.functional.elu(z, inplace=inplace)
    raise ValueError(f"activation must be one of relu, tanh, gelu, silu, elu; got {name!r}")


def _check_common(weights: Weights, dropout: float, T: int) -> None:
    if len(weights) < 2:
        raise ValueError("weights: need at least one hidden layer (two (W, b) pairs)")
    if not (0.0 <= dropout < 1.0):
        raise ValueError(f"dropout must be in [0, 1); got {dropout}")
    if not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be a positive integer; got {T!r}")


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


def draw_shared_masks(widths: Sequence[int], T: int, dropout: float, seed: int,
                      device: torch.device | str = "cpu") -> list[torch.Tensor | None]:
    """One inverted-dropout mask ``(T, width)`` per hidden layer (see `dropout_mask`).

    Drawn on the CPU from a generator seeded by ``seed`` so that CPU and CUDA runs use the
    same masks.  Returns ``None`` entries when ``dropout == 0``.
    """
    if dropout == 0.0:
        return [None for _ in widths]
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return [dropout_mask((T, w), dropout, gen, device) for w in widths]


def _block_seed(seed: int, block: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(block)]).generate_state(1, dtype=np.uint64)[0]
               & 0x7FFF_FFFF_FFFF_FFFF)


def _pointwise_masks(start: int, stop: int, T: int, widths: Sequence[int], dropout: float,
                     seed: int, device: torch.device) -> list[torch.Tensor]:
    """Masks ``(stop-start, T, width)`` per hidden layer, drawn per block of points."""
    parts: list[list[torch.Tensor]] = [[] for _ in widths]
    b0, b1 = start // POINTWISE_BLOCK, (stop - 1) // POINTWISE_BLOCK
    for block in range(b0, b1 + 1):
        gen = torch.Generator(device="cpu").manual_seed(_block_seed(seed, block))
        lo = block * POINTWISE_BLOCK
        s, e = max(start, lo) - lo, min(stop, lo + POINTWISE_BLOCK) - lo
        for i, w in enumerate(widths):
            parts[i].append(dropout_mask((POINTWISE_BLOCK, T, w), dropout, gen)[s:e])
    return [(torch.cat(p) if len(p) > 1 else p[0]).to(device) for p in parts]


@torch.no_grad()
def mc_forward(weights: Weights, activation: str, dropout: float, X: torch.Tensor, T: int,
               seed: int, shared_masks: bool = True, chunk_size: int | None = None,
               memory_budget: int = DEFAULT_MEMORY_BUDGET, out: np.ndarray | None = None,
               out_offset: int = 0) -> np.ndarray:
    """MC-dropout samples of the network on standardised inputs ``X`` (n, d).

    Returns (or fills ``out[:, out_offset:out_offset+T]`` of) an array ``(n, T, k)`` in the
    network's own (standardised) output units.  ``out`` may be float32 or float64.
    """
    _check_common(weights, dropout, T)
    if X.ndim != 2 or X.shape[1] != weights[0][0].shape[1]:
        raise ValueError(f"X must have shape (n, {weights[0][0].shape[1]}); got {tuple(X.shape)}")
    if chunk_size is not None and (not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer or None; got {chunk_size!r}")
    n = X.shape[0]
    k = weights[-1][0].shape[0]
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
    if shared_masks:
        masks = draw_shared_masks(widths, T, dropout, seed, device)
        # Fold the first mask into the second layer: W2cat[:, t*h2:(t+1)*h2] = (W2 * m1_t)^T.
        # Only when the T folded weight matrices fit the memory budget (huge T x width^2 would not).
        W2, b2 = weights[1]
        fold = 4 * T * W2.numel() <= memory_budget
        if fold:
            if masks[0] is not None:
                W2cat = (W2.t().unsqueeze(0) * masks[0].unsqueeze(2)).permute(1, 0, 2).reshape(W2.shape[1], -1)
            else:
                W2cat = W2.t().repeat(1, T)
            b2cat = b2.repeat(T)
    W1, b1 = weights[0]
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        xc = X[start:stop]
        c = stop - start
        h = act(torch.addmm(b1, xc, W1.t()))                      # (c, h1), shared by all t
        if shared_masks:
            if fold:
                z = torch.addmm(b2cat, h, W2cat).view(c, T, -1)   # (c, T, h2)
                h = act(z) if len(weights) > 2 else z
                first = 2
            else:
                h = h.unsqueeze(1).expand(c, T, h.shape[1]).contiguous()
                first = 1
            for li in range(first, len(weights)):
                W, b = weights[li]
                m = masks[li - 1]
                if m is not None:
                    h.mul_(m.unsqueeze(0))
                z = torch.addmm(b, h.reshape(c * T, -1), W.t())
                h = (act(z) if li < len(weights) - 1 else z).view(c, T, -1)
        else:
            pm = _pointwise_masks(start, stop, T, widths, dropout, seed, device) if dropout > 0 else None
            h = h.unsqueeze(1).expand(c, T, h.shape[1])
            h = h * pm[0] if pm is not None else h.contiguous()
            for li in range(1, len(weights)):
                W, b = weights[li]
                z = torch.addmm(b, h.reshape(c * T, -1), W.t()).view(c, T, -1)
                if li < len(weights) - 1:
                    h = act(z)
                    if pm is not None:
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
