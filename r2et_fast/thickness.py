"""Top-k ranking thickness (docs/spec.md §2): how much of a neighbourhood keeps the clean top-k ranking.

For a sample x with explanation I(x) and its top-k set T_k(x),

    Θ_k(x) = 1/(k(n-k)) Σ_{i∈T_k(x)} Σ_{j∉T_k(x)} E_{x_s~D} ∫₀¹ 1[I_i(x_t) - I_j(x_t) >= 0] dt,

with x_t = (1-t)·x + t·x_s. The Monte-Carlo estimator draws S points x_s, takes T points
t = 1/T, 2/T, ..., 1 on each segment (a right Riemann sum) and counts the satisfied pairs of
every path point with ``topk_pair_agreement`` (O(n log n) per point, natively).

The explanation is given in one of two ways:

* an :class:`~r2et_fast.explain.Explainer` or a Captum adapter (:func:`r2et_fast.explain.from_captum`):
  every path point is explained for the class of its sample, ``target`` (B,) repeated along the
  paths, by default the clean prediction at x (not the prediction at the path point, so the
  explained class stays fixed along a path);
* a function ``explain_fn(z, index)`` (``target`` is then not used: the function picks it):

  - ``z`` is a batch (R, ...) of path points (same trailing shape and dtype as ``x``);
  - ``index`` is a LongTensor (R,) on ``x``'s device: row r of ``z`` lies on a path from sample
    ``x[index[r]]``, so per-sample arguments are repeated with it, e.g.
    ``lambda z, i: Saliency(model, score=TRAINING_SCORE).attribute(z, target=y[i])`` (the loss, as
    R2ET's authors explain it; see :mod:`r2et_fast.explain._score`);
  - it returns the explanations (R, n...) (any trailing shape; flattened to (R, n)).

  Note the second argument is the sample index, not a target as in the attacks' ``f(x, target)``.

Path points of all samples are explained together, ``batch_size`` rows per call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple, TypedDict, cast

import torch

from r2et_fast import _distributed
from r2et_fast import _validation as v
from r2et_fast._device import compute_device, to
from r2et_fast.explain._attribution import as_attribution, attribution_model
from r2et_fast.explain._score import predict
from r2et_fast.ops.ranking import topk_indices
from r2et_fast.ops.thickness import topk_pair_agreement

__all__ = ["DISTRIBUTIONS", "NORMS", "ThicknessResult", "topk_pair_agreement", "topk_thickness"]

DISTRIBUTIONS = ("uniform", "gaussian", "points")
NORMS = v.NORMS

ExplainFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class ThicknessResult(NamedTuple):
    """``per_sample``: (B,) float64 Θ_k of every sample; ``model_level``: their mean."""

    per_sample: torch.Tensor
    model_level: float


# ---- the estimator -------------------------------------------------------------------------------

def _as_explain_fn(explain_fn: object, x: torch.Tensor, target: object, batch_size: int) -> ExplainFn:
    """``explain_fn(z, index)`` from an Explainer / Captum adapter (with the targets of the samples)
    or the given function itself."""
    model = attribution_model(explain_fn)
    if model is None:
        v.check_callable(explain_fn, "explain_fn")
        if target is not None:
            raise ValueError("target is only used with an Explainer or a from_captum adapter; a "
                             "function explain_fn(z, index) chooses its own targets from the index")
        return cast(ExplainFn, explain_fn)
    labels = v.prepare_target(target, x)
    if labels is None:  # the clean prediction, batch_size rows per forward pass
        labels = torch.cat([predict(model, x[r0:r0 + batch_size]) for r0 in range(0, x.shape[0], batch_size)])
    attribute = as_attribution(explain_fn, "explain_fn")
    return lambda z, index: attribute(z, labels[index], False)


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


class _DrawOptions(TypedDict):
    """The keyword arguments shared by every ``torch.rand``/``torch.randn`` call of ``_draw_points``."""

    generator: torch.Generator
    dtype: torch.dtype
    device: torch.device


def _draw_points(x: torch.Tensor, distribution: str, n_samples: int, eps: float, sigma: float,
                 norm: str, gen: torch.Generator) -> torch.Tensor:
    """(B, S, ...) samples of D around every x (the caller's generator, never the global RNG)."""
    shape = (x.shape[0], n_samples, *x.shape[1:])
    opts: _DrawOptions = {"generator": gen, "dtype": x.dtype, "device": x.device}
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


def topk_thickness(explain_fn: ExplainFn | object, x: torch.Tensor, k: int, *,
                   distribution: str = "uniform", eps: float = 0.1, sigma: float = 0.1,
                   points: torch.Tensor | None = None, n_samples: int | None = None, n_path: int = 10,
                   batch_size: int = 1024, seed: int = 0, norm: str = "linf",
                   backend: str | None = None, target: int | torch.Tensor | None = None,
                   device=None) -> ThicknessResult:
    """Monte-Carlo top-k thickness Θ_k of every sample of ``x`` (docs/spec.md §2).

    Args:
        explain_fn: an Explainer, a ``from_captum`` adapter, or ``explain_fn(z, index) -> maps``
            (see the module docstring): explanations of the rows of ``z``, row r being a point of
            sample ``index[r]``.
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
        target: with an Explainer or adapter, the class explained for each sample (an int or a
            (B,) integer tensor), kept along its paths; None: the prediction at x. Not used with a
            function ``explain_fn(z, index)`` (an error if given).
        device: where the estimate runs (default: the explained model's device, else x's; given,
            the explained module is moved there); ``x``, ``points`` and ``target`` move there.

    Returns:
        ThicknessResult(per_sample (B,) float64 on that device, model_level = their mean).
    """
    if attribution_model(explain_fn) is None:
        v.check_callable(explain_fn, "explain_fn")
    v.check_batch(x, "x")
    where = compute_device(device, attribution_model(explain_fn), x)
    x, points, target = to(x, where), to(points, where), to(target, where)
    v.check_choice(distribution, "distribution", DISTRIBUTIONS)
    v.check_choice(norm, "norm", NORMS)
    eps, sigma = v.check_nonnegative_float(eps, "eps"), v.check_nonnegative_float(sigma, "sigma")
    v.check_positive_int(n_path, "n_path")
    v.check_positive_int(batch_size, "batch_size")
    v.check_int(seed, "seed")
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

    explain = _as_explain_fn(explain_fn, x, target, batch_size)

    # T_k of the clean explanations.
    rows = torch.arange(batch, device=x.device)
    clean = torch.cat([_explain(explain, x[r0:r0 + batch_size], rows[r0:r0 + batch_size])
                       for r0 in range(0, batch, batch_size)])
    v.check_k(k, clean.shape[1])
    top = topk_indices(clean, k, backend=backend)

    # Every path point: flat id q = (s * T + (t - 1)) * B + b, explained batch_size rows at a time.
    # Satisfied pairs are summed as exact integers (deterministic, also with CUDA atomics): the
    # agreement of float64 maps is count / pairs to within 1 ulp, so rounding recovers the count.
    # Under a torchrun launch the chunks of rows are split over the ranks (r2et_fast._distributed)
    # and their integer counts summed: each chunk is the one a single process explains, so the
    # result is exactly the single-process one.
    pairs = k * (clean.shape[1] - k)
    n_rows = n_s * n_t * batch

    def chunk(q0: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(sample of each row, satisfied pairs of each row) of the rows q0 ... q0 + batch_size."""
        q = torch.arange(q0, min(q0 + batch_size, n_rows), device=x.device)
        b, c = q % batch, q // batch
        s, t = c // n_t, c % n_t + 1
        alpha = (t.to(x.dtype) / n_t).view(-1, *([1] * (x.dim() - 1)))
        z = x[b] + alpha * delta[b, s]
        maps = _explain(explain, z, b)
        if maps.shape[1] != clean.shape[1]:
            raise ValueError(f"explain_fn returned {maps.shape[1]} features on path points but "
                             f"{clean.shape[1]} on x")
        agree = topk_pair_agreement(maps.to(torch.float64), top[b], backend=backend)
        return b, torch.round(agree * pairs).to(torch.int64)

    satisfied = torch.zeros(batch, dtype=torch.int64, device=x.device)
    for b, count in _distributed.map_items(range(0, n_rows, batch_size), chunk):
        satisfied.index_add_(0, b.to(x.device), count.to(x.device))
    per_sample = satisfied.to(torch.float64) / (pairs * n_s * n_t)
    return ThicknessResult(per_sample, float(per_sample.mean()))
