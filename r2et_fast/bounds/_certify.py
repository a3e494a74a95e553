"""``certify``: every bound of docs/spec.md §7 for one batch, as a per-sample record."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypedDict

import torch

from r2et_fast._device import compute_device, to
from r2et_fast._validation import check_k, check_positive_float
from r2et_fast.explain._score import EXPLAINER_SCORE

from ._args import resolve_norm
from ._bounds import (
    certified_topk_radius,
    cosine_bound,
    generalization_factor,
    l2_bound,
    linf_bound,
    lp_bound,
)
from ._spectral import _prepare, abs_sum_p, top_singular
from ._vanishing import warn_if_vanishing

_PER_SAMPLE = ("target", "g_norm", "xi_max", "t_e", "c", "t_e_generalized", "t_c", "t_c_rad", "t_c_deg",
               "cosine_applicable", "topk_radius", "topk_certified", "abs_sum_p", "converged", "iterations")


class _ExplainerOptions(TypedDict):
    """The explainer settings that ``certify`` passes on unchanged to each spectral routine."""

    score: str
    explainer_kwargs: Mapping[str, Any] | None


@dataclass
class Certificate:
    """Per-sample bounds for a batch (all tensors (B,) unless noted); ``kind = "first_order"``: its
    top-k radius assumes a locally linear g (see :class:`SoundCertificate` for the guarantee).

    Attributes:
        eps, norm, p, method, k: the setting ("l2" | "linf" | "lp", p its exponent).
        target: the explained class. g_norm: ||g(x)||_2.
        xi_max: largest singular value of J = dg/dx; v_max: its right singular vector (like x).
        t_e: Euclidean bound on ||g(x + delta) - g(x)||_2 over the ball (first order).
        c, t_e_generalized: the paper's generalisation factor and T'_e = c * T_e (where
            xi_max = 0, T'_e is the measured deviation itself: c * T_e would be inf * 0).
        t_c, t_c_rad, t_c_deg: cosine-distance bound, and as an angle in radians / degrees;
            cosine_applicable: T_e <= ||g|| (elsewhere the trivial bound 2 / pi / 180 degrees).
        topk_radius: first-order certified radius of the top-k set of |g|; topk_certified:
            eps < topk_radius.
        abs_sum_p: sum_ij |P_ij| (l_inf only, else None).
        converged, iterations: the Lanczos diagnostics.
    """

    kind: ClassVar[str] = "first_order"
    eps: float
    norm: str
    p: float
    method: str
    k: int
    target: torch.Tensor
    g_norm: torch.Tensor
    xi_max: torch.Tensor
    t_e: torch.Tensor
    c: torch.Tensor
    t_e_generalized: torch.Tensor
    t_c: torch.Tensor
    t_c_rad: torch.Tensor
    t_c_deg: torch.Tensor
    cosine_applicable: torch.Tensor
    topk_radius: torch.Tensor
    topk_certified: torch.Tensor
    converged: torch.Tensor
    iterations: torch.Tensor
    abs_sum_p: torch.Tensor | None = None
    v_max: torch.Tensor | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the setting and every per-sample field as a list (v_max left out)."""
        out: dict[str, Any] = {"kind": self.kind, "eps": self.eps, "norm": self.norm,
                               "p": None if math.isinf(self.p) else self.p,
                               "method": self.method, "k": self.k}
        for name in _PER_SAMPLE:
            value = getattr(self, name)
            out[name] = None if value is None else value.detach().cpu().tolist()
        return out

    def summary(self) -> dict[str, Any]:
        """Batch means (T_c over the samples where it applies) and counts, as plain floats."""
        applicable = self.cosine_applicable

        def mean(t: torch.Tensor) -> float:
            return float(t.double().mean()) if t.numel() else math.nan

        return {
            "kind": self.kind, "eps": self.eps, "norm": self.norm, "method": self.method, "k": self.k,
            "n_samples": int(self.t_e.numel()),
            "mean_xi_max": mean(self.xi_max), "mean_t_e": mean(self.t_e),
            "mean_t_e_generalized": mean(self.t_e_generalized), "mean_c": mean(self.c),
            "mean_t_c": mean(self.t_c[applicable]), "mean_t_c_deg": mean(self.t_c_deg[applicable]),
            "n_cosine_applicable": int(applicable.sum()),
            "n_topk_certified": int(self.topk_certified.sum()),
            "all_converged": bool(self.converged.all()),
        }


def certify(model: Any, x: torch.Tensor, eps: float, norm: str | float = "l2", method: str = "saliency",
            k: int = 8, target: Any = None, *, score: str = EXPLAINER_SCORE,
            explainer_kwargs: Mapping[str, Any] | None = None, solver: str = "lanczos",
            tol: float | None = None, max_iter: int = 100, seed: int = 0, chunk_size: int = 64,
            max_features: int = 4096, device: Any = None) -> Certificate:
    """Wang & Kong bounds and the first-order top-k certificate for a batch (docs/spec.md §7).

    Args:
        model: callable (B, ...) -> (B, C) scores, in eval mode.
        x: float batch (B, ...). eps: radius > 0.
        norm: "l2" (T_e = xi_max eps), "linf" (T_e = eps sqrt(sum |P_ij|), needs the full J:
            refused above ``max_features``), or a number p >= 2 (d^(1/2 - 1/p) xi_max eps).
        method: "saliency" | "gradxinput" | "ig" (signed attributions unless
            ``explainer_kwargs`` sets ``abs``).
        k: top-k size of the certificate (1 <= k < m).
        target: explained class (default: the prediction at x), kept fixed at x + delta.
        score, explainer_kwargs, solver, tol, max_iter, seed, chunk_size, max_features: as in
            :func:`top_singular` / :func:`abs_sum_p`.
        device: where it runs (default the model's device, else x's; given, a module model is
            moved there); ``x`` and ``target`` move there, and the certificate's tensors are there.

    The generalisation factor c is measured at x +- eps v_max (the larger of the two, as the sign
    of v_max is arbitrary) for every norm, as docs/spec.md §7 defines it; the paper only needs it for l2.

    Warns with :class:`~r2et_fast.bounds.VanishingJacobianWarning` when some sample has
    xi_max = 0 exactly (e.g. the logit saliency of a ReLU network, whose input Hessian autograd
    takes as 0): its T_e is 0 and its top-k radius infinite, which is not robustness. The values
    are kept (they are the first-order numbers); see :mod:`r2et_fast.bounds._vanishing`.
    """
    kind, p = resolve_norm(norm)
    eps = check_positive_float(eps, "eps")
    if isinstance(x, torch.Tensor):
        where = compute_device(device, model, x)
        x, target = to(x, where), to(target, where)
    explainer, labels = _prepare(model, x, method, target, score, explainer_kwargs)
    opts: _ExplainerOptions = {"score": score, "explainer_kwargs": explainer_kwargs}
    spec = top_singular(model, x, method, labels, solver=solver, tol=tol, max_iter=max_iter, seed=seed,
                        chunk_size=chunk_size, max_features=max_features, **opts)
    g0 = spec.attribution
    check_k(k, g0.shape[1])
    n = x[0].numel()
    sum_p = None
    if kind == "l2":
        t_e = l2_bound(spec.xi_max, eps)
    elif kind == "lp":
        t_e = lp_bound(spec.xi_max, eps, p, n)
    else:
        sum_p = abs_sum_p(model, x, method, labels, chunk_size=chunk_size, max_features=max_features, **opts)
        t_e = linf_bound(sum_p, eps)

    # c: the Taylor error along +-eps v_max, both signs in one batched call
    shifted = torch.cat([x.detach() + eps * spec.v_max, x.detach() - eps * spec.v_max])
    with torch.no_grad():
        g_shift = explainer.attribute(shifted, target=labels.repeat(2)).flatten(1)
    dev = (g_shift - g0.repeat(2, 1)).norm(dim=1).view(2, -1).amax(dim=0)
    c = generalization_factor(dev, spec.xi_max, eps)
    warn_if_vanishing(spec.xi_max, dev, model, method, score)

    g_norm = g0.norm(dim=1)
    cos = cosine_bound(t_e, g_norm)
    radius = certified_topk_radius(g0, k, t_e / eps)
    # c * T_e = max(T_e, dev) for l2; where xi_max = 0 it is inf * 0, and max(0, dev) = dev
    t_e_generalized = torch.where(spec.xi_max > 0, c * t_e, dev)
    return Certificate(
        eps=eps, norm=kind, p=p, method=method, k=k, target=labels, g_norm=g_norm, xi_max=spec.xi_max,
        t_e=t_e, c=c, t_e_generalized=t_e_generalized, t_c=cos.distance, t_c_rad=cos.angle_rad,
        t_c_deg=cos.angle_deg, cosine_applicable=cos.applicable, topk_radius=radius,
        topk_certified=eps < radius, converged=spec.converged, iterations=spec.iterations,
        abs_sum_p=sum_p, v_max=spec.v_max)
