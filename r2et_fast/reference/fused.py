r"""Reference twin of ``r2et_fast::fused_mlp_objective``: the R2ET / Est-H objective of an MLP and
its gradient w.r.t. every weight and bias, by explicit passes (no autograd graph; docs/spec.md §3).

Network (layer i maps u_i to u_{i+1}, i = 0..M-1; u_0 = x (B, n), z = u_M (B, C)):
    linear:      u_{i+1} = u_i W_i^T + b_i
    elementwise: u_{i+1} = sigma_i(u_i),  d1_i = sigma_i'(u_i),  d2_i = sigma_i''(u_i)
Input gradient g = ds/dx, per row (explicit backward pass, each point its own d1):
    delta_M = s'(z);  delta_i = delta_{i+1} W_i (linear) | d1_i * delta_{i+1} (elementwise);  g = delta_0
Objective (x' = x + kappa v, v = sign(g(x)) / sqrt(n) fixed; ranking of |g(x)| fixed; P = pair_count):
    J = CE(z(x)) + w_h (1/B) sum_b ||g'_b - g_b|| / kappa - w_g (1/(B P)) sum_b G(|g_b|)
    w = lambda, or |lambda (CE + 1) / max(|term|, 1e-12)| (adaptive), constant (detached)
Seeds (q_b = d_b / (kappa ||d_b||), d = g' - g, q = 0 where d = 0; G' from topk_pair_gap_backward):
    gbar  = -w_g/(B P) sign(g) * G'(|g|) - (w_h / B) q        (the point x)
    gbar' = (w_h / B) q                                       (the point x')
    zbar  = dCE/dz at x (= (softmax z - e_y) / B; C = 1: (sigmoid z - y) / B), 0 at x'
Adjoint of the backward pass, i = 0..M-1, from deltabar_0 = gbar:
    linear:      Wbar_i += delta_{i+1}^T deltabar_i;          deltabar_{i+1} = deltabar_i W_i^T
    elementwise: ubar_i += d2_i * delta_{i+1} * deltabar_i;  deltabar_{i+1} = d1_i * deltabar_i
    then         zbar += s''(z) deltabar_M                    (score_hvp; 0 for the logit)
Adjoint of the forward pass, i = M-1..0, from ubar_M = zbar:
    linear:      Wbar_i += ubar_{i+1}^T u_i;  bbar_i += 1^T ubar_{i+1};  ubar_i += ubar_{i+1} W_i
    elementwise: ubar_i += d1_i * ubar_{i+1}
The gradient is the sum of both points' Wbar, bbar. dJ/dx = ubar_0 of the point x alone: the
autograd engine builds x' from x.detach(), and so does this twin. For piecewise-linear nets with
the logit score the point x' has no forward adjoint (d2 = 0, s'' = 0): it is skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from r2et_fast.reference._fused_math import LINEAR, activation, score_gradient, score_hvp, task_loss
from r2et_fast.reference.regularizers import (
    hessian_fd_norm,
    hessian_fd_norm_backward,
    pair_indices,
    topk_pair_gap,
    topk_pair_gap_backward,
)

Grads = dict[int, torch.Tensor]  # layer index -> gradient


@dataclass
class _Net:
    kinds: list[int]
    params: list[tuple[float, float]]
    weight: dict[int, torch.Tensor]  # layer index -> W (out, in)
    bias: dict[int, torch.Tensor]    # layer index -> b, for the Linear layers that have one


@dataclass
class _Pass:
    """One point's forward and backward pass: u_0..u_M, d1/d2 per layer, delta_0..delta_M."""

    us: list[torch.Tensor]
    d1: list[torch.Tensor | None]
    d2: list[torch.Tensor | None]
    deltas: list[torch.Tensor] = field(default_factory=list)


def _net(weights, biases, layers, layer_params) -> _Net:
    linear = [i for i, kind in enumerate(layers) if kind == LINEAR]
    params = [(float(layer_params[2 * i]), float(layer_params[2 * i + 1])) for i in range(len(layers))]
    return _Net(list(layers), params, dict(zip(linear, weights)),
                {i: b for i, b in zip(linear, biases) if b.numel() > 0})


