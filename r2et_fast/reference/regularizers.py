"""Reference twins of the R2ET regulariser ops, plain PyTorch and differentiable by autograd."""

from __future__ import annotations

import torch

from r2et_fast.reference.ranking import _order


def pair_rank_positions(pairs: str, k: int, n: int, n_pairs: int) -> tuple[list[int], list[int]]:
    """Rank positions (0 = best) of the explicit pairs; pair p has hi[p] ranked above lo[p].

    anchor (N): the k-th feature (rank k-1) against the N ranks just above and the N just below;
    mm (k'): rank k-1-m against rank k+m for m < k' (the closest pairs across the top-k border).
    """
    if pairs == "anchor":
        above, below = min(n_pairs, k - 1), min(n_pairs, n - k)
        hi = [k - 1 - t for t in range(1, above + 1)] + [k - 1] * below
        lo = [k - 1] * above + [k - 1 + t for t in range(1, below + 1)]
        return hi, lo
    return [k - 1 - m for m in range(n_pairs)], [k + m for m in range(n_pairs)]


def pair_indices(maps: torch.Tensor, k: int, pairs: str, n_pairs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The indices the native op returns: (T_k, empty) for "all", else (hi, lo) per pair."""
    order = _order(maps.detach())
    if pairs == "all":
        return order[:, :k], order.new_empty((maps.shape[0], 0))
    hi_rank, lo_rank = pair_rank_positions(pairs, k, maps.shape[1], n_pairs)
    return order[:, hi_rank], order[:, lo_rank]


def pair_gap_from_indices(maps: torch.Tensor, hi: torch.Tensor, lo: torch.Tensor, pairs: str,
                          transform: str) -> torch.Tensor:
    """G_k over given indices (as returned by ``pair_indices``), differentiable w.r.t. maps."""
    if pairs == "all":
        k, n = hi.shape[1], maps.shape[1]
        in_top = torch.zeros(maps.shape, dtype=torch.bool, device=maps.device).scatter_(1, hi, True)
        return _all_pairs_gap(maps, in_top, k, n, transform)
    h = maps.gather(1, hi) - maps.gather(1, lo)
    return h.sum(dim=1) if transform == "linear" else -torch.exp(-h).sum(dim=1)


def _all_pairs_gap(maps: torch.Tensor, in_top: torch.Tensor, k: int, n: int, transform: str) -> torch.Tensor:
    if transform == "linear":  # (n-k) sum_T I - k sum_rest I, without forming the k(n-k) pairs
        return n * (maps * in_top).sum(dim=1) - k * maps.sum(dim=1)
    neg_inf = torch.tensor(float("-inf"), dtype=maps.dtype, device=maps.device)
    log_a = torch.logsumexp(torch.where(in_top, -maps, neg_inf), dim=1)
    log_r = torch.logsumexp(torch.where(in_top, neg_inf, maps), dim=1)
    return -torch.exp(log_a + log_r)


def _top_mask(maps: torch.Tensor, k: int) -> torch.Tensor:
    top = _order(maps.detach())[:, :k]
    return torch.zeros(maps.shape, dtype=torch.bool, device=maps.device).scatter_(1, top, True)


def topk_pair_gap(maps: torch.Tensor, k: int, pairs: str = "all", transform: str = "linear",
                  n_pairs: int = 0) -> torch.Tensor:
    """G_k per row: the (transformed) gaps between top-k features and the rest; ranking detached."""
    if pairs == "all":
        return _all_pairs_gap(maps, _top_mask(maps, k), k, maps.shape[1], transform)
    return pair_gap_from_indices(maps, *pair_indices(maps, k, pairs, n_pairs), pairs, transform)


def topk_pair_gap_backward(grad: torch.Tensor, maps: torch.Tensor, hi: torch.Tensor, lo: torch.Tensor,
                           pairs: str, transform: str) -> torch.Tensor:
    """dG/dmaps times ``grad`` from the chosen indices (the native backward's twin, differentiable)."""
    n = maps.shape[1]
    g = grad[:, None]
    if pairs == "all":
        k = hi.shape[1]
        in_top = torch.zeros(maps.shape, dtype=torch.bool, device=maps.device).scatter_(1, hi, True)
        if transform == "linear":
            return g * torch.where(in_top, float(n - k), float(-k)).to(maps.dtype)
        neg_inf = torch.tensor(float("-inf"), dtype=maps.dtype, device=maps.device)
        log_a = torch.logsumexp(torch.where(in_top, -maps, neg_inf), dim=1, keepdim=True)
        log_r = torch.logsumexp(torch.where(in_top, neg_inf, maps), dim=1, keepdim=True)
        return g * torch.where(in_top, torch.exp(-maps + log_r), -torch.exp(maps + log_a))
    coef = g.expand(hi.shape) if transform == "linear" else g * torch.exp(
        -(maps.gather(1, hi) - maps.gather(1, lo)))
    return torch.zeros_like(maps).scatter_add(1, hi, coef).scatter_add(1, lo, -coef)


def hessian_fd_norm(grad_x: torch.Tensor, grad_xv: torch.Tensor, kappa: float) -> torch.Tensor:
    """||grad_xv - grad_x||_2 / kappa per row (finite-difference Hessian norm), accumulated in float64."""
    return ((grad_xv.double() - grad_x.double()).norm(dim=1) / kappa).to(grad_x.dtype)


def hessian_fd_norm_backward(grad: torch.Tensor, grad_x: torch.Tensor, grad_xv: torch.Tensor,
                             kappa: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(d/d grad_x, d/d grad_xv) of ``hessian_fd_norm`` times ``grad``; zero where the rows coincide."""
    diff = grad_xv - grad_x
    norm = diff.norm(dim=1, keepdim=True)
    coef = torch.where(norm > 0, grad[:, None] / (kappa * norm.clamp_min(torch.finfo(norm.dtype).tiny)),
                       torch.zeros_like(norm))
    return -coef * diff, coef * diff
