"""Interval arithmetic through a network and its backward pass (docs/spec.md §7, sound certificate).

A model is read as a chain of layers (:func:`layers_of`): affine maps (Linear, Conv2d, AvgPool2d,
Flatten) and element-wise activations (ReLU, LeakyReLU, Softplus(beta), Tanh, Sigmoid). For a set
of inputs (the eps-ball around x) the forward pass bounds every pre-activation by an interval, each
activation's derivative is bounded over that interval, and the backward pass
g = A_1^T D_1 ... A_L^T D_L v (v = ds/dz at the output) is bounded by interval products.

Intervals are carried as (centre, radius) through the affine maps, so an interval matrix product
is two ordinary batched products, A c and |A| r (conv / pooling as their own ops); element-wise
products use the four corners. Everything runs in float64 on the weights converted exactly from
the model's dtype. No native kernel: the work is the matmuls and convolutions that torch already
runs at full speed, twice per layer, so a kernel would not pay.

Rounding: every step widens its result by ``REL`` times the magnitude it computed with, which
covers float64 accumulation error (at most n * 2^-53 relative for a sum of n terms: 1e-11 for
n = 1e5) with a wide margin, so the bounds hold for the exact real-valued function of the stored
weights. They do not describe rounding of the model's own float32 evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.grad import conv2d_input

from r2et_fast.models.cnn import AvgPoolCNN, EmbeddingCNN, MnistCNN, SiameseCNN
from r2et_fast.models.tabular import TabularMLP

#: Relative widening of every computed bound (see the module docstring).
REL = 1e-9
#: Absolute widening of bounds computed by transcendental functions (sigmoid, tanh, exp).
ABS = 1e-15

SUPPORTED = ("Linear, Conv2d (zero padding), AvgPool2d, Flatten(1, -1), ReLU, LeakyReLU, Softplus, "
             "Tanh, Sigmoid, Identity, Dropout (eval mode), nested nn.Sequential, r2et_fast's TabularMLP "
             "and AvgPoolCNN")
_MAX_POOL = ("its derivative routes the gradient to the argmax of each window, a pattern that changes "
             "discontinuously inside the ball and cannot be bounded by intervals")
_REFUSED: dict[type, str] = {
    nn.MaxPool2d: _MAX_POOL,
    nn.MaxPool1d: _MAX_POOL,
    # the package's max-pooling CNNs (functional F.max_pool2d in their forward)
    MnistCNN: f"it uses max pooling: {_MAX_POOL}; train the average-pooling CNN instead "
              "(`r2et-fast train --arch avgpool_cnn`, r2et_fast.models.AvgPoolCNN)",
    EmbeddingCNN: f"it uses max pooling: {_MAX_POOL}",
    SiameseCNN: f"it uses max pooling: {_MAX_POOL}",
}


@dataclass(frozen=True)
class Layer:
    """One step of the chain: ``kind`` in {"linear", "conv", "avgpool", "flatten", "act"}."""

    kind: str
    module: nn.Module
    path: str


def _plain(module: nn.Module, cls: type[nn.Module]) -> bool:
    """``module`` computes exactly what ``cls`` does: no overridden forward, no hooks."""
    return (isinstance(module, cls) and getattr(type(module), "forward", None) is cls.forward
            and not module._forward_hooks and not module._forward_pre_hooks)


def _why_not(path: str, m: nn.Module) -> str:
    for cls, why in _REFUSED.items():
        if isinstance(m, cls):
            return f"layer {path} ({type(m).__name__}) cannot be bounded: {why}"
    return f"layer {path} ({type(m).__name__}) is not supported by the sound bounds (supported: {SUPPORTED})"


def _walk(m: nn.Module, path: str, out: list[Layer]) -> None:
    if _plain(m, nn.Sequential) or _plain(m, AvgPoolCNN):  # AvgPoolCNN only checks the input shape
        for name, child in m._modules.items():
            if child is None:
                raise ValueError(f"layer {path}[{name}] is None")
            _walk(child, f"{path}[{name}]", out)
        return
    if _plain(m, TabularMLP):
        for name in ("hidden", "act", "out"):  # the order of TabularMLP.forward
            _walk(getattr(m, name), f"{path}.{name}", out)
        return
    if _plain(m, nn.Linear):
        out.append(Layer("linear", m, path))
    elif _plain(m, nn.Conv2d):
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise ValueError(f"layer {path} (Conv2d) must use numeric zero padding, got "
                             f"padding={m.padding!r}, padding_mode={m.padding_mode!r}")
        out.append(Layer("conv", m, path))
    elif _plain(m, nn.AvgPool2d):
        out.append(Layer("avgpool", m, path))
    elif _plain(m, nn.Flatten):
        if (m.start_dim, m.end_dim) != (1, -1):
            raise ValueError(f"layer {path} (Flatten({m.start_dim}, {m.end_dim})): only Flatten(1, -1)")
        out.append(Layer("flatten", m, path))
    elif any(_plain(m, c) for c in (nn.ReLU, nn.LeakyReLU, nn.Softplus, nn.Tanh, nn.Sigmoid)):
        out.append(Layer("act", m, path))
    elif _plain(m, nn.Identity) or (_plain(m, nn.Dropout) and (not m.training or m.p == 0)):
        return
    else:
        raise ValueError(_why_not(path, m))


def layers_of(model: object) -> list[Layer]:
    """The chain of layers of ``model``; ValueError naming the first layer that cannot be bounded."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module built of supported layers ({SUPPORTED}), "
                         f"got {type(model).__name__}")
    out: list[Layer] = []
    _walk(model, "model", out)
    if not any(layer.kind in ("linear", "conv") for layer in out):
        raise ValueError("model has no Linear or Conv2d layer: nothing to bound")
    return out