def _passes(net: _Net, x: torch.Tensor, y: torch.Tensor, score: str) -> _Pass:
    point = _forward(net, x)
    _backward(net, point, y, score)
    return point


def _forward(net: _Net, x: torch.Tensor) -> _Pass:
    point = _Pass([x], [], [])
    u = x
    for i, kind in enumerate(net.kinds):
        if kind == LINEAR:
            # the kernel nn.Linear calls: the forward values (and so the activation pattern at
            # x + kappa v) come out as the model's own
            u = torch.nn.functional.linear(u, net.weight[i], net.bias.get(i))
            d1 = d2 = None
        else:
            u, d1, d2 = activation(u, kind, *net.params[i])
        point.us.append(u)
        point.d1.append(d1)
        point.d2.append(d2)
    return point


def _backward(net: _Net, point: _Pass, y: torch.Tensor, score: str) -> None:
    delta = score_gradient(point.us[-1], y, score)
    deltas = [delta]
    for i in reversed(range(len(net.kinds))):
        delta = delta @ net.weight[i] if net.kinds[i] == LINEAR else _d1(point, i) * delta
        deltas.append(delta)
    point.deltas = deltas[::-1]


def _d1(point: _Pass, i: int) -> torch.Tensor:
    d1 = point.d1[i]
    assert d1 is not None, "an elementwise layer always stores sigma'"
    return d1


def _add(grads: Grads, i: int, value: torch.Tensor) -> None:
    grads[i] = grads[i] + value if i in grads else value


def _adjoint(net: _Net, point: _Pass, y: torch.Tensor, score: str, gbar: torch.Tensor,
             zbar: torch.Tensor | None, gw: Grads, gb: Grads, want_input: bool) -> torch.Tensor | None:
    """Add one point's contribution to the weight and bias gradients; ubar_0 when ``want_input``."""
    m = len(net.kinds)
    extra: list[torch.Tensor | None] = [None] * m
    bar = gbar
    for i in range(m):  # adjoint of the backward pass
        if net.kinds[i] == LINEAR:
            _add(gw, i, point.deltas[i + 1].t() @ bar)
            bar = bar @ net.weight[i].t()
        else:
            d2 = point.d2[i]
            if d2 is not None:
                extra[i] = d2 * point.deltas[i + 1] * bar
            bar = _d1(point, i) * bar
    hvp = score_hvp(point.us[-1], y, score, bar)
    if hvp is not None:
        zbar = hvp if zbar is None else zbar + hvp
    first_linear = net.kinds.index(LINEAR)
    ubar = zbar
    for i in reversed(range(m)):  # adjoint of the forward pass
        if i < first_linear and not want_input:
            break  # nothing below has parameters
        if ubar is not None:
            if net.kinds[i] == LINEAR:
                _add(gw, i, ubar.t() @ point.us[i])
                if i in net.bias:
                    _add(gb, i, ubar.sum(dim=0))
                ubar = ubar @ net.weight[i] if (i > first_linear or want_input) else None
            else:
                ubar = _d1(point, i) * ubar
        e = extra[i]
        if e is not None:
            ubar = e if ubar is None else ubar + e
    return ubar if want_input else None


def _weight(lam: float, ce: torch.Tensor, term: torch.Tensor, adaptive: bool) -> torch.Tensor | float:
    # Method.weight in r2et_fast/train/_methods.py, term by term
    return (lam * (ce + 1) / term.abs().clamp_min(1e-12)).abs() if adaptive else lam


