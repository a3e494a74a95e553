"""Sound top-k certificates from :mod:`r2et_fast.bounds._sound` (docs/spec.md §7, "Sound certificates").

* :func:`sound_topk_radius`: per sample the largest eps (bisection) at which the bounds prove that
  T_k(x), the clean top-k of I, cannot change anywhere in the ball.
* :func:`sound_precision_at_k`: a sound lower bound on P@k over the whole ball at a given eps.
* :func:`sound_certify`: both, over an eps grid, as a :class:`SoundCertificate` record (its
  ``curve`` is the data set's certified P@k curve).

Every radius reported was checked: the bisection only moves its lower end to radii at which the
certificate holds, so the result is sound even where rounding made the bounds non-monotone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from r2et_fast._validation import check_k, check_nonnegative_float, check_positive_float, check_positive_int

from ._sound import _Problem, bounds_at, certified_precision, certified_topk, eps_tensor, prepare


def _clean_top(problem: _Problem, k: int) -> torch.Tensor:
    """T_k (B, k) of the clean map: the bounds at eps = 0 enclose it within the rounding margin."""
    zero = torch.zeros(problem.x.shape[0], dtype=torch.float64, device=problem.x.device)
    lower, upper, _, _ = bounds_at(problem, zero)
    check_k(k, lower.shape[1])
    return ((lower + upper) / 2).topk(k, dim=1).indices


def _holds(problem: _Problem, eps: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    lower, upper, _, _ = bounds_at(problem, eps)
    return certified_topk(lower, upper, top)


def _radius(problem: _Problem, top: torch.Tensor, eps_max: float, iterations: int
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(radius, at_top): bisection in log eps between eps_max * 1e-12 and eps_max, batched. Only
    radii at which the certificate was checked become the lower end; 0 where even the smallest
    fails; eps_max (``at_top``) where the largest holds (the true radius may be larger)."""
    b = problem.x.shape[0]
    dev = problem.x.device
    hi = torch.full((b,), eps_max, dtype=torch.float64, device=dev)
    lo = hi * 1e-12
    at_top = _holds(problem, hi, top)
    start = _holds(problem, lo, top)
    for _ in range(iterations):
        mid = (lo * hi).sqrt()
        ok = _holds(problem, mid, top)
        lo, hi = torch.where(ok, mid, lo), torch.where(ok, hi, mid)
    radius = torch.where(start, lo, torch.zeros_like(lo))
    return torch.where(at_top, torch.full_like(lo, eps_max), radius), at_top


@torch.no_grad()
def sound_topk_radius(model: Any, x: torch.Tensor, k: int = 8, *, norm: str = "linf", score: str = "logit",
                      target: Any = None, method: str = "saliency", eps_max: float = 1.0,
                      iterations: int = 30) -> torch.Tensor:
    """(B,) radii r such that T_k(x) of I provably stays the top-k set for every ||x' - x|| <= r.

    ``eps_max`` tops the bisection bracket (a sample certified there gets eps_max); ``iterations``
    bisection steps in log eps. Other arguments as :func:`sound_saliency_bounds`.
    """
    problem = prepare(model, x, norm, score, method, target)
    eps_max = check_positive_float(eps_max, "eps_max")
    iterations = check_positive_int(iterations, "iterations")
    return _radius(problem, _clean_top(problem, k), eps_max, iterations)[0]


@torch.no_grad()
def sound_precision_at_k(model: Any, x: torch.Tensor, eps: float | torch.Tensor, k: int = 8, *,
                         norm: str = "linf", score: str = "logit", target: Any = None,
                         method: str = "saliency") -> torch.Tensor:
    """(B,) certified lower bound of P@k = |T_k(x) n T_k(x')| / k over the whole ball."""
    problem = prepare(model, x, norm, score, method, target)
    top = _clean_top(problem, k)
    lower, upper, _, _ = bounds_at(problem, eps_tensor(eps, problem.x.shape[0], problem.x.device))
    return certified_precision(lower, upper, top)


