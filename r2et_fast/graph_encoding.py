"""The toolkit's one encoding of a weighted graph: the strict upper triangle of its adjacency.

A graph of ``N`` nodes is the vector of its ``m = N(N-1)/2`` strict upper-triangle weights, in
the row-major order of ``torch.triu_indices(N, N, 1)`` (docs/spec.md §8, §9). The graph models
take it as input, the graph data sets produce it and the graph explanation attributes it; the
symmetric adjacency ``A = U + Uᵀ`` with a zero diagonal is rebuilt from it, so a perturbation of
the vector is always a symmetric perturbation of the graph.

This module depends on torch only, so data sets and explainers can use it without
``torch_geometric``.
"""

from __future__ import annotations

import math
import numbers

import torch

from r2et_fast._validation import ArgumentTypeError, check_int, check_tensor

__all__ = ["adjacency_to_triangle", "n_nodes_of", "triangle_size", "triangle_to_adjacency"]


def triangle_size(n_nodes: int) -> int:
    """Number ``m = N(N-1)/2`` of strict upper-triangle entries of an ``N × N`` adjacency (N >= 2)."""
    n = check_int(n_nodes, "n_nodes", 2)
    return n * (n - 1) // 2


def n_nodes_of(m: int) -> int:
    """The ``N >= 2`` with ``N(N-1)/2 == m``; ``ValueError`` if ``m`` is not such a triangular number."""
    if isinstance(m, bool) or not isinstance(m, numbers.Integral):
        raise ArgumentTypeError(f"m must be an int, got {type(m).__name__}")
    n = (1 + math.isqrt(max(1 + 8 * int(m), 0))) // 2
    if m < 1 or n * (n - 1) // 2 != m:
        raise ValueError(f"m = {m} is not a triangular number N(N-1)/2, so not the upper-triangle size "
                         "of a graph with N >= 2 nodes")
    return n


def adjacency_to_triangle(adjacency: torch.Tensor) -> torch.Tensor:
    """Strict upper triangle ``(..., m)`` of square matrices ``(..., N, N)``.

    The lower triangle and the diagonal are ignored (a non-symmetric input loses its lower half)."""
    check_tensor(adjacency, "adjacency")
    if adjacency.dim() < 2 or adjacency.shape[-1] != adjacency.shape[-2] or adjacency.shape[-1] < 2:
        raise ValueError(f"adjacency must have shape (..., N, N) with N >= 2, got {tuple(adjacency.shape)}")
    n = adjacency.shape[-1]
    iu = torch.triu_indices(n, n, 1, device=adjacency.device)
    return adjacency[..., iu[0], iu[1]]


def triangle_to_adjacency(weights: torch.Tensor, n_nodes: int | None = None) -> torch.Tensor:
    """Symmetric matrices ``(..., N, N)`` with a zero diagonal from upper-triangle weights ``(..., m)``.

    Differentiable (twice and more) w.r.t. ``weights``; the inverse of :func:`adjacency_to_triangle`
    on symmetric zero-diagonal matrices. ``n_nodes`` is inferred from ``m`` when not given."""
    check_tensor(weights, "weights")
    if weights.dim() < 1:
        raise ValueError("weights must have shape (..., m), got a 0-d tensor")
    m = weights.shape[-1]
    n = n_nodes_of(m) if n_nodes is None else check_int(n_nodes, "n_nodes", 2)
    if triangle_size(n) != m:
        raise ValueError(f"weights have {m} entries in the last dimension, but n_nodes={n} needs "
                         f"N(N-1)/2 = {triangle_size(n)}")
    iu = torch.triu_indices(n, n, 1, device=weights.device)
    flat = iu[0] * n + iu[1]
    # index_copy (not a masked assignment) keeps the result differentiable to any order.
    upper = weights.new_zeros(*weights.shape[:-1], n * n).index_copy(-1, flat, weights)
    upper = upper.view(*weights.shape[:-1], n, n)
    return upper + upper.transpose(-1, -2)