@torch.no_grad()
def fused_mlp_objective(x: torch.Tensor, y: torch.Tensor, weights: list[torch.Tensor],
                        biases: list[torch.Tensor], layers: list[int], layer_params: list[float],
                        score: str, k: int, pairs: str, transform: str, n_pairs: int,
                        pair_count: float, kappa: float, lambda_gap: float, lambda_hess: float,
                        with_gap: bool, with_hessian: bool, adaptive: bool, input_grad: bool):
    """(loss (), parts (3,) = [ce, hess, gap] (0 where not computed), d loss / d weights,
    d loss / d biases (empty where a layer has no bias), d loss / d x or an empty (0,) tensor).

    ``x`` is (B, n); ``biases[j]`` is empty (0,) for a Linear without bias; ``n_pairs`` is the
    resolved count of ``topk_pair_gap`` (0 for "all"); ``pair_count`` divides the batch mean of
    G_k (``regularizers.mean_pair_gap``'s convention).
    """
    net = _net(weights, biases, layers, layer_params)
    batch, n = x.shape
    at_x = _passes(net, x, y, score)
    g = at_x.deltas[0]
    ce, zbar = task_loss(at_x.us[-1], y)
    loss, zero = ce, ce.new_zeros(())
    hess = gap = zero
    gbar = torch.zeros_like(g)
    gbar_shift = None
    if with_hessian:
        shifted = x + kappa * (torch.sign(g) / math.sqrt(n))  # engine.hessian_direction
        at_shift = _passes(net, shifted, y, score)
        g_shift = at_shift.deltas[0]
        hess = hessian_fd_norm(g, g_shift, kappa).mean()
        w_h = _weight(lambda_hess, ce, hess, adaptive)
        loss = loss + w_h * hess
        d_g, gbar_shift = hessian_fd_norm_backward(g.new_full((batch,), 1.0 / batch) * w_h, g, g_shift,
                                                   kappa)
        gbar = gbar + d_g
    if with_gap:
        maps = g.abs()
        gap = topk_pair_gap(maps, k, pairs, transform, n_pairs).mean() / pair_count
        w_g = _weight(lambda_gap, ce, gap, adaptive)
        loss = loss - w_g * gap
        hi, lo = pair_indices(maps, k, pairs, n_pairs)
        coef = g.new_full((batch,), -1.0 / (batch * pair_count)) * w_g
        gbar = gbar + torch.sign(g) * topk_pair_gap_backward(coef, maps, hi, lo, pairs, transform)
    gw: Grads = {}
    gb: Grads = {}
    xbar = _adjoint(net, at_x, y, score, gbar, zbar, gw, gb, input_grad)
    if gbar_shift is not None:
        _adjoint(net, at_shift, y, score, gbar_shift, None, gw, gb, False)
    linear = [i for i, kind in enumerate(layers) if kind == LINEAR]
    grad_w = [gw.get(i, torch.zeros_like(net.weight[i])) for i in linear]
    grad_b = [gb.get(i, torch.zeros_like(net.bias[i])) if i in net.bias else b.new_empty((0,))
              for i, b in zip(linear, biases)]
    grad_x = xbar if xbar is not None else (torch.zeros_like(x) if input_grad else x.new_empty((0,)))
    return loss, torch.stack([ce, hess, gap]), grad_w, grad_b, grad_x


def fused_mlp_saliency(x: torch.Tensor, target: torch.Tensor, predict: bool, weights: list[torch.Tensor],
                       biases: list[torch.Tensor], layers: list[int], layer_params: list[float], score: str):
    """(logits (B, C), g = ds/dx (B, n), the explained class (B,)) of the MLP at x, by the passes
    above; ``predict``: explain the predicted class (argmax, or 1[z > 0] for C = 1) instead of
    ``target``."""
    net = _net(weights, biases, layers, layer_params)
    point = _forward(net, x)
    z = point.us[-1]
    if predict:
        target = (z[:, 0] > 0).long() if z.shape[1] == 1 else z.argmax(dim=1)
    _backward(net, point, target, score)
    return z, point.deltas[0], target


def fused_mlp_saliency_vjp(x: torch.Tensor, target: torch.Tensor, grad: torch.Tensor,
                           weights: list[torch.Tensor], biases: list[torch.Tensor], layers: list[int],
                           layer_params: list[float], score: str) -> torch.Tensor:
    """d <grad, g(x)> / dx (B, n) for the class ``target``: the adjoint of the passes seeded with
    ``grad`` at g and nothing at the logits (``_adjoint`` with ``want_input``)."""
    net = _net(weights, biases, layers, layer_params)
    point = _passes(net, x, target, score)
    xbar = _adjoint(net, point, target, score, grad, None, {}, {}, True)
    return xbar if xbar is not None else torch.zeros_like(x)
