"""Reference twin of the attacks' fused projected step (plain PyTorch, batched over rows)."""

from __future__ import annotations

import torch


def projected_step(x: torch.Tensor, grad: torch.Tensor, x0: torch.Tensor, alpha: float, eps: float,
                   step_norm: str, norm: str, lower: torch.Tensor | None,
                   upper: torch.Tensor | None) -> torch.Tensor:
    """x - alpha * normalise(grad), projected onto the eps-ball around x0 and the box, per row."""
    if step_norm == "l2":
        length = grad.double().norm(dim=1, keepdim=True)
        direction = torch.where(length > 0, grad.double() / length.clamp_min(1e-300), 0.0)
    else:
        direction = torch.sign(grad).double()
    delta = x.double() - alpha * direction - x0.double()
    if norm == "l2":
        length = delta.norm(dim=1, keepdim=True)
        delta = delta * torch.where(length > eps, eps / length.clamp_min(1e-300), 1.0)
    else:
        delta = delta.clamp(-eps, eps)
    out = x0.double() + delta
    if lower is not None:
        out = torch.maximum(out, lower.double())
    if upper is not None:
        out = torch.minimum(out, upper.double())
    return out.to(x.dtype)
