"""Elementwise pieces of the fused MLP objective's twin: activations with their first and second
derivatives, and the score's first derivative and Hessian-vector product (docs/spec.md §1, §3).

The conventions at the kinks are PyTorch's own, so the twin reproduces autograd's double backprop
exactly and not just almost everywhere:

- ReLU: sigma'(a) = 1[a > 0] (``threshold_backward`` on the output);
- LeakyReLU(slope): sigma'(a) = 1 if a > 0 else slope (``leaky_relu_backward``);
- Softplus(beta, t): linear where beta a > t, so sigma' = 1 there and sigmoid(beta a) otherwise;
  sigma'' = beta s (1 - s) only where beta a < t (``softplus_double_backward``'s mask);
- Tanh: sigma' = 1 - tanh^2, sigma'' = -2 tanh (1 - tanh^2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LINEAR, RELU, LEAKY_RELU, SOFTPLUS, TANH = 0, 1, 2, 3, 4

Derivs = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


def activation(u: torch.Tensor, kind: int, p0: float, p1: float) -> Derivs:
    """(sigma(u), sigma'(u), sigma''(u) or None where it is identically zero)."""
    if kind == RELU:
        return torch.relu(u), (u > 0).to(u.dtype), None
    if kind == LEAKY_RELU:
        # the slope as a tensor of u's dtype: a Python scalar in torch.where would be rounded to float32
        return F.leaky_relu(u, p0), torch.where(u > 0, torch.ones_like(u), torch.full_like(u, p0)), None
    if kind == SOFTPLUS:
        beta, threshold = p0, p1
        bu = u * beta
        s = torch.sigmoid(bu)
        d1 = torch.where(bu > threshold, torch.ones_like(u), s)
        d2 = torch.where(bu < threshold, beta * s * (1 - s), torch.zeros_like(u))
        return F.softplus(u, beta, threshold), d1, d2
    if kind == TANH:
        t = torch.tanh(u)
        d1 = 1 - t * t
        return t, d1, -2 * t * d1
    raise ValueError(f"layers holds an unknown layer code {kind}")


def _one_hot(y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(z).scatter_(1, y.view(-1, 1), 1.0)


def score_gradient(z: torch.Tensor, y: torch.Tensor, score: str) -> torch.Tensor:
    """ds/dz (B, C) of the per-sample score (``r2et_fast.explain._score``): C >= 2 logit e_y,
    prob p_y (e_y - p), loss p - e_y; C = 1 logit 1, prob s(1 - s), loss s - y (s = sigmoid z)."""
    if z.shape[1] == 1:
        if score == "logit":
            return torch.ones_like(z)
        s = torch.sigmoid(z)
        return s * (1 - s) if score == "prob" else s - y.to(z.dtype).view(-1, 1)
    e = _one_hot(y, z)
    if score == "logit":
        return e
    p = torch.softmax(z, dim=1)
    if score == "prob":
        return p.gather(1, y.view(-1, 1)) * (e - p)
    return p - e


def score_hvp(z: torch.Tensor, y: torch.Tensor, score: str, w: torch.Tensor) -> torch.Tensor | None:
    """(d^2 s / dz^2) w per row, or None where the score is linear in z (logit).

    C >= 2, with p = softmax z, pw = p . w: loss diag(p) - p p^T gives p (w - pw); prob p_y
    gives p_y (w_y - pw)(e_y - p) - p_y p (w - pw). C = 1 (s = sigmoid z): prob s(1 - s)(1 - 2s) w,
    loss s(1 - s) w.
    """
    if score == "logit":
        return None
    if z.shape[1] == 1:
        s = torch.sigmoid(z)
        d = s * (1 - s)
        return d * (1 - 2 * s) * w if score == "prob" else d * w
    p = torch.softmax(z, dim=1)
    pw = (p * w).sum(dim=1, keepdim=True)
    centred = p * (w - pw)
    if score == "loss":
        return centred
    py, wy = p.gather(1, y.view(-1, 1)), w.gather(1, y.view(-1, 1))
    return py * (wy - pw) * (_one_hot(y, z) - p) - py * centred


def task_loss(z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean task loss, its gradient w.r.t. z): cross-entropy, or BCE-with-logits when C = 1."""
    b = z.shape[0]
    if z.shape[1] == 1:
        t = y.to(z.dtype).view(-1, 1)
        return F.binary_cross_entropy_with_logits(z[:, 0], t[:, 0]), (torch.sigmoid(z) - t) / b
    return F.cross_entropy(z, y), (torch.softmax(z, dim=1) - _one_hot(y, z)) / b
