"""Public ranking and explanation-similarity ops, on the native or the reference backend.

Every function takes ``(B, n)`` batches of maps (float32 or float64, one row per sample), checks its
arguments (a ``ValueError``/``TypeError`` naming the argument), and runs on the backend chosen by
``backend=`` or, if omitted, by ``r2et_fast.set_backend`` / ``R2ET_FAST_BACKEND``.

Ranking order everywhere: descending value, ties broken by the lower feature index, so ``T_k`` is
always a well-defined set. Correlations of a constant row are undefined and come back as NaN (as
in scipy).
"""

from __future__ import annotations

import torch

from r2et_fast import _backend, _ops, reference
from r2et_fast import _validation as v

__all__ = [
    "topk_indices",
    "ranks",
    "precision_at_k",
    "kendall_tau",
    "kendall_tau_topk",
    "spearman",
    "pearson",
    "mse",
    "cosine",
    "topk_pair_gap",
    "hessian_fd_norm",
]

PAIR_SELECTIONS = ("all", "anchor", "mm")
GAP_TRANSFORMS = ("linear", "exp")


def _run(op: str, tensors: dict[str, torch.Tensor], *args, backend: str | None):
    first = next(iter(tensors.values()))
    if _backend.resolve(op, first.device.type, backend) == "native":
        return _ops.native(op)(*tensors.values(), *args)  # the kernel checks finiteness itself
    for name, t in tensors.items():
        v.check_finite(t, name)
    return getattr(reference, op)(*tensors.values(), *args)


def topk_indices(x: torch.Tensor, k: int, *, backend: str | None = None) -> torch.Tensor:
    """(B, k) int64 indices of the k largest entries of each row, best first."""
    v.check_maps(x, "x", min_features=2)
    v.check_k(k, x.shape[1])
    return _run("topk_indices", {"x": x}, k, backend=backend)


def ranks(x: torch.Tensor, *, backend: str | None = None) -> torch.Tensor:
    """(B, n) int64 ordinal rank of every entry within its row; 0 is the largest."""
    v.check_maps(x, "x")
    return _run("ranks", {"x": x}, backend=backend)


def precision_at_k(a: torch.Tensor, b: torch.Tensor, k: int, *, backend: str | None = None):
    """P@k = |T_k(a) ∩ T_k(b)| / k per row, O(n) per row."""
    v.check_pair(a, b, min_features=2)
    v.check_k(k, a.shape[1])
    return _run("precision_at_k", {"a": a, "b": b}, k, backend=backend)


def kendall_tau(a: torch.Tensor, b: torch.Tensor, *, backend: str | None = None) -> torch.Tensor:
    """Kendall tau-b over all features per row (ties handled; O(n log n) natively)."""
    v.check_pair(a, b, min_features=2)
    return _run("kendall_tau", {"a": a, "b": b}, backend=backend)


def kendall_tau_topk(a: torch.Tensor, b: torch.Tensor, k: int, *, backend: str | None = None):
    """Kendall tau-b restricted to T_k(a), the k features ranked highest by ``a``.

    With k = 1 the statistic is undefined (one feature has no pairs) and is NaN.
    """
    v.check_pair(a, b, min_features=2)
    v.check_k(k, a.shape[1])
    return _run("kendall_tau_topk", {"a": a, "b": b}, k, backend=backend)


def spearman(a: torch.Tensor, b: torch.Tensor, *, backend: str | None = None) -> torch.Tensor:
    """Spearman's rho per row (Pearson correlation of average ranks)."""
    v.check_pair(a, b, min_features=2)
    return _run("spearman", {"a": a, "b": b}, backend=backend)


def pearson(a: torch.Tensor, b: torch.Tensor, *, backend: str | None = None) -> torch.Tensor:
    """Pearson correlation per row. Differentiable on both backends."""
    v.check_pair(a, b, min_features=2)
    return _run("pearson", {"a": a, "b": b}, backend=backend)


