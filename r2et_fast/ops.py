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
    "pair_gap_at",
    "hessian_fd_norm",
    "projected_step",
]
NORMS = ("l2", "linf")

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
                  n_pairs: int | None = None, *, return_indices: bool = False,
                  backend: str | None = None):
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
        return_indices: also return the chosen indices ``(hi, lo)``, int64: for ``"all"`` hi is
            T_k (B, k) and lo is empty (B, 0); otherwise pair p is hi[:, p] above lo[:, p]. They
            fix the pairs for ``pair_gap_at`` (ERAttack keeps the clean ranking's pairs).
    """
    v.check_maps(maps, "maps", min_features=2)
    v.check_k(k, maps.shape[1])
    if pairs not in PAIR_SELECTIONS:
        raise ValueError(f"pairs must be one of {PAIR_SELECTIONS}, got {pairs!r}")
    if transform not in GAP_TRANSFORMS:
        raise ValueError(f"transform must be one of {GAP_TRANSFORMS}, got {transform!r}")
    n_pairs = _default_n_pairs(pairs, k, maps.shape[1], n_pairs)
    if _backend.resolve("topk_pair_gap", maps.device.type, backend) == "native":
        gap, hi, lo = _ops.native("topk_pair_gap")(maps, k, pairs, transform, n_pairs)
        return (gap, hi, lo) if return_indices else gap
    v.check_finite(maps, "maps")
    gap = reference.topk_pair_gap(maps, k, pairs, transform, n_pairs)
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
    if pairs not in PAIR_SELECTIONS:
        raise ValueError(f"pairs must be one of {PAIR_SELECTIONS}, got {pairs!r}")
    if transform not in GAP_TRANSFORMS:
        raise ValueError(f"transform must be one of {GAP_TRANSFORMS}, got {transform!r}")
    return reference.regularizers.pair_gap_from_indices(maps, hi, lo, pairs, transform)


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


def _box_bound(bound, x: torch.Tensor, name: str) -> torch.Tensor | None:
    """None, a number, or a tensor broadcastable to one sample -> a (n,) tensor like x."""
    if bound is None:
        return None
    if isinstance(bound, (int, float)) and not isinstance(bound, bool):
        bound = torch.tensor(float(bound), dtype=x.dtype, device=x.device)
    v.check_tensor(bound, name)
    try:
        flat = bound.to(dtype=x.dtype).expand(x.shape[1:]).reshape(-1)
    except RuntimeError as exc:
        raise ValueError(f"{name} must broadcast to one sample of shape {tuple(x.shape[1:])}, got "
                         f"shape {tuple(bound.shape)}") from exc
    if flat.device != x.device:
        raise ValueError(f"{name} must be on the device of x ({x.device}), got {flat.device}")
    if bool(torch.isnan(flat).any()):
        raise ValueError(f"{name} contains NaN")
    return flat.contiguous()


def projected_step(x: torch.Tensor, grad: torch.Tensor, x0: torch.Tensor, alpha: float, eps: float, *,
                   step_norm: str = "l2", norm: str = "l2", lower=None, upper=None,
                   backend: str | None = None) -> torch.Tensor:
    """One projected descent step of an attack, fused per sample (SPEC §5).

    x - alpha * normalise(grad) (``step_norm``: "l2" divides by ||grad||_2, "linf" takes the
    sign), projected onto the ``eps``-ball around ``x0`` (``norm``: "l2" or "linf") and clamped to
    the valid box [``lower``, ``upper``] (numbers or tensors broadcastable to one sample). Inputs
    are batches (B, ...); to ascend, pass ``-grad``. Not differentiable (attacks run it under
    ``torch.no_grad``).
    """
    for name, t in (("x", x), ("grad", grad), ("x0", x0)):
        v.check_tensor(t, name)
        v.check_float(t, name)
        if t.dim() < 2 or t.shape[0] == 0:
            raise ValueError(f"{name} must be a non-empty batch (B, ...), got shape {tuple(t.shape)}")
    if grad.shape != x.shape or x0.shape != x.shape:
        raise ValueError(f"x, grad and x0 must have the same shape, got {tuple(x.shape)}, "
                         f"{tuple(grad.shape)}, {tuple(x0.shape)}")
    if grad.dtype != x.dtype or x0.dtype != x.dtype:
        raise TypeError("x, grad and x0 must have the same dtype")
    if grad.device != x.device or x0.device != x.device:
        raise ValueError("x, grad and x0 must be on the same device")
    for name, value in (("alpha", alpha), ("eps", eps)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    for name, value in (("step_norm", step_norm), ("norm", norm)):
        if value not in NORMS:
            raise ValueError(f"{name} must be one of {NORMS}, got {value!r}")
    lo, hi = _box_bound(lower, x, "lower"), _box_bound(upper, x, "upper")
    flat = [t.reshape(t.shape[0], -1) for t in (x, grad, x0)]
    args = (float(alpha), float(eps), step_norm, norm, lo, hi)
    if _backend.resolve("projected_step", x.device.type, backend) == "native":
        out = _ops.native("projected_step")(*flat, *args)
    else:
        for name, t in zip(("x", "grad", "x0"), flat):
            v.check_finite(t, name)
        out = reference.projected_step(*flat, *args)
    return out.view(x.shape)
