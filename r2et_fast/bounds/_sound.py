"""Sound bounds on the saliency over an eps-ball (docs/spec.md §7, "Sound certificates").

:func:`sound_saliency_bounds` gives, element-wise, L <= I(x') <= U for *every* x' with
||x' - x|| <= eps, where I = |ds/dx| (``method="saliency"``) or |ds/dx * x| (``"gradxinput"``) and
s is the logit z_c or the cross-entropy at c. It propagates intervals forward (pre-activations),
bounds each activation's derivative over them, bounds ds/dz at the output (the one-hot vector
for the logit; p - e_c with the softmax bounded from the logit intervals for the loss) and
propagates intervals back (:mod:`r2et_fast.bounds._interval`). Unlike the Wang & Kong bounds and
the first-order certificate these assume nothing about local linearity: they are guarantees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from r2et_fast._validation import NORMS, check_choice, check_tensor

from ._args import check_x, resolve_target
from ._interval import ABS, REL, Layer, backward_boxes, forward_boxes, layers_of, mul_box

#: Scores and attributions the sound bounds support.
SOUND_SCORES = ("logit", "loss")
SOUND_METHODS = ("saliency", "gradxinput")


@dataclass
class SaliencyBounds:
    """Element-wise bounds over the ball, all (B, n) with n = x[0].numel() (flattened like x).

    Attributes:
        lower, upper: bounds of the ranked map I = |attribution| (what T_k is taken of).
        grad_lower, grad_upper: bounds of the signed gradient ds/dx.
        eps: (B,) the radius per sample. target: (B,) the explained class (fixed on the ball).
        norm, score, method: the setting.
    """

    lower: torch.Tensor
    upper: torch.Tensor
    grad_lower: torch.Tensor
    grad_upper: torch.Tensor
    eps: torch.Tensor
    target: torch.Tensor
    norm: str
    score: str
    method: str


@dataclass
class _Problem:
    """A checked call: the layers, x in float64, the class, the setting (reused by the bisection)."""

    layers: list[Layer]
    x: torch.Tensor
    target: torch.Tensor
    norm: str
    score: str
    method: str


def prepare(model: Any, x: object, norm: object, score: object, method: object, target: object) -> _Problem:
    """Check every argument once (each error names its argument) and read the layers."""
    check_choice(norm, "norm", NORMS)
    check_choice(score, "score", SOUND_SCORES)
    check_choice(method, "method", SOUND_METHODS)
    xt = check_x(x, model)
    layers = layers_of(model)
    labels = resolve_target(model, xt, target)
    return _Problem(layers, xt.detach().to(torch.float64), labels, str(norm), str(score), str(method))


def eps_tensor(eps: object, batch: int, device: torch.device) -> torch.Tensor:
    """A radius >= 0: a number, or a per-sample tensor (B,), as float64 (B,)."""
    if isinstance(eps, torch.Tensor):
        if eps.dim() == 0:
            eps = eps.reshape(1).expand(batch)
        if eps.dim() != 1 or eps.shape[0] != batch:
            raise ValueError(f"eps must be a number or a per-sample tensor ({batch},), got shape "
                             f"{tuple(eps.shape)}")
        if eps.dtype.is_complex or eps.dtype == torch.bool:
            raise TypeError(f"eps must be a real tensor, got dtype {eps.dtype}")
        e = eps.detach().to(device=device, dtype=torch.float64)
    else:
        if isinstance(eps, bool) or not isinstance(eps, (int, float)):
            raise TypeError(f"eps must be a number >= 0 or a tensor, got {type(eps).__name__}")
        e = torch.full((batch,), float(eps), dtype=torch.float64, device=device)
    if not bool(torch.isfinite(e).all()) or bool((e < 0).any()):
        raise ValueError("eps must be finite and >= 0 (every entry)")
    return e


def softmax_box(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of softmax(z) for z in [lo, hi] (B, C): p_i grows with z_i and falls with every other
    z_j, so p_i >= e^lo_i / (e^lo_i + sum_{j != i} e^hi_j) and symmetrically (log-sum-exp form)."""
    c = lo.shape[1]
    eye = torch.eye(c, dtype=torch.bool, device=lo.device)
    low = torch.where(eye, lo.unsqueeze(2).expand(-1, c, c), hi.unsqueeze(1).expand(-1, c, c))
    high = torch.where(eye, hi.unsqueeze(2).expand(-1, c, c), lo.unsqueeze(1).expand(-1, c, c))
    p_lo = (lo - torch.logsumexp(low, dim=2)).exp()
    p_hi = (hi - torch.logsumexp(high, dim=2)).exp()
    return (p_lo * (1 - REL) - ABS).clamp_min(0.0), (p_hi * (1 + REL) + ABS).clamp_max(1.0)


