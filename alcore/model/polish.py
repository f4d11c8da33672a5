"""Polish: L-BFGS on the exact expected-dropout loss, after AdamW.

Why: AdamW with a cosine schedule stops short of the optimum of its own loss; on a smooth
simulator output that last stretch is most of the error.  On heat2d (1,100 labels, 9 inputs) a
network that AdamW left at nRMSE 0.0285 / 0.0255 (two seeds, 2,000 other pool points) reached
0.0206 / 0.0162 after 1,000 L-BFGS iterations on the same loss (``python
benchmarks/model_settings.py heat2d 1100 g06d3,g06d3pol1k 0,1``; docs/results.md, "Polishing").
On burgers1d's steep fronts it does not help (550 labels: 0.1135 / 0.1017 -> 0.1112 / 0.1069),
so it is a model-selection candidate, not a default for all.

The loss is the one AdamW minimises stochastically, in closed form.  With dropout (rate p,
inverted scaling) only on the last hidden layer h(x) in R^H, output j of a network is

    f_j(x; m) = sum_i W_ji h_i(x) m_i / (1 - p) + b_j,      m_i ~ Bernoulli(1 - p),

and its expected squared error over the masks is

    E_m[(f_j(x; m) - y_j)^2] = (W_j . h(x) + b_j - y_j)^2 + p / (1 - p) * sum_i W_ji^2 h_i(x)^2,

so the training objective (mean over rows and outputs) is the dropout-off MSE plus a
data-dependent ridge on the output weights (Wager et al., 2013, "Dropout training as adaptive
regularization").  Being deterministic, it can be minimised by a quasi-Newton method with a line
search.  The polished network is still the same MC-dropout model: its samples, and the NNGP
kernel the acquisition uses, come from the same masks on the same layer.

Dropout on earlier layers has no such closed form; `polish_stacked` refuses such networks
rather than silently minimising a different loss.  Weight decay is not part of the polished
loss (AdamW's decay is decoupled, not a term of the objective).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from alcore.model.network import StackedMLP, gather_rows, output_mean

__all__ = ["PolishResult", "expected_dropout_loss", "polish_stacked"]


@dataclass
class PolishResult:
    iterations: int                     # L-BFGS iterations run (<= the steps asked for)
    loss_before: float                  # sum over networks of the expected-dropout loss
    loss_after: float
    seconds: float


def expected_dropout_loss(net: StackedMLP, flat: torch.Tensor, X: torch.Tensor, Y: torch.Tensor,
                          w: torch.Tensor, output_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Per-network expected loss over last-layer dropout masks (M,), for parameters ``flat``.

    X (M, m, d) or (m, d); Y (M, m, k) or (m, k); w (M, m) row weights (0: not this network's
    row); ``output_weights`` (M, k) as in :func:`alcore.model.network.train_stacked`.
    Per network: sum_i w_i * mean_j E_m[(f_j(x_i; m) - y_ij)^2] / sum_i w_i (the mean over
    outputs j weighted by ``output_weights``)."""
    Ws, bs = net.views(flat)
    h = net.last_hidden(X, None, flat)                                          # (M, m, H)
    out = torch.baddbmm(bs[-1].unsqueeze(1), h, Ws[-1].transpose(1, 2))         # (M, m, k)
    p = net.dropout[-1]
    per_row = output_mean((out - Y).pow(2), output_weights)                     # (M, m)
    if p > 0:
        ridge = torch.matmul(h.pow(2), Ws[-1].pow(2).transpose(1, 2))          # (M, m, k)
        per_row = per_row + (p / (1.0 - p)) * output_mean(ridge, output_weights)
    return (per_row * w).sum(dim=1) / w.sum(dim=1).clamp_min(1e-12)


def _polish_one(net: StackedMLP, X: torch.Tensor, Y: torch.Tensor, w: torch.Tensor, steps: int,
                ow: torch.Tensor | None) -> tuple[int, float, float]:
    """L-BFGS on a one-network stack in place; (iterations, loss before, loss after)."""
    start = net.theta.detach().clone()
    theta = start.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=int(steps), max_eval=int(steps * 5 // 4) + 1,
                            history_size=20, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = expected_dropout_loss(net, theta, X, Y, w, ow).sum()
        loss.backward()
        return loss

    with torch.no_grad():
        before = float(expected_dropout_loss(net, start, X, Y, w, ow).sum())
    opt.step(closure)
    with torch.no_grad():
        after = float(expected_dropout_loss(net, theta.detach(), X, Y, w, ow).sum())
        ok = bool(torch.isfinite(theta).all()) and after <= before        # NaN compares False
        net.theta.copy_(theta.detach() if ok else start)
    return int(opt.state[theta].get("n_iter", 0)), before, (after if ok else before)


def polish_stacked(net: StackedMLP, X: torch.Tensor, Y: torch.Tensor, steps: int,
                   row_weights: torch.Tensor | None = None,
                   output_weights: torch.Tensor | None = None) -> PolishResult:
    """Minimise `expected_dropout_loss` of every network of ``net`` in place by L-BFGS.

    ``steps``: the most L-BFGS iterations per network (strong-Wolfe line search; history 20:
    50 cost 40% more time per iteration at 800 rows for a slightly lower loss);
    ``row_weights`` (M, n) and ``output_weights`` (M, k) as in
    :func:`alcore.model.network.train_stacked`.  Each network has
    its own optimiser: one L-BFGS over the sum would share line-search steps between the folds
    of a cross-validation, so a fold's weights would depend on the labels it holds out.  A
    polish that would raise a network's loss (or make it non-finite) is not kept for it.
    Returns the largest iteration count and the losses summed over networks."""
    if steps <= 0:
        return PolishResult(0, float("nan"), float("nan"), 0.0)
    if any(p > 0 for p in net.dropout[:-1]):
        raise ValueError("polishing needs dropout on the last hidden layer only (dropout_layers='last'); "
                         f"this network has rates {list(net.dropout)}")
    t0 = time.perf_counter()
    Xg, Yg, w = gather_rows(X, Y, net.n_stack, row_weights)
    iterations, before, after = 0, 0.0, 0.0
    for j in range(net.n_stack):
        one = net.select([j])
        Xj, Yj = (Xg[j], Yg[j]) if Xg.dim() == 3 else (Xg, Yg)
        it, b, a = _polish_one(one, Xj, Yj, w[j:j + 1], steps,
                               None if output_weights is None else output_weights[j:j + 1].to(w))
        iterations, before, after = max(iterations, it), before + b, after + a
        with torch.no_grad():
            for dst, src in zip([*net.W, *net.b], [*one.W, *one.b]):
                dst[j].copy_(src[0])
    return PolishResult(iterations=iterations, loss_before=before, loss_after=after,
                        seconds=time.perf_counter() - t0)
