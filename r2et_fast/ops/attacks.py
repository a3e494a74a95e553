"""The attacks' fused projected step as a public op (docs/spec.md §5)."""

from __future__ import annotations

import torch

from r2et_fast import _ops
from r2et_fast import _validation as v
from r2et_fast.ops._dispatch import use_native
from r2et_fast.reference import attacks as twin


def _box_bound(bound, x: torch.Tensor, name: str) -> torch.Tensor | None:
    """None, a number, or a tensor broadcastable to one sample -> a (n,) tensor like x."""
    if bound is None:
        return None
    if isinstance(bound, (int, float)) and not isinstance(bound, bool):
        bound = torch.tensor(float(bound), dtype=x.dtype, device=x.device)
    v.check_tensor(bound, name)
    try:
        flat = bound.to(dtype=x.dtype).expand(x.shape[1:]).reshape(-1)
    except RuntimeError as exc:
        raise ValueError(f"{name} must broadcast to one sample of shape {tuple(x.shape[1:])}, got "
                         f"shape {tuple(bound.shape)}") from exc
    if flat.device != x.device:
        raise ValueError(f"{name} must be on the device of x ({x.device}), got {flat.device}")
    # not read inside trusted_values(): an attack checks its box once per call, not at every step
    if not v.is_symbolic(flat) and not v.values_trusted() and bool(torch.isnan(flat).any()):
        raise ValueError(f"{name} contains NaN")
    return flat.contiguous()


def _check_step_inputs(x, grad, x0) -> None:
    for name, t in (("x", x), ("grad", grad), ("x0", x0)):
        v.check_tensor(t, name)
        v.check_float(t, name)
        if t.dim() < 2 or t.shape[0] == 0:
            raise ValueError(f"{name} must be a non-empty batch (B, ...), got shape {tuple(t.shape)}")
    if grad.shape != x.shape or x0.shape != x.shape:
        raise ValueError(f"x, grad and x0 must have the same shape, got {tuple(x.shape)}, "
                         f"{tuple(grad.shape)}, {tuple(x0.shape)}")
    if grad.dtype != x.dtype or x0.dtype != x.dtype:
        raise TypeError("x, grad and x0 must have the same dtype")
    if grad.device != x.device or x0.device != x.device:
        raise ValueError("x, grad and x0 must be on the same device")


def projected_step(x: torch.Tensor, grad: torch.Tensor, x0: torch.Tensor, alpha: float, eps: float, *,
                   step_norm: str = "l2", norm: str = "l2", lower=None, upper=None,
                   backend: str | None = None) -> torch.Tensor:
    """One projected descent step of an attack, fused per sample (docs/spec.md §5).

    x - alpha * normalise(grad) (``step_norm``: "l2" divides by ||grad||_2, "linf" takes the
    sign), projected onto the ``eps``-ball around ``x0`` (``norm``: "l2" or "linf") and clamped to
    the valid box [``lower``, ``upper``] (numbers or tensors broadcastable to one sample). Inputs
    are batches (B, ...); to ascend, pass ``-grad``. Not differentiable (attacks run it under
    ``torch.no_grad``).
    """
    _check_step_inputs(x, grad, x0)
    for name, value in (("alpha", alpha), ("eps", eps)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    for name, choice in (("step_norm", step_norm), ("norm", norm)):
        if choice not in v.NORMS:
            raise ValueError(f"{name} must be one of {v.NORMS}, got {choice!r}")
    lo, hi = _box_bound(lower, x, "lower"), _box_bound(upper, x, "upper")
    xf, gf, x0f = (t.reshape(t.shape[0], -1) for t in (x, grad, x0))
    args = (float(alpha), float(eps), step_norm, norm, lo, hi)
    if use_native("projected_step", x, backend):
        out = _ops.native("projected_step")(xf, gf, x0f, *args)
    else:
        for name, t in (("x", xf), ("grad", gf), ("x0", x0f)):
            v.check_finite(t, name)
        out = twin.projected_step(xf, gf, x0f, *args)
    return out.view(x.shape)
