"""Top-k ranking thickness (SPEC §2): how much of a neighbourhood keeps the clean top-k ranking.

For a sample x with explanation I(x) and its top-k set T_k(x),

    Θ_k(x) = 1/(k(n-k)) Σ_{i∈T_k(x)} Σ_{j∉T_k(x)} E_{x_s~D} ∫₀¹ 1[I_i(x_t) - I_j(x_t) >= 0] dt,

with x_t = (1-t)·x + t·x_s. The Monte-Carlo estimator draws S points x_s, takes T points
t = 1/T, 2/T, ..., 1 on each segment (a right Riemann sum) and counts the satisfied pairs of
every path point with ``topk_pair_agreement`` (O(n log n) per point, natively).

The explanation is given as a function ``explain_fn(z, index)``:

* ``z`` is a batch (R, ...) of path points (same trailing shape and dtype as ``x``);
* ``index`` is a LongTensor (R,) on ``x``'s device: row r of ``z`` lies on a path from sample
  ``x[index[r]]``, so per-sample arguments are repeated with it, e.g.
  ``lambda z, i: Saliency(model, score="loss").attribute(z, target=y[i])``;
* it returns the explanations (R, n...) (any trailing shape; flattened to (R, n)).

Path points of all samples are explained together, ``batch_size`` rows per call.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import NamedTuple

import torch

from r2et_fast import _backend, _ops
from r2et_fast import _validation as v
from r2et_fast.ops import topk_indices
from r2et_fast.reference import thickness as _reference

__all__ = ["DISTRIBUTIONS", "NORMS", "ThicknessResult", "topk_pair_agreement", "topk_thickness"]

DISTRIBUTIONS = ("uniform", "gaussian", "points")
NORMS = ("linf", "l2")

ExplainFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class ThicknessResult(NamedTuple):
    """``per_sample``: (B,) float64 Θ_k of every sample; ``model_level``: their mean."""

    per_sample: torch.Tensor
    model_level: float


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
    if _backend.resolve("topk_pair_agreement", maps.device.type, backend) == "native":
        return _ops.native("topk_pair_agreement")(maps, top)  # the kernel checks the values
    _check_top_values(top, maps.shape[1])
    v.check_finite(maps, "maps")
    return _reference.topk_pair_agreement(maps, top)


# ---- the estimator -------------------------------------------------------------------------------

def _check_number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _explain(explain_fn: ExplainFn, z: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """explain_fn(z, index) as detached (R, n) maps, checked."""
    maps = explain_fn(z, index)
    if not isinstance(maps, torch.Tensor):
        raise TypeError(f"explain_fn must return a torch.Tensor, got {type(maps).__name__}")
    if maps.dim() < 2 or maps.shape[0] != z.shape[0]:
        raise ValueError(f"explain_fn must return one map per input row ({z.shape[0]}, ...), got "
                         f"shape {tuple(maps.shape)}")
    if maps.dtype not in v.FLOAT_DTYPES:
        raise TypeError(f"explain_fn must return float32 or float64 maps, got {maps.dtype}")
    maps = maps.detach().flatten(1)
    if not bool(torch.isfinite(maps).all()):
        raise ValueError("explain_fn returned NaN or Inf")
    return maps


def _draw_points(x: torch.Tensor, distribution: str, n_samples: int, eps: float, sigma: float,
                 norm: str, gen: torch.Generator) -> torch.Tensor:
    """(B, S, ...) samples of D around every x (the caller's generator, never the global RNG)."""
    shape = (x.shape[0], n_samples, *x.shape[1:])
    opts = {"generator": gen, "dtype": x.dtype, "device": x.device}
    center = x.unsqueeze(1)
    if distribution == "gaussian":
        return center + sigma * torch.randn(shape, **opts)
    if norm == "linf":  # uniform in the box [x - eps, x + eps]
        return center + eps * (2 * torch.rand(shape, **opts) - 1)
    # Uniform in the l2 ball: a uniform direction, radius eps * U^(1/d).
    d = math.prod(x.shape[1:])
    direction = torch.randn((*shape[:2], d), **opts)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    radius = eps * torch.rand((*shape[:2], 1), **opts).pow(1.0 / d)
    return center + (radius * direction).view(shape)


def topk_thickness(explain_fn: ExplainFn, x: torch.Tensor, k: int, *, distribution: str = "uniform",
                   eps: float = 0.1, sigma: float = 0.1, points: torch.Tensor | None = None,
                   n_samples: int | None = None, n_path: int = 10, batch_size: int = 1024,
                   seed: int = 0, norm: str = "linf", backend: str | None = None) -> ThicknessResult:
    """Monte-Carlo top-k thickness Θ_k of every sample of ``x`` (SPEC §2).

    Args:
        explain_fn: ``explain_fn(z, index) -> maps`` (see the module docstring): explanations of
            the rows of ``z``, row r being a point of sample ``index[r]``.
        x: (B, ...) float32/float64 inputs, finite.
        k: size of the top-k set, 1 <= k < n (n = features of one explanation).
        distribution: ``"uniform"`` (in the ``eps``-ball of ``norm``), ``"gaussian"``
            (N(x, sigma² I); ``norm`` and ``eps`` unused) or ``"points"`` (the given ``points``).
        eps: radius of the ball for ``"uniform"``.
        sigma: standard deviation for ``"gaussian"``.
        points: (B, S, ...) end points x_s for ``"points"`` (e.g. adversarial examples).
        n_samples: S, the end points per sample (default 16; for ``"points"``, points.shape[1]).
        n_path: T, the points t = 1/T, ..., 1 on each segment.
        batch_size: rows per ``explain_fn`` call (path points of several samples together).
        seed: seeds a private ``torch.Generator`` on x's device (the global RNG is untouched);
            the result does not depend on ``batch_size``.
        norm: ``"linf"`` (uniform in the box) or ``"l2"`` (uniform in the ball).
        backend: backend of the ranking ops (``topk_indices``, ``topk_pair_agreement``).

    Returns:
        ThicknessResult(per_sample (B,) float64 on x's device, model_level = their mean).
    """
    if not callable(explain_fn):
        raise TypeError(f"explain_fn must be callable, got {type(explain_fn).__name__}")
    v.check_batch(x, "x")
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    eps, sigma = _check_number(eps, "eps"), _check_number(sigma, "sigma")
    for name, value in (("n_path", n_path), ("batch_size", batch_size)):
        v.check_positive_int(value, name)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if n_samples is not None:
        v.check_positive_int(n_samples, "n_samples")
    x = x.detach()
    batch = x.shape[0]
    if distribution == "points":
        if points is None:
            raise ValueError("distribution='points' needs points (B, S, ...)")
        v.check_tensor(points, "points")
        if points.dim() != x.dim() + 1 or points.shape[0] != batch or points.shape[2:] != x.shape[1:] \
                or points.shape[1] == 0:
            raise ValueError(f"points must have shape (B, S, ...) = ({batch}, S, "
                             f"{', '.join(map(str, x.shape[1:]))}) with S >= 1, got {tuple(points.shape)}")
        if points.dtype != x.dtype:
            raise TypeError(f"points must have the dtype of x ({x.dtype}), got {points.dtype}")
        if points.device != x.device:
            raise ValueError(f"points must be on the device of x ({x.device}), got {points.device}")
        v.check_finite(points, "points")
        if n_samples is not None and n_samples != points.shape[1]:
            raise ValueError(f"n_samples ({n_samples}) must equal points.shape[1] ({points.shape[1]})")
        ends = points.detach()
    else:
        if points is not None:
            raise ValueError(f"points are only used with distribution='points', got {distribution!r}")
        gen = torch.Generator(device=x.device)
        gen.manual_seed(int(seed))
        ends = _draw_points(x, distribution, 16 if n_samples is None else n_samples, eps, sigma,
                            norm, gen)
    n_s, n_t = ends.shape[1], n_path
    delta = ends - x.unsqueeze(1)  # (B, S, ...): x_t = x + (t/T) * delta, exactly x when x_s = x

    # T_k of the clean explanations.
    rows = torch.arange(batch, device=x.device)
    clean = torch.cat([_explain(explain_fn, x[r0:r0 + batch_size], rows[r0:r0 + batch_size])
                       for r0 in range(0, batch, batch_size)])
    v.check_k(k, clean.shape[1])
    top = topk_indices(clean, k, backend=backend)

    # Every path point: flat id q = (s * T + (t - 1)) * B + b, explained batch_size rows at a time.
    # Satisfied pairs are summed as exact integers (deterministic, also with CUDA atomics): the
    # agreement of float64 maps is count / pairs to within 1 ulp, so rounding recovers the count.
    pairs = k * (clean.shape[1] - k)
    satisfied = torch.zeros(batch, dtype=torch.int64, device=x.device)
    n_rows = n_s * n_t * batch
    for q0 in range(0, n_rows, batch_size):
        q = torch.arange(q0, min(q0 + batch_size, n_rows), device=x.device)
        b, c = q % batch, q // batch
        s, t = c // n_t, c % n_t + 1
        alpha = (t.to(x.dtype) / n_t).view(-1, *([1] * (x.dim() - 1)))
        z = x[b] + alpha * delta[b, s]
        maps = _explain(explain_fn, z, b)
        if maps.shape[1] != clean.shape[1]:
            raise ValueError(f"explain_fn returned {maps.shape[1]} features on path points but "
                             f"{clean.shape[1]} on x")
        agree = topk_pair_agreement(maps.to(torch.float64), top[b], backend=backend)
        satisfied.index_add_(0, b, torch.round(agree * pairs).to(torch.int64))
    per_sample = satisfied.to(torch.float64) / (pairs * n_s * n_t)
    return ThicknessResult(per_sample, float(per_sample.mean()))
