"""Plain-PyTorch twin of the ``topk_pair_agreement`` kernel (docs/spec.md §2, top-k thickness).

Assumes validated input: ``maps`` (B, n) finite float, ``top`` (B, k) int64 distinct indices in
range, 1 <= k < n (``r2et_fast.thickness.topk_pair_agreement`` checks them).
"""

from __future__ import annotations

import torch


def topk_pair_agreement(maps: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """Per row, the fraction of the k(n - k) pairs (i in top, j not in top) with maps[i] >= maps[j].

    Broadcast comparison of every top value with every row value, the top members masked out:
    O(k n) work and memory per row, written to be read rather than to be fast.
    """
    batch, n = maps.shape
    k = top.shape[1]
    in_top = torch.zeros(batch, n, dtype=torch.bool, device=maps.device).scatter_(1, top, True)
    top_vals = maps.gather(1, top)  # (B, k)
    at_least = top_vals[:, :, None] >= maps[:, None, :]  # (B, k, n): ties count as satisfied
    satisfied = (at_least & ~in_top[:, None, :]).sum(dim=(1, 2))  # exact int64 counts
    return (satisfied.to(torch.float64) / float(k * (n - k))).to(maps.dtype)