# -- the affine maps: x -> A x + b, and v -> A^T v, on float64 copies of the weights -------------

def _w(m: nn.Module) -> torch.Tensor:
    return cast(torch.Tensor, m.weight).detach().double()


def _b(m: nn.Module) -> torch.Tensor | None:
    bias = cast("torch.Tensor | None", m.bias)
    return None if bias is None else bias.detach().double()


def _pool(m: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    p = cast(nn.AvgPool2d, m)
    return lambda t: F.avg_pool2d(t, p.kernel_size, p.stride, p.padding, p.ceil_mode,
                                  p.count_include_pad, p.divisor_override)


def _conv(m: nn.Module) -> tuple[Any, Any, Any, int]:
    """stride, padding (numeric: checked by :func:`layers_of`), dilation, groups of a Conv2d."""
    c = cast(nn.Conv2d, m)
    return c.stride, c.padding, c.dilation, c.groups


def affine(layer: Layer, t: torch.Tensor, *, absolute: bool = False, bias: bool = True) -> torch.Tensor:
    """A t (+ b), or |A| t with ``absolute`` (no bias)."""
    m = layer.module
    if layer.kind == "flatten":
        return t.flatten(1)
    if layer.kind == "avgpool":  # non-negative weights: |A| = A
        return _pool(m)(t)
    w = _w(m).abs() if absolute else _w(m)
    b = _b(m) if bias and not absolute else None
    if layer.kind == "linear":
        return F.linear(t, w, b)
    return F.conv2d(t, w, b, *_conv(m))


def affine_t(layer: Layer, v: torch.Tensor, in_shape: torch.Size, *, absolute: bool = False) -> torch.Tensor:
    """A^T v (or |A|^T v) back to inputs of shape ``in_shape``."""
    m = layer.module
    if layer.kind == "flatten":
        return v.reshape(in_shape)
    if layer.kind == "avgpool":
        with torch.enable_grad():  # the vjp of a linear op does not depend on where it is taken
            z = torch.zeros(in_shape, dtype=v.dtype, device=v.device, requires_grad=True)
            (out,) = torch.autograd.grad(_pool(m)(z), z, v)
        return out
    w = _w(m).abs() if absolute else _w(m)
    if layer.kind == "linear":
        return v @ w
    return conv2d_input(list(in_shape), w, v, *_conv(m))


def _bias_slack(layer: Layer, like: torch.Tensor) -> torch.Tensor | float:
    """REL |b|, shaped like the layer's output: fl(A c + b) errs by up to ~n 2^-53 (|A||c| + |b|)."""
    b = _b(layer.module) if layer.kind in ("linear", "conv") else None
    if b is None:
        return 0.0
    return REL * (b.abs() if layer.kind == "linear" else b.abs().view(-1, 1, 1)).expand_as(like)


def affine_box(layer: Layer, c: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Interval image (centre, radius) of the box c +- r, widened for rounding: the slack
    REL (|A| |c| + |b|) also covers the rounding of the next c - r and c + r, since it exceeds
    REL |A c + b|, a billion ulps of the centre."""
    centre = affine(layer, c)
    if layer.kind == "flatten":
        return centre, r.flatten(1)
    return centre, affine(layer, r + REL * (c.abs() + r), absolute=True) + _bias_slack(layer, centre)


def affine_t_box(layer: Layer, c: torch.Tensor, r: torch.Tensor, in_shape: torch.Size
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Interval image of the box c +- r under A^T, widened for rounding."""
    centre = affine_t(layer, c, in_shape)
    if layer.kind == "flatten":
        return centre, r.reshape(in_shape)
    return centre, affine_t(layer, r + REL * (c.abs() + r), in_shape, absolute=True)


def l2_first_radius(layer: Layer, eps: torch.Tensor, like: torch.Tensor) -> torch.Tensor | None:
    """Exact radius eps * ||row_i||_2 of A x over the l2 ball, for a Linear or Conv2d first layer
    (a conv row at the border has fewer taps, so the kernel's norm bounds it); None otherwise."""
    if layer.kind not in ("linear", "conv"):
        return None
    w = _w(layer.module)
    rows = w.flatten(1).norm(dim=1) * (1 + REL)
    e = eps.view(-1, *([1] * (like.dim() - 1)))
    if layer.kind == "linear":
        return e * rows
    return e * rows.view(1, -1, 1, 1).expand_as(like)


# -- activations: the function's interval (forward) and its derivative's interval ----------------

def _widen(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return lo - REL * lo.abs() - ABS, hi + REL * hi.abs() + ABS


def act_box(m: nn.Module, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The activation's values over [lo, hi]: the ends, as every supported activation is
    non-decreasing (softplus drops by log1p(e^-thr) / beta ~ 2e-9 / beta where torch switches to
    the identity at beta t = thr = 20, far inside the REL |t| ~ 2e-8 / beta widening there), except
    LeakyReLU with a negative slope, a V whose minimum 0 is at 0."""
    a, b = m(lo), m(hi)
    if isinstance(m, (nn.ReLU, nn.LeakyReLU)) and not (isinstance(m, nn.LeakyReLU) and m.negative_slope < 0):
        return _widen(a, b) if isinstance(m, nn.LeakyReLU) else (a, b)
    if isinstance(m, nn.LeakyReLU):  # a negative slope: not monotone, the extremes are the ends or 0
        zero = torch.zeros_like(lo)
        spans = (lo < 0) & (hi > 0)
        return _widen(torch.where(spans, torch.minimum(torch.minimum(a, b), zero), torch.minimum(a, b)),
                      torch.maximum(a, b))
    return _widen(a, b)


def derivative_box(m: nn.Module, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of the activation's derivative over [lo, hi], as autograd takes it (at a kink, the
    value torch's backward uses: ReLU'(0) = 0, LeakyReLU'(0) = slope)."""
    if isinstance(m, nn.ReLU):
        return (lo > 0).to(lo.dtype), (hi > 0).to(lo.dtype)
    if isinstance(m, nn.LeakyReLU):
        s = float(m.negative_slope)
        one, slope = torch.ones_like(lo), torch.full_like(lo, s)  # the slope exactly, in float64
        d_lo, d_hi = torch.where(lo > 0, one, slope), torch.where(hi > 0, one, slope)
        return torch.minimum(d_lo, d_hi), torch.maximum(d_lo, d_hi)
    if isinstance(m, nn.Softplus):
        # sigmoid(beta t) below the threshold, 1 above it: non-decreasing in t, so the ends bound it
        beta, thr = float(m.beta), float(m.threshold)

        def d(t: torch.Tensor) -> torch.Tensor:
            return torch.where(beta * t > thr, 1.0, torch.sigmoid(beta * t)).to(t.dtype)

        lo_d, hi_d = _widen(d(lo), d(hi))
        return lo_d.clamp_min(0.0), hi_d.clamp_max(1.0)
    # tanh' = 1 - tanh^2 and sigmoid' = s (1 - s): even, unimodal, largest at 0
    if isinstance(m, nn.Tanh):
        def d(t: torch.Tensor) -> torch.Tensor:
            return 1 - torch.tanh(t).square()
        peak = 1.0
    else:
        def d(t: torch.Tensor) -> torch.Tensor:
            s = torch.sigmoid(t)
            return s * (1 - s)
        peak = 0.25
    a, b = d(lo), d(hi)
    top = torch.where((lo <= 0) & (hi >= 0), torch.full_like(a, peak), torch.maximum(a, b))
    lo_d, hi_d = _widen(torch.minimum(a, b), top)
    return lo_d.clamp_min(0.0), hi_d.clamp_max(peak)


def mul_box(a_lo: torch.Tensor, a_hi: torch.Tensor, b_lo: torch.Tensor, b_hi: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Element-wise product of two intervals (the four corners), widened for rounding."""
    corners = torch.stack([a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi])
    lo, hi = corners.amin(dim=0), corners.amax(dim=0)
    return lo - REL * lo.abs(), hi + REL * hi.abs()


# -- the two passes ---------------------------------------------------------------------------------

@dataclass
class ForwardBoxes:
    """What the backward pass needs: per layer its input shape and, for activations, the
    derivative bounds; and the output (logit) interval."""

    shapes: list[torch.Size]
    derivatives: list[tuple[torch.Tensor, torch.Tensor] | None]
    out_lo: torch.Tensor
    out_hi: torch.Tensor


def forward_boxes(layers: list[Layer], x: torch.Tensor, eps: torch.Tensor, norm: str) -> ForwardBoxes:
    """Interval propagation of the eps-ball around x (float64, eps (B,)) through the chain."""
    c = x
    r = eps.view(-1, *([1] * (x.dim() - 1))).expand_as(x).clone()
    exact_l2 = norm == "l2"  # until the first Linear/Conv, the l2 ball is used exactly
    shapes: list[torch.Size] = []
    derivs: list[tuple[torch.Tensor, torch.Tensor] | None] = []
    for layer in layers:
        shapes.append(c.shape)
        if layer.kind == "act":
            lo, hi = c - r, c + r
            derivs.append(derivative_box(layer.module, lo, hi))
            lo, hi = act_box(layer.module, lo, hi)
            c, r = (lo + hi) / 2, (hi - lo) / 2
            exact_l2 = False
            continue
        derivs.append(None)
        if exact_l2 and layer.kind != "flatten":
            centre = affine(layer, c)
            radius = l2_first_radius(layer, eps, centre)
            if radius is not None:
                slack = REL * affine(layer, c.abs(), absolute=True) + _bias_slack(layer, centre)
                c, r = centre, radius + slack
            else:  # the ball lies in the box of the same radius: sound, looser
                c, r = affine_box(layer, c, r)
            exact_l2 = False
            continue
        c, r = affine_box(layer, c, r)
    if c.dim() != 2:
        raise ValueError(f"model must end in class scores (B, C), its last layer gives shape "
                         f"{tuple(c.shape)}")
    return ForwardBoxes(shapes, derivs, c - r, c + r)


def backward_boxes(layers: list[Layer], boxes: ForwardBoxes, v_lo: torch.Tensor, v_hi: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of ds/dx = A_1^T D_1 ... A_L^T v for v = ds/dz in [v_lo, v_hi] and every D_l in its
    derivative bounds: valid for every x' of the ball, as each factor is."""
    c, r = (v_lo + v_hi) / 2, (v_hi - v_lo) / 2
    for layer, shape, deriv in zip(reversed(layers), reversed(boxes.shapes), reversed(boxes.derivatives),
                                   strict=True):
        if deriv is not None:
            lo, hi = mul_box(c - r, c + r, *deriv)
            c, r = (lo + hi) / 2, (hi - lo) / 2
        else:
            c, r = affine_t_box(layer, c, r, shape)
    return c - r, c + r
