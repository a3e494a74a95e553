"""The Wang & Kong (CVPR 2023) bounds as plain batched functions of per-sample tensors (docs/spec.md §7).

All bounds are first-order: they bound the deviation of the linearised attribution
g(x) + J delta, and hold for g itself where g is locally linear on the ball (Theorem 1). With
the label constraint the values are unchanged: the maximiser +-eps v_max (l2) or a box corner
(l_inf) stays feasible (paper §4.3).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from r2et_fast._validation import check_positive_float, check_positive_int

Radius = float | torch.Tensor


def _check_nonneg(t: object, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {type(t).__name__}")
    if t.dim() != 1:
        raise ValueError(f"{name} must be a 1-D per-sample tensor (B,), got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        raise ValueError(f"{name} must be finite and >= 0")
    return t


def _check_radius(eps: object, name: str = "eps") -> Radius:
    """A number > 0 or a per-sample tensor of them."""
    if isinstance(eps, torch.Tensor):
        if not eps.is_floating_point() or not bool(torch.isfinite(eps).all()) or bool((eps <= 0).any()):
            raise ValueError(f"{name} must be a finite number > 0 (every entry)")
        return eps
    return check_positive_float(eps, name)


def l2_bound(xi_max: torch.Tensor, eps: Radius) -> torch.Tensor:
    """T_e = xi_max * eps: ||g(x + delta) - g(x)||_2 for ||delta||_2 <= eps (Theorem 1).

    Attained by delta = +-eps v_max when g is linear on the ball.
    """
    return _check_nonneg(xi_max, "xi_max") * _check_radius(eps)


def lp_bound(xi_max: torch.Tensor, eps: Radius, p: float, n_features: int) -> torch.Tensor:
    """T_e = d^(1/2 - 1/p) * xi_max * eps for ||delta||_p <= eps, p >= 2 (Corollary 1).

    The l_p ball lies in the l2 ball of radius d^(1/2 - 1/p) eps; p = inf gives sqrt(d).
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or math.isnan(p) or p < 2:
        raise ValueError(f"p must be a number >= 2, got {p!r}")
    d = check_positive_int(n_features, "n_features")
    return l2_bound(xi_max, eps) * d ** (0.5 - 1.0 / p)


def linf_bound(abs_sum_p: torch.Tensor, eps: Radius) -> torch.Tensor:
    """T_e = eps * sqrt(sum_ij |P_ij|), P = J^T J, for ||delta||_inf <= eps (Theorem 2).

    delta^T P delta <= sum_ij |P_ij| |delta_i| |delta_j| <= eps^2 sum_ij |P_ij|. Usually far
    tighter than the sqrt(d) relaxation (P is diagonally dominant), though not always: the
    minimum of the two is also a valid bound.
    """
    return _check_nonneg(abs_sum_p, "abs_sum_p").sqrt() * _check_radius(eps)


class CosineBound(NamedTuple):
    """Bound on the cosine distance D_c = 1 - cos(g(x + delta), g(x)) (Corollary 2).

    distance: 1 - sqrt(1 - T_e^2 / ||g||^2); angle_rad / angle_deg: the same bound as the angle
    arccos(1 - D_c) = arcsin(T_e / ||g||); applicable: T_e <= ||g||. Where not applicable the
    fields hold the trivial bound (distance 2, angle pi / 180 degrees): g(x + delta) may point
    anywhere once the ball around g(x) contains the origin.
    """

    distance: torch.Tensor
    angle_rad: torch.Tensor
    angle_deg: torch.Tensor
    applicable: torch.Tensor


def cosine_bound(t_e: torch.Tensor, g_norm: torch.Tensor) -> CosineBound:
    """T_c from the Euclidean bound ``t_e`` and ||g(x)||_2 (both (B,))."""
    _check_nonneg(t_e, "t_e")
    _check_nonneg(g_norm, "g_norm")
    if t_e.shape != g_norm.shape:
        raise ValueError(f"t_e and g_norm must have the same shape, got {tuple(t_e.shape)} "
                         f"and {tuple(g_norm.shape)}")
    applicable = (t_e <= g_norm) & (g_norm > 0)
    ratio = torch.where(applicable, t_e / g_norm.clamp_min(torch.finfo(g_norm.dtype).tiny), 1.0)
    ratio = ratio.clamp(max=1.0)
    # 1 - sqrt(1 - r^2) written as r^2 / (1 + sqrt(1 - r^2)): the same number without the
    # cancellation that rounds small bounds (r ~ 1e-4 in float32) to 0
    distance = torch.where(applicable, ratio.square() / (1 + torch.sqrt(1 - ratio.square())), 2.0)
    angle = torch.where(applicable, torch.asin(ratio), math.pi)
    return CosineBound(distance, angle, torch.rad2deg(angle), applicable)


def generalization_factor(shift_deviation: torch.Tensor, xi_max: torch.Tensor, eps: Radius) -> torch.Tensor:
    """c = max{1, ||g(x + eps v_max) - g(x)||_2 / (xi_max eps)} (paper Eq. 11); T'_e = c T_e.

    ``shift_deviation`` is the measured ||g(x + eps v_max) - g(x)|| (``certify`` takes the larger
    of +-v_max, since the sign of a singular vector is arbitrary). xi_max = 0 gives c = 1 if g did
    not move and inf otherwise.
    """
    _check_nonneg(shift_deviation, "shift_deviation")
    scale = l2_bound(xi_max, eps)
    ratio = torch.where(scale > 0, shift_deviation / scale.clamp_min(torch.finfo(scale.dtype).tiny),
                        torch.where(shift_deviation > 0, math.inf, 1.0))
    return ratio.clamp_min(1.0)


def certified_topk_radius(attribution: torch.Tensor, k: int, rate: torch.Tensor) -> torch.Tensor:
    """First-order certified radius of the top-k set T_k of I = |g(x)| (docs/spec.md §7, this project's).

    A first-order certificate, not a guarantee for the nonlinear g: if ||g(x + delta) - g(x)||_2
    <= eps * rate, every gap I_i - I_j (i in T_k, j outside) moves by at most
    |dI_i| + |dI_j| <= sqrt(2) eps rate, so T_k cannot change while
    eps < (I_(k) - I_(k+1)) / (sqrt(2) rate), with I sorted descending.

    Args:
        attribution: (B, m) attributions g(x) (their absolute values are ranked).
        k: size of the top set, 1 <= k < m.
        rate: (B,) the Euclidean bound per unit radius, T_e / eps: xi_max for l2,
            sqrt(sum |P_ij|) for l_inf, d^(1/2 - 1/p) xi_max for l_p.

    Returns:
        (B,) radii; 0 where I_(k) = I_(k+1) (a tie), inf where rate = 0 and the gap is positive.
    """
    if not isinstance(attribution, torch.Tensor) or not attribution.is_floating_point():
        raise TypeError("attribution must be a floating-point tensor")
    if attribution.dim() != 2:
        raise ValueError(f"attribution must be (B, m), got shape {tuple(attribution.shape)}")
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if not 1 <= k < attribution.shape[1]:
        raise ValueError(f"k must satisfy 1 <= k < m (m = {attribution.shape[1]}), got k = {k}")
    _check_nonneg(rate, "rate")
    top = attribution.abs().topk(k + 1, dim=1).values
    gap = top[:, k - 1] - top[:, k]
    radius = gap / (math.sqrt(2) * rate.to(gap.dtype))
    return torch.where(gap > 0, radius, torch.zeros_like(radius))
