"""Autograd and fake-tensor (torch.compile) registrations for the native ops.

Rankings are piecewise constant: their ops are registered as non-differentiable. The value-based
similarities (Pearson, MSE, cosine) get analytic backward formulas written with torch ops, so they
are differentiable twice (gradgradcheck passes).
"""

from __future__ import annotations

import torch


def _per_row(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a.new_empty(a.shape[0])


def _register_fakes() -> None:
    torch.library.register_fake("r2et_fast::topk_indices")(
        lambda x, k: x.new_empty((x.shape[0], k), dtype=torch.int64))
    torch.library.register_fake("r2et_fast::ranks")(lambda x: x.new_empty(x.shape, dtype=torch.int64))
    for op in ("precision_at_k", "kendall_tau_topk"):
        torch.library.register_fake(f"r2et_fast::{op}")(lambda a, b, k: _per_row(a, b))
    for op in ("kendall_tau", "spearman", "pearson", "mse", "cosine"):
        torch.library.register_fake(f"r2et_fast::{op}")(_per_row)


def _save_inputs(ctx, inputs, output) -> None:
    ctx.save_for_backward(inputs[0], inputs[1], output)


def _mse_backward(ctx, grad):
    a, b, _ = ctx.saved_tensors
    d = (2.0 / a.shape[1]) * (a - b) * grad[:, None]
    return d, -d


def _cosine_parts(a, b, out, grad):
    # d cos / d a = b / (|a||b|) - cos * a / |a|^2, and symmetrically for b.
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    c, g = out[:, None], grad[:, None]
    return g * (b / (na * nb) - c * a / na.square()), g * (a / (na * nb) - c * b / nb.square())


def _cosine_backward(ctx, grad):
    a, b, out = ctx.saved_tensors
    return _cosine_parts(a, b, out, grad)


def _pearson_backward(ctx, grad):
    # Pearson is the cosine of the centred rows; the cosine gradient of centred rows is already
    # centred, so the centring projection drops out.
    a, b, out = ctx.saved_tensors
    da, db = a - a.mean(dim=1, keepdim=True), b - b.mean(dim=1, keepdim=True)
    return _cosine_parts(da, db, out, grad)


def register() -> None:
    _register_fakes()
    for op, backward in (("mse", _mse_backward), ("cosine", _cosine_backward),
                         ("pearson", _pearson_backward)):
        torch.library.register_autograd(f"r2et_fast::{op}", backward, setup_context=_save_inputs)
