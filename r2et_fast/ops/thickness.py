"""The pair-agreement count behind top-k thickness as a public op (docs/spec.md §2); the estimator
built on it is ``r2et_fast.thickness.topk_thickness``."""

from __future__ import annotations

import torch

from r2et_fast import _ops
from r2et_fast import _validation as v
from r2et_fast.ops._dispatch import use_native
from r2et_fast.reference import thickness as twin


def _check_top(maps: torch.Tensor, top) -> None:
    """Shape, dtype and device of ``top`` against ``maps`` (values are checked separately)."""
    v.check_tensor(top, "top")
    if top.dtype != torch.int64:
        raise TypeError(f"top must be int64, got {top.dtype}")
    batch, n = maps.shape
    if top.dim() != 2 or top.shape[0] != batch:
        raise ValueError(f"top must have shape (B, k) = ({batch}, k) to match maps, got shape "
                         f"{tuple(top.shape)}")
    k = top.shape[1]
    if not 1 <= k < n:
        raise ValueError(f"top must have k columns with 1 <= k < n_features (n_features = {n}), "
                         f"got k = {k}")
    if top.device != maps.device:
        raise ValueError(f"maps and top must be on the same device, got {maps.device} and {top.device}")


def _check_top_values(top: torch.Tensor, n: int) -> None:
    if bool(((top < 0) | (top >= n)).any()):
        raise ValueError(f"top contains an index out of range [0, {n})")
    s = top.sort(dim=1).values
    if bool((s[:, 1:] == s[:, :-1]).any()):
        raise ValueError("top contains duplicate indices")


def topk_pair_agreement(maps: torch.Tensor, top: torch.Tensor, *, backend: str | None = None) -> torch.Tensor:
    """Fraction of the k(n-k) ordered pairs (i in ``top``, j not in ``top``) with maps[i] >= maps[j].

    Args:
        maps: (B, n) float32/float64 explanations, finite.
        top: (B, k) int64 distinct feature indices per row, 1 <= k < n (typically T_k of the
            clean explanation, ``r2et_fast.topk_indices``).
        backend: ``"native"``, ``"reference"`` or None (the process-wide choice).

    Returns:
        (B,) in the dtype of ``maps``. Ties count as satisfied (1[h >= 0]), so ``top`` = T_k(maps)
        gives exactly 1. Not differentiable (a count).
    """
    v.check_maps(maps, "maps", min_features=2)
    _check_top(maps, top)
    if use_native("topk_pair_agreement", maps, backend):
        return _ops.native("topk_pair_agreement")(maps, top)  # the kernel checks the values
    if not v.is_symbolic(top):  # a meta or fake tensor has no values to check
        _check_top_values(top, maps.shape[1])
    v.check_finite(maps, "maps")
    return twin.topk_pair_agreement(maps, top)
