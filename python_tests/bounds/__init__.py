"""Tests of r2et_fast.bounds; small float64 models and independent oracles shared by them."""

from __future__ import annotations

import torch
from torch import nn

from r2et_fast.explain import get_explainer


class SoftplusMLP(nn.Module):
    """d -> h -> h -> classes with softplus: smooth, so every attribution has a non-zero J."""

    def __init__(self, d: int = 8, hidden: int = 12, classes: int = 3, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.Softplus(), nn.Linear(hidden, hidden),
                                 nn.Softplus(), nn.Linear(hidden, classes))
        self.double().eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class Quadratic(nn.Module):
    """Logits (q(x), -q(x)) with q = x^T A x / 2 + b^T x, A symmetric indefinite.

    The signed saliency of class 0 is g = A x + b: linear, so H = A is constant and every
    first-order bound is exact (Theorem 1 attained at delta = +-eps v_max).
    """

    def __init__(self, d: int = 6, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        a = torch.randn(d, d, generator=g, dtype=torch.float64)
        self.register_buffer("a", (a + a.T) / 2)
        self.register_buffer("b", torch.randn(d, generator=g, dtype=torch.float64))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        q = 0.5 * ((x @ self.a) * x).sum(dim=1) + x @ self.b
        return torch.stack([q, -q], dim=1)


class TinyCNN(nn.Module):
    """Conv(1 -> 3, 3x3) -> softplus -> linear on (B, 1, 5, 5) images (n = 25)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(1, 3, 3)
        self.fc = nn.Linear(3 * 3 * 3, 4)
        self.double().eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(nn.functional.softplus(self.conv(x)).flatten(1))


def oracle_jacobian(model, x, attr_method, target, **kwargs) -> torch.Tensor:
    """J = dg/dx per sample (B, m, n) by torch.autograd.functional.jacobian, one sample at a time."""
    explainer = get_explainer(attr_method, model, **{"abs": False, **kwargs})
    rows = []
    for i in range(x.shape[0]):
        def g(xi, i=i):
            return explainer.attribute(xi[None], target=target[i : i + 1], create_graph=True).flatten()

        rows.append(torch.autograd.functional.jacobian(g, x[i]).reshape(-1, x[i].numel()))
    return torch.stack(rows)
