"""Models, ball samplers and the exact saliency shared by the sound-bound tests (float64 throughout,
so what the tests compare is the function, not float32 rounding)."""

from __future__ import annotations

import torch
from torch import nn

from r2et_fast.explain import GradientXInput, Saliency

F64 = torch.float64
ACTS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "softplus": lambda: nn.Softplus(beta=10.0),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def mlp(act: str, d: int = 6, widths: tuple[int, ...] = (12, 8), classes: int = 3, seed: int = 0,
        scale: float = 1.0) -> nn.Module:
    """d -> widths -> classes with ``act`` after every hidden Linear, nested Sequential."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width = d
    for w in widths:
        layers += [nn.Linear(width, w), ACTS[act]()]
        width = w
    model = nn.Sequential(nn.Sequential(*layers), nn.Linear(width, classes))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model.double().eval()


def cnn(act: str, classes: int = 3, seed: int = 0, side: int = 8) -> nn.Module:
    """Conv(1 -> 3, 3x3) -> act -> AvgPool 2 -> Conv(3 -> 4, 3x3, pad 1) -> act -> Flatten -> Linear,
    on (B, 1, side, side) images."""
    torch.manual_seed(seed)
    pooled = (side - 2) // 2
    model = nn.Sequential(nn.Conv2d(1, 3, 3), ACTS[act](), nn.AvgPool2d(2), nn.Conv2d(3, 4, 3, padding=1),
                          ACTS[act](), nn.Flatten(), nn.Linear(4 * pooled * pooled, classes))
    return model.double().eval()


def explainer(model: nn.Module, score: str, method: str = "saliency"):
    cls = Saliency if method == "saliency" else GradientXInput
    return cls(model, score=score, abs=True)


def exact_maps(model: nn.Module, points: torch.Tensor, target: torch.Tensor, score: str,
               method: str = "saliency", signed: bool = False) -> torch.Tensor:
    """The attribution (|.| unless ``signed``) at each point, flattened (N, n)."""
    cls = Saliency if method == "saliency" else GradientXInput
    out = cls(model, score=score, abs=not signed).attribute(points, target=target)
    return out.flatten(1)


def ball_points(x: torch.Tensor, eps: torch.Tensor, norm: str, n: int, gen: torch.Generator) -> torch.Tensor:
    """(B * n, ...) points of the ball around each sample (row b * n + j belongs to sample b): a
    third uniform inside, a third on its extreme set (l_inf vertices, the l2 sphere), a third on
    the axes (+-eps e_i)."""
    b = x.shape[0]
    flat = x.flatten(1).repeat_interleave(n, dim=0)
    e = eps.repeat_interleave(n).unsqueeze(1)
    m = flat.shape[1]
    if norm == "linf":
        inside = (2 * torch.rand(flat.shape, generator=gen, dtype=F64) - 1) * e
        extreme = torch.sign(torch.rand(flat.shape, generator=gen, dtype=F64) - 0.5) * e
    else:
        direction = torch.randn(flat.shape, generator=gen, dtype=F64)
        direction = direction / direction.norm(dim=1, keepdim=True)
        inside = direction * e * torch.rand(flat.shape[0], 1, generator=gen, dtype=F64) ** (1.0 / m)
        extreme = direction * e
    axis = torch.zeros_like(flat)
    idx = torch.randint(m, (flat.shape[0],), generator=gen)
    signs = torch.where(torch.rand(flat.shape[0], generator=gen) < 0.5, -1.0, 1.0).to(F64)
    axis[torch.arange(flat.shape[0]), idx] = signs
    axis = axis * e
    pick = torch.randint(3, (flat.shape[0], 1), generator=gen)
    delta = torch.where(pick == 0, inside, torch.where(pick == 1, extreme, axis))
    del b
    return (flat + delta).view(-1, *x.shape[1:])


def project(delta: torch.Tensor, eps: torch.Tensor, norm: str) -> torch.Tensor:
    """Onto the ball of per-row radius ``eps`` (delta (N, n))."""
    e = eps.unsqueeze(1)
    if norm == "linf":
        return torch.maximum(torch.minimum(delta, e), -e)
    scale = (e / delta.norm(dim=1, keepdim=True).clamp_min(1e-300)).clamp(max=1.0)
    return delta * scale


def coordinate_pgd(model: nn.Module, x: torch.Tensor, eps: torch.Tensor, norm: str, score: str,
                   target: torch.Tensor, coords: torch.Tensor, sign: float, steps: int = 15,
                   method: str = "saliency", gen: torch.Generator | None = None) -> torch.Tensor:
    """PGD that maximises ``sign`` * (signed attribution)_coords[b] at each sample b from a random
    start; returns the final points (B, ...). Double backprop, float64."""
    flat = x.flatten(1)
    start = ball_points(x, eps, norm, 1, gen or torch.Generator().manual_seed(0)).flatten(1) - flat
    delta = start.clone()
    alpha = 2.5 * eps / steps
    rows = torch.arange(x.shape[0])
    for _ in range(steps):
        d = delta.clone().requires_grad_(True)
        pts = (flat + d).view_as(x)
        cls = Saliency if method == "saliency" else GradientXInput
        g = cls(model, score=score, abs=False).attribute(pts, target=target, create_graph=True).flatten(1)
        obj = sign * g[rows, coords].sum()
        (grad,) = torch.autograd.grad(obj, d, allow_unused=True)
        if grad is None:  # piecewise-linear logit saliency: no gradient, keep the random start
            break
        if norm == "linf":
            step = grad.sign()
        else:
            step = grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-300)
        delta = project(delta.detach() + alpha.unsqueeze(1) * step, eps, norm)
    return (flat + delta).view_as(x)
