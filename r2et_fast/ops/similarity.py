"""Public value-based similarity ops (docs/spec.md §6), differentiable on both backends."""

from __future__ import annotations

import torch

from r2et_fast import _validation as v
from r2et_fast.ops._dispatch import run


def pearson(a: torch.Tensor, b: torch.Tensor, *, backend: str | None = None) -> torch.Tensor:
    """Pearson correlation per row. Differentiable on both backends."""
    v.check_pair(a, b, min_features=2)
    return run("pearson", {"a": a, "b": b}, backend=backend)


def mse(a: torch.Tensor, b: torch.Tensor, *, backend: str | None = None) -> torch.Tensor:
    """Mean squared difference ||a - b||^2 / n per row. Differentiable on both backends."""
    v.check_pair(a, b)
    return run("mse", {"a": a, "b": b}, backend=backend)


def cosine(a: torch.Tensor, b: torch.Tensor, *, backend: str | None = None) -> torch.Tensor:
    """Cosine similarity per row. Differentiable on both backends."""
    v.check_pair(a, b)
    return run("cosine", {"a": a, "b": b}, backend=backend)
