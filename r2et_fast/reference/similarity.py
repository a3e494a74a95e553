"""Reference value-based similarity ops, computed in float64 and returned in the input dtype."""

from __future__ import annotations

import torch


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation per row; NaN where a row is constant (tested exactly, not via rounding)."""
    da = a.double() - a.double().mean(dim=1, keepdim=True)
    db = b.double() - b.double().mean(dim=1, keepdim=True)
    r = (da * db).sum(dim=1) / (da.norm(dim=1) * db.norm(dim=1))
    constant = (a == a[:, :1]).all(dim=1) | (b == b[:, :1]).all(dim=1)
    return torch.where(constant, torch.nan, r).to(a.dtype)


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared difference ||a - b||^2 / n per row."""
    return (a.double() - b.double()).square().mean(dim=1).to(a.dtype)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity per row; NaN where a row is all zeros."""
    a64, b64 = a.double(), b.double()
    return ((a64 * b64).sum(dim=1) / (a64.norm(dim=1) * b64.norm(dim=1))).to(a.dtype)
