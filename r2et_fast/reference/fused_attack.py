"""Reference twin of the fused MLP attack loop (``ops.fused_attack.fused_mlp_attack``): the generic
loop of ``attacks._iterative`` written with the other twins (maps by the fused saliency twin, the
direction by its vector-Jacobian product), one tensor op at a time."""

from __future__ import annotations

import torch

from r2et_fast.reference import fused as _fused
from r2et_fast.reference.attacks import projected_step
from r2et_fast.reference.ranking import precision_at_k
from r2et_fast.reference.regularizers import topk_pair_gap_backward


def _predicted(z: torch.Tensor) -> torch.Tensor:
    return (z[:, 0] > 0).long() if z.shape[1] == 1 else z.argmax(dim=1)


def fused_mlp_attack(x0, x_start, target, pred0, clean, hi, lo, lower, upper, probe, weights, biases, layers,
                     layer_params, score, abs, objective, pairs, transform, k, eps, alpha, steps,  # noqa: A002
                     norm, step_norm, early_stop):
    net = (weights, biases, layers, layer_params)

    def at(x):  # logits and g = ds/dx at x, and the maps
        z, g, _ = _fused.fused_mlp_saliency(x, target, False, *net, score)
        return z, g, g.abs() if abs else g

    def direction(x, g, w):  # d <dm/dg * w, g(x)> / dx
        bar = torch.sign(g) * w if abs else w
        return _fused.fused_mlp_saliency_vjp(x, target, bar, *net, score)

    def objective_grad(m):
        if objective == "pair_gap":
            return topk_pair_gap_backward(m.new_ones(m.shape[0]), m, hi, lo, pairs, transform)
        if objective == "distance":
            return -2 * (m - clean)
        return torch.zeros_like(m).scatter_add_(1, hi, torch.ones_like(hi, dtype=m.dtype))

    batch = x0.shape[0]
    x = x_start.clone()
    precision = x0.new_empty((steps + 1, batch))
    active = torch.ones(batch, dtype=torch.bool, device=x0.device)
    steps_run = torch.zeros(batch, dtype=torch.int64, device=x0.device)
    vanished = torch.zeros(batch, dtype=torch.bool, device=x0.device)
    for t in range(steps):
        _, g, m = at(x)
        precision[t] = precision_at_k(clean, m, k)
        d = direction(x, g, objective_grad(m))
        if t == 0:  # probed unconditionally: no value read (meta and fake tensors pass through)
            vanished = (d.abs().amax(dim=1) == 0) & (direction(x, g, probe).abs().amax(dim=1) == 0)
        x_next = projected_step(x, d, x0, alpha, eps, step_norm, norm, lower, upper)
        if early_stop:
            active &= _predicted(at(x_next)[0]) == pred0
            x_next = torch.where(active[:, None], x_next, x)
        steps_run += active
        x = x_next
    z, _, m = at(x)
    precision[steps] = precision_at_k(clean, m, k)
    return x, precision, steps_run, m, _predicted(z) == pred0, vanished
