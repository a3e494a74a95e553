"""Diagnostics of the bound experiment (docs/spec.md §7): tied max-pool windows, the jump of an
attribution under a tiny random perturbation, and test accuracy."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from r2et_fast.bounds import attribution as attribution_map
from r2et_fast.models import MnistCNN, SmoothPoolCNN

JUMP_RADIUS = 1e-4


def tied_pool_share(model: nn.Module, x: torch.Tensor) -> float | None:
    """Share of the first layer's 2 x 2 max-pool windows whose maximum is tied (exactly equal
    candidates): there the gradient depends on the tie-break. None for other architectures."""
    if isinstance(model, SmoothPoolCNN) or not isinstance(model, MnistCNN):
        return None
    with torch.no_grad():
        h = model.body.conv1(x)
        win = F.unfold(h.flatten(0, 1).unsqueeze(1), 2, stride=2)  # (B*C, 4, windows)
        top2 = win.topk(2, dim=1).values
    return float((top2[:, 0] == top2[:, 1]).double().mean())


def jump(model: nn.Module, x: torch.Tensor, method: str = "saliency", *, radius: float = JUMP_RADIUS,
         draws: int = 4, lower: Any = 0.0, upper: Any = 1.0, seed: int = 0,
         explainer_kwargs: dict | None = None) -> float:
    """Mean over samples of max over ``draws`` random directions of ||g(x + d) - g(x)|| / ||g(x)||,
    ||d||_2 = ``radius`` (clipped to the box): about xi_max * radius / ||g|| for a smooth g, of
    order one where g jumps (max-pool ties)."""
    gen = torch.Generator().manual_seed(seed)
    g0 = attribution_map(model, x, method, explainer_kwargs=explainer_kwargs)
    target = _predict(model, x)
    worst = torch.zeros(len(x), dtype=torch.float64)
    for _ in range(draws):
        d = torch.randn(x.shape, generator=gen, dtype=x.dtype)
        d = d * (radius / d.flatten(1).norm(dim=1).clamp_min(1e-30)).view(-1, *([1] * (x.dim() - 1)))
        xp = _clip(x + d, lower, upper)
        g1 = attribution_map(model, xp, method, target, explainer_kwargs=explainer_kwargs)
        rel = (g1 - g0).norm(dim=1) / g0.norm(dim=1).clamp_min(1e-30)
        worst = torch.maximum(worst, rel.double())
    return float(worst.mean())


def _clip(x: torch.Tensor, lower: Any, upper: Any) -> torch.Tensor:
    if lower is not None:
        x = torch.maximum(x, torch.as_tensor(lower, dtype=x.dtype))
    if upper is not None:
        x = torch.minimum(x, torch.as_tensor(upper, dtype=x.dtype))
    return x


def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(x[i:i + 1024]).argmax(dim=1) for i in range(0, len(x), 1024)])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((_predict(model, x) == y).double().mean())
