"""Public ranking ops (docs/spec.md §2, §6). Order: descending value, ties broken by the lower index."""

from __future__ import annotations

import torch

from r2et_fast import _validation as v
from r2et_fast.ops._dispatch import run


def topk_indices(x: torch.Tensor, k: int, *, backend: str | None = None) -> torch.Tensor:
    """(B, k) int64 indices of the k largest entries of each row, best first."""
    v.check_maps(x, "x", min_features=2)
    v.check_k(k, x.shape[1])
    return run("topk_indices", {"x": x}, k, backend=backend)


def ranks(x: torch.Tensor, *, backend: str | None = None) -> torch.Tensor:
    """(B, n) int64 ordinal rank of every entry within its row; 0 is the largest."""
    v.check_maps(x, "x")
    return run("ranks", {"x": x}, backend=backend)


def precision_at_k(a: torch.Tensor, b: torch.Tensor, k: int, *, backend: str | None = None):
    """P@k = |T_k(a) ∩ T_k(b)| / k per row, O(n) per row."""
    v.check_pair(a, b, min_features=2)
    v.check_k(k, a.shape[1])
    return run("precision_at_k", {"a": a, "b": b}, k, backend=backend)


def kendall_tau(a: torch.Tensor, b: torch.Tensor, *, backend: str | None = None) -> torch.Tensor:
    """Kendall tau-b over all features per row (ties handled; O(n log n) natively)."""
    v.check_pair(a, b, min_features=2)
    return run("kendall_tau", {"a": a, "b": b}, backend=backend)


def kendall_tau_topk(a: torch.Tensor, b: torch.Tensor, k: int, *, backend: str | None = None):
    """Kendall tau-b restricted to T_k(a), the k features ranked highest by ``a``.

    With k = 1 the statistic is undefined (one feature has no pairs) and is NaN.
    """
    v.check_pair(a, b, min_features=2)
    v.check_k(k, a.shape[1])
    return run("kendall_tau_topk", {"a": a, "b": b}, k, backend=backend)


def spearman(a: torch.Tensor, b: torch.Tensor, *, backend: str | None = None) -> torch.Tensor:
    """Spearman's rho per row (Pearson correlation of average ranks)."""
    v.check_pair(a, b, min_features=2)
    return run("spearman", {"a": a, "b": b}, backend=backend)
