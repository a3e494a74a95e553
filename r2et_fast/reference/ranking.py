"""Reference ranking ops. Order: descending value, ties broken by the lower feature index."""

from __future__ import annotations

import torch

from r2et_fast.reference.similarity import pearson

# Elements of the (batch, block, n) sign tensors built at once by the O(n^2) Kendall reference.
_KENDALL_BLOCK_ELEMENTS = 1 << 24


def _order(x: torch.Tensor) -> torch.Tensor:
    """Indices sorting each row best first; a stable sort keeps lower indices first among ties."""
    return torch.sort(x, dim=1, descending=True, stable=True).indices


def topk_indices(x: torch.Tensor, k: int) -> torch.Tensor:
    """(B, k) indices of the k largest entries of each row, best first."""
    return _order(x)[:, :k]


def ranks(x: torch.Tensor) -> torch.Tensor:
    """(B, n) ordinal rank of each entry within its row, 0 for the largest."""
    order = _order(x)
    positions = torch.arange(x.shape[1], device=x.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, positions)


def _topk_mask(x: torch.Tensor, k: int) -> torch.Tensor:
    mask = torch.zeros(x.shape, dtype=torch.bool, device=x.device)
    return mask.scatter_(1, topk_indices(x, k), True)


def precision_at_k(a: torch.Tensor, b: torch.Tensor, k: int) -> torch.Tensor:
    """P@k = |T_k(a) ∩ T_k(b)| / k per row."""
    overlap = (_topk_mask(a, k) & _topk_mask(b, k)).sum(dim=1)
    return overlap.to(a.dtype) / k


def kendall_tau(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Kendall tau-b per row from all n(n-1)/2 pairs (O(n^2), in blocks to bound memory).

    tau_b = sum_{i<j} s^a_ij s^b_ij / sqrt(#{s^a_ij != 0} #{s^b_ij != 0}) with s_ij = sign(v_i - v_j);
    summing over all ordered pairs doubles numerator and both counts alike, so the ratio is unchanged.
    NaN where a row is constant.
    """
    batch, n = a.shape
    block = max(1, _KENDALL_BLOCK_ELEMENTS // (batch * n))
    numer = torch.zeros(batch, dtype=torch.int64, device=a.device)
    pairs_a = torch.zeros_like(numer)
    pairs_b = torch.zeros_like(numer)
    for start in range(0, n, block):
        sa = torch.sign(a[:, start : start + block, None] - a[:, None, :]).to(torch.int8)
        sb = torch.sign(b[:, start : start + block, None] - b[:, None, :]).to(torch.int8)
        numer += (sa * sb).sum(dim=(1, 2), dtype=torch.int64)
        pairs_a += (sa != 0).sum(dim=(1, 2))
        pairs_b += (sb != 0).sum(dim=(1, 2))
    denom = torch.sqrt(pairs_a.double()) * torch.sqrt(pairs_b.double())
    return (numer.double() / denom).to(a.dtype)  # 0/0 gives NaN for constant rows


def kendall_tau_topk(a: torch.Tensor, b: torch.Tensor, k: int) -> torch.Tensor:
    """Kendall tau-b restricted to the k features ranked highest by ``a``."""
    top = topk_indices(a, k)
    return kendall_tau(a.gather(1, top), b.gather(1, top))


def average_ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks per row, ties sharing the mean of their positions (scipy's ``rankdata``)."""
    x = x.contiguous()  # searchsorted copies (and warns) otherwise
    sorted_x = torch.sort(x, dim=1).values
    below = torch.searchsorted(sorted_x, x, right=False)  # entries strictly smaller
    upto = torch.searchsorted(sorted_x, x, right=True)  # entries smaller or equal
    return (below + upto + 1).to(torch.float64) / 2


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman's rho: Pearson correlation of the average ranks."""
    return pearson(average_ranks(a), average_ranks(b)).to(a.dtype)