def _score_grad_box(lo: torch.Tensor, hi: torch.Tensor, target: torch.Tensor, score: str
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of v = ds/dz over the logit box [lo, hi] (B, C), as :func:`select_score` defines s."""
    if lo.shape[1] == 1:  # one output: s = z, or BCE(z, c) with ds/dz = sigmoid(z) - c
        if score == "logit":
            return torch.ones_like(lo), torch.ones_like(hi)
        y = target.to(lo.dtype).unsqueeze(1)
        s_lo = (torch.sigmoid(lo) * (1 - REL) - ABS).clamp_min(0.0)
        s_hi = (torch.sigmoid(hi) * (1 + REL) + ABS).clamp_max(1.0)
        return s_lo - y, s_hi - y
    onehot = F.one_hot(target, lo.shape[1]).to(lo.dtype)
    if score == "logit":
        return onehot, onehot.clone()
    p_lo, p_hi = softmax_box(lo, hi)
    return p_lo - onehot, p_hi - onehot


def abs_box(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of |t| for t in [lo, hi]: 0 below when the interval holds 0."""
    mag = torch.minimum(lo.abs(), hi.abs())
    return torch.where((lo <= 0) & (hi >= 0), torch.zeros_like(mag), mag), torch.maximum(lo.abs(), hi.abs())


def bounds_at(problem: _Problem, eps: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(lower, upper, grad_lower, grad_upper) of the ranked map, each (B, n), at radii ``eps`` (B,)."""
    boxes = forward_boxes(problem.layers, problem.x, eps, problem.norm)
    v_lo, v_hi = _score_grad_box(boxes.out_lo, boxes.out_hi, problem.target, problem.score)
    g_lo, g_hi = backward_boxes(problem.layers, boxes, v_lo, v_hi)
    g_lo, g_hi = g_lo.flatten(1), g_hi.flatten(1)
    if problem.method == "gradxinput":  # x'_i lies in [x_i - eps, x_i + eps] for both norms
        x = problem.x.flatten(1)
        e = eps.unsqueeze(1)
        slack = REL * (x.abs() + e)  # x - e may cancel: widen by more than its rounding
        a_lo, a_hi = mul_box(g_lo, g_hi, x - e - slack, x + e + slack)
    else:
        a_lo, a_hi = g_lo, g_hi
    lower, upper = abs_box(a_lo, a_hi)
    return lower, upper, g_lo, g_hi


@torch.no_grad()
def sound_saliency_bounds(model: Any, x: torch.Tensor, eps: float | torch.Tensor, norm: str = "linf",
                          score: str = "logit", target: Any = None, method: str = "saliency"
                          ) -> SaliencyBounds:
    """Element-wise bounds of the attribution map valid on the whole ball ||x' - x|| <= eps.

    Args:
        model: an ``nn.Module`` in eval mode made of Linear / Conv2d (zero padding) / AvgPool2d /
            Flatten and ReLU / LeakyReLU / Softplus / Tanh / Sigmoid layers, in ``nn.Sequential``
            (nested) or the package's ``TabularMLP``. Max pooling is refused (ValueError), as is
            any other layer.
        x: float batch (B, ...), finite. eps: radius >= 0, a number or a (B,) tensor.
        norm: "linf" or "l2" (the first Linear/Conv2d uses the exact l2 radius eps ||row||_2).
        score: "logit" (ds/dx of z_c) or "loss" (cross-entropy at c).
        target: the class c (int or (B,) integers); default the prediction at x, kept fixed.
        method: "saliency" (|ds/dx|) or "gradxinput" (|ds/dx * x'|).

    At eps = 0 the bounds enclose the exact map within the rounding margin (relative 1e-9).
    """
    problem = prepare(model, x, norm, score, method, target)
    e = eps_tensor(eps, problem.x.shape[0], problem.x.device)
    lower, upper, g_lo, g_hi = bounds_at(problem, e)
    return SaliencyBounds(lower, upper, g_lo, g_hi, e, problem.target, problem.norm, problem.score,
                          problem.method)


def certified_topk(lower: torch.Tensor, upper: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """(B,) bool: min over T_k of ``lower`` > max over the rest of ``upper`` (strict: ties never
    certify). ``top`` (B, k) holds the indices of T_k."""
    check_tensor(top, "top")
    rest = torch.ones_like(upper, dtype=torch.bool).scatter(1, top, False)
    worst_in = lower.gather(1, top).amin(dim=1)
    best_out = torch.where(rest, upper, torch.full_like(upper, -torch.inf)).amax(dim=1)
    return worst_in > best_out


def certified_precision(lower: torch.Tensor, upper: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """(B,) sound lower bound of P@k on the ball: the share of i in T_k for which fewer than k
    other features j have U_j >= L_i. At any x' of the ball, a j ranked at or above such an i has
    U_j >= I_j(x') >= I_i(x') >= L_i, so at most k - 1 features precede i under any tie-break."""
    k = top.shape[1]
    low_in = lower.gather(1, top)  # (B, k)
    # i's own U_i >= L_i always counts: subtract it
    reach = (upper.unsqueeze(1) >= low_in.unsqueeze(2)).sum(dim=2) - 1
    return (reach < k).sum(dim=1).to(torch.float64) / k