def mse(a: torch.Tensor, b: torch.Tensor, *, backend: str | None = None) -> torch.Tensor:
    """Mean squared difference ||a - b||^2 / n per row. Differentiable on both backends."""
    v.check_pair(a, b)
    return _run("mse", {"a": a, "b": b}, backend=backend)


def cosine(a: torch.Tensor, b: torch.Tensor, *, backend: str | None = None) -> torch.Tensor:
    """Cosine similarity per row. Differentiable on both backends."""
    v.check_pair(a, b)
    return _run("cosine", {"a": a, "b": b}, backend=backend)


def _default_n_pairs(pairs: str, k: int, n: int, n_pairs: int | None) -> int:
    if pairs == "all":
        return 0  # every pair (T_k x rest) is used; n_pairs does not apply
    if n_pairs is None:
        return k if pairs == "anchor" else min(k, n - k)
    v.check_positive_int(n_pairs, "n_pairs")
    if pairs == "mm" and n_pairs > min(k, n - k):
        raise ValueError(f"n_pairs must satisfy 1 <= n_pairs <= min(k, n_features - k) = {min(k, n - k)} "
                         f"for pairs='mm', got {n_pairs}")
    return n_pairs


def topk_pair_gap(maps: torch.Tensor, k: int, pairs: str = "all", transform: str = "linear",
                  n_pairs: int | None = None, *, backend: str | None = None) -> torch.Tensor:
    """R2ET's top-k pair-gap term G_k per row (SPEC §3); differentiable w.r.t. ``maps``.

    The ranking (T_k and the pairs) is taken from ``maps`` and detached; the gaps
    h = I_i - I_j carry the gradient (twice differentiable).

    Args:
        maps: (B, n) explanations.
        k: size of the top-k set, 1 <= k < n.
        pairs: ``"all"`` (T_k x rest, O(n) by factorisation), ``"anchor"`` (the k-th feature
            against the ``n_pairs`` ranks just above and below it; default N = k) or ``"mm"``
            (the ``n_pairs`` = k' closest pairs across the border, rank by rank; default
            min(k, n - k)).
        transform: ``"linear"`` sums h; ``"exp"`` sums -exp(-h) (bounded above by 0).
    """
    v.check_maps(maps, "maps", min_features=2)
    v.check_k(k, maps.shape[1])
    if pairs not in PAIR_SELECTIONS:
        raise ValueError(f"pairs must be one of {PAIR_SELECTIONS}, got {pairs!r}")
    if transform not in GAP_TRANSFORMS:
        raise ValueError(f"transform must be one of {GAP_TRANSFORMS}, got {transform!r}")
    n_pairs = _default_n_pairs(pairs, k, maps.shape[1], n_pairs)
    if _backend.resolve("topk_pair_gap", maps.device.type, backend) == "native":
        return _ops.native("topk_pair_gap")(maps, k, pairs, transform, n_pairs)[0]
    v.check_finite(maps, "maps")
    return reference.topk_pair_gap(maps, k, pairs, transform, n_pairs)


def hessian_fd_norm(grad_x: torch.Tensor, grad_xv: torch.Tensor, kappa: float = 1e-3, *,
                    backend: str | None = None) -> torch.Tensor:
    """R2ET's finite-difference Hessian norm per row: ||grad_xv - grad_x||_2 / kappa (SPEC §3).

    ``grad_x`` and ``grad_xv`` are (B, n) input gradients at x and at x + kappa * v; the result is
    differentiable w.r.t. both (twice). Where they coincide the gradient is taken as zero.
    """
    v.check_tensor(grad_x, "grad_x")
    v.check_tensor(grad_xv, "grad_xv")
    v.check_pair(grad_x, grad_xv)
    if isinstance(kappa, bool) or not isinstance(kappa, (int, float)) or not (0 < kappa < float("inf")):
        raise ValueError(f"kappa must be a positive finite number, got {kappa!r}")
    return _run("hessian_fd_norm", {"grad_x": grad_x, "grad_xv": grad_xv}, float(kappa), backend=backend)
