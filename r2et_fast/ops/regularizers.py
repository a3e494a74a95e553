"""Public R2ET regulariser ops (docs/spec.md §3): the top-k pair gap G_k and the finite-difference
Hessian norm, both differentiable twice."""

from __future__ import annotations

from typing import Literal, overload

import torch

from r2et_fast import _ops, reference
from r2et_fast import _validation as v
from r2et_fast.ops._dispatch import run, use_native

PAIR_SELECTIONS = ("all", "anchor", "mm")
GAP_TRANSFORMS = ("linear", "exp")


def _check_pair_options(pairs: str, transform: str) -> None:
    if pairs not in PAIR_SELECTIONS:
        raise ValueError(f"pairs must be one of {PAIR_SELECTIONS}, got {pairs!r}")
    if transform not in GAP_TRANSFORMS:
        raise ValueError(f"transform must be one of {GAP_TRANSFORMS}, got {transform!r}")


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


# (G_k, hi, lo): the gap per row and the indices of its pairs
GapIndices = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@overload
def topk_pair_gap(maps: torch.Tensor, k: int, pairs: str = ..., transform: str = ...,
                  n_pairs: int | None = ..., *, return_indices: Literal[False] = ...,
                  backend: str | None = ...) -> torch.Tensor: ...
@overload
def topk_pair_gap(maps: torch.Tensor, k: int, pairs: str = ..., transform: str = ...,
                  n_pairs: int | None = ..., *, return_indices: Literal[True],
                  backend: str | None = ...) -> GapIndices: ...
@overload
def topk_pair_gap(maps: torch.Tensor, k: int, pairs: str = ..., transform: str = ...,
                  n_pairs: int | None = ..., *, return_indices: bool,
                  backend: str | None = ...) -> torch.Tensor | GapIndices: ...
def topk_pair_gap(maps: torch.Tensor, k: int, pairs: str = "all", transform: str = "linear",
                  n_pairs: int | None = None, *, return_indices: bool = False,
                  backend: str | None = None) -> torch.Tensor | GapIndices:
    """R2ET's top-k pair-gap term G_k per row (docs/spec.md §3); differentiable w.r.t. ``maps``.

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
        return_indices: also return the chosen indices ``(hi, lo)``, int64: for ``"all"`` hi is
            T_k (B, k) and lo is empty (B, 0); otherwise pair p is hi[:, p] above lo[:, p]. They
            fix the pairs for ``pair_gap_at`` (ERAttack keeps the clean ranking's pairs).
    """
    v.check_maps(maps, "maps", min_features=2)
    v.check_k(k, maps.shape[1])
    _check_pair_options(pairs, transform)
    n_pairs = _default_n_pairs(pairs, k, maps.shape[1], n_pairs)
    if use_native("topk_pair_gap", maps, backend):
        gap, hi, lo = _ops.native("topk_pair_gap")(maps, k, pairs, transform, n_pairs)
        return (gap, hi, lo) if return_indices else gap
    v.check_finite(maps, "maps")
    gap = reference.regularizers.topk_pair_gap(maps, k, pairs, transform, n_pairs)
    if not return_indices:
        return gap
    return (gap, *reference.regularizers.pair_indices(maps, k, pairs, n_pairs))


def pair_gap_at(maps: torch.Tensor, hi: torch.Tensor, lo: torch.Tensor, pairs: str = "all",
                transform: str = "linear") -> torch.Tensor:
    """G_k of ``maps`` over pairs fixed beforehand (``topk_pair_gap(..., return_indices=True)``).

    Plain differentiable PyTorch (gathers and sums): with the ranking fixed there is nothing to
    sort, so no kernel is needed.
    """
    v.check_maps(maps, "maps", min_features=2)
    _check_pair_options(pairs, transform)
    return reference.regularizers.pair_gap_from_indices(maps, hi, lo, pairs, transform)


def hessian_fd_norm(grad_x: torch.Tensor, grad_xv: torch.Tensor, kappa: float = 1e-3, *,
                    backend: str | None = None) -> torch.Tensor:
    """R2ET's finite-difference Hessian norm per row: ||grad_xv - grad_x||_2 / kappa (docs/spec.md §3).

    ``grad_x`` and ``grad_xv`` are (B, n) input gradients at x and at x + kappa * v; the result is
    differentiable w.r.t. both (twice). Where they coincide the gradient is taken as zero.
    """
    v.check_tensor(grad_x, "grad_x")
    v.check_tensor(grad_xv, "grad_xv")
    v.check_pair(grad_x, grad_xv)
    if isinstance(kappa, bool) or not isinstance(kappa, (int, float)) or not (0 < kappa < float("inf")):
        raise ValueError(f"kappa must be a positive finite number, got {kappa!r}")
    return run("hessian_fd_norm", {"grad_x": grad_x, "grad_xv": grad_xv}, float(kappa), backend=backend)