@dataclass
class SoundCertificate:
    """The sound certificate of a batch (``kind = "sound"``; :class:`Certificate` is the first-order one).

    Attributes:
        norm, score, method, k, eps_max, iterations: the setting.
        eps: the grid of radii of ``precision_at_k``.
        target: (B,) explained class. top: (B, k) the clean T_k.
        radius: (B,) certified top-k radius; radius_at_top: (B,) bool, the bracket top was certified.
        precision_at_k: (B, len(eps)) certified lower bounds of P@k.
    """

    kind: ClassVar[str] = "sound"
    norm: str
    score: str
    method: str
    k: int
    eps_max: float
    iterations: int
    eps: tuple[float, ...]
    target: torch.Tensor
    top: torch.Tensor
    radius: torch.Tensor
    radius_at_top: torch.Tensor
    precision_at_k: torch.Tensor

    @property
    def curve(self) -> torch.Tensor:
        """(len(eps),) the certified P@k curve: the mean of the per-sample bounds."""
        return self.precision_at_k.mean(dim=0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the setting, the per-sample fields and the curve as lists."""
        return {"kind": self.kind, "norm": self.norm, "score": self.score, "method": self.method,
                "k": self.k, "eps_max": self.eps_max, "iterations": self.iterations, "eps": list(self.eps),
                "target": self.target.tolist(), "radius": self.radius.tolist(),
                "radius_at_top": self.radius_at_top.tolist(),
                "precision_at_k": self.precision_at_k.tolist(), "curve": self.curve.tolist()}

    def summary(self) -> dict[str, Any]:
        """Median radius, share certified at the bracket top, and the curve, as plain floats."""
        return {"kind": self.kind, "norm": self.norm, "score": self.score, "method": self.method,
                "k": self.k, "n_samples": int(self.radius.numel()),
                "median_radius": float(self.radius.median()) if self.radius.numel() else math.nan,
                "n_radius_at_top": int(self.radius_at_top.sum()),
                "curve": dict(zip([float(e) for e in self.eps], self.curve.tolist(), strict=True))}


@torch.no_grad()
def sound_certify(model: Any, x: torch.Tensor, k: int = 8, eps: Sequence[float] = (0.01, 0.05), *,
                  norm: str = "linf", score: str = "logit", target: Any = None, method: str = "saliency",
                  eps_max: float = 1.0, iterations: int = 30) -> SoundCertificate:
    """Sound top-k radius and certified P@k over the grid ``eps`` for a batch (docs/spec.md §7).

    Arguments as :func:`sound_topk_radius` and :func:`sound_saliency_bounds`; ``eps`` a sequence
    of radii >= 0 (the certified P@k curve's grid).
    """
    problem = prepare(model, x, norm, score, method, target)
    eps_max = check_positive_float(eps_max, "eps_max")
    iterations = check_positive_int(iterations, "iterations")
    if isinstance(eps, (str, bytes)) or not isinstance(eps, Sequence) or len(eps) == 0:
        raise ValueError(f"eps must be a non-empty sequence of radii >= 0, got {eps!r}")
    grid = tuple(check_nonnegative_float(e, "eps") for e in eps)
    top = _clean_top(problem, k)
    radius, at_top = _radius(problem, top, eps_max, iterations)
    b, dev = problem.x.shape[0], problem.x.device
    pak = []
    for e in grid:
        lower, upper, _, _ = bounds_at(problem, eps_tensor(e, b, dev))
        pak.append(certified_precision(lower, upper, top))
    return SoundCertificate(norm=problem.norm, score=problem.score, method=problem.method, k=k,
                            eps_max=eps_max, iterations=iterations, eps=grid, target=problem.target,
                            top=top, radius=radius, radius_at_top=at_top,
                            precision_at_k=torch.stack(pak, dim=1))
