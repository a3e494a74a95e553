"""Autograd and fake-tensor (torch.compile) registrations for the native ops, row by row of the
ops table (``r2et_fast/ops/_table.py``).

Rankings are piecewise constant: their ops get an Autograd fallthrough (non-differentiable). The
value-based similarities (Pearson, MSE, cosine) get analytic backward formulas written with torch
ops, so they are differentiable twice (gradgradcheck passes); the regulariser ops have native
backward ops whose own derivatives come from their twins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


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


def _pair_gap_setup(ctx, inputs, output) -> None:
    maps, _, pairs, transform, _ = inputs
    _, hi, lo = output
    ctx.mark_non_differentiable(hi, lo)
    ctx.save_for_backward(maps, hi, lo)
    ctx.pairs, ctx.transform = pairs, transform


def _pair_gap_backward(ctx, grad_gap, _grad_hi, _grad_lo):
    maps, hi, lo = ctx.saved_tensors
    grad = torch.ops.r2et_fast.topk_pair_gap_backward(grad_gap.contiguous(), maps, hi, lo, ctx.pairs,
                                                      ctx.transform)
    return grad, None, None, None, None


def _twin_double_backward(twin, ctx, upstreams, n_diff: int, args: tuple):
    """Second derivatives of a native backward op by differentiating its plain-PyTorch twin.

    They are rare (gradgradcheck, Hessian-vector products through a regulariser), so a third
    kernel is not worth it. ``ctx.saved_tensors[:n_diff]`` are the differentiable inputs.
    """
    saved = ctx.saved_tensors
    create_graph = torch.is_grad_enabled()  # True under backward(create_graph=True)
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_() for t in saved[:n_diff]]
        outs = twin(*leaves, *saved[n_diff:], *args)
        outs = outs if isinstance(outs, tuple) else (outs,)
        pairs = [(o, u) for o, u in zip(outs, upstreams) if u is not None]
        grads = torch.autograd.grad([o for o, _ in pairs], leaves, [u for _, u in pairs],
                                    allow_unused=True, create_graph=create_graph)
    return tuple(torch.zeros_like(leaf) if g is None else g for leaf, g in zip(leaves, grads))


def _pair_gap_backward_setup(ctx, inputs, output) -> None:
    grad, maps, hi, lo, pairs, transform = inputs
    ctx.save_for_backward(grad, maps, hi, lo)
    ctx.pairs, ctx.transform = pairs, transform


def _pair_gap_double_backward(ctx, upstream):
    from r2et_fast.reference.regularizers import topk_pair_gap_backward

    d_grad, d_maps = _twin_double_backward(topk_pair_gap_backward, ctx, (upstream,), 2,
                                           (ctx.pairs, ctx.transform))
    return d_grad, d_maps, None, None, None, None


def _hessian_setup(ctx, inputs, output) -> None:
    grad_x, grad_xv, kappa = inputs
    ctx.save_for_backward(grad_x, grad_xv)
    ctx.kappa = kappa


def _hessian_backward(ctx, grad):
    grad_x, grad_xv = ctx.saved_tensors
    d_x, d_xv = torch.ops.r2et_fast.hessian_fd_norm_backward(grad.contiguous(), grad_x, grad_xv, ctx.kappa)
    return d_x, d_xv, None


def _hessian_backward_setup(ctx, inputs, output) -> None:
    grad, grad_x, grad_xv, kappa = inputs
    ctx.save_for_backward(grad, grad_x, grad_xv)
    ctx.kappa = kappa


def _hessian_double_backward(ctx, up_x, up_xv):
    from r2et_fast.reference.regularizers import hessian_fd_norm_backward

    d_grad, d_x, d_xv = _twin_double_backward(hessian_fd_norm_backward, ctx, (up_x, up_xv), 3,
                                              (ctx.kappa,))
    return d_grad, d_x, d_xv, None


# The backward (and its setup_context) of every op the table marks differentiable.
FORMULAS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "pearson": (_pearson_backward, _save_inputs),
    "mse": (_mse_backward, _save_inputs),
    "cosine": (_cosine_backward, _save_inputs),
    "topk_pair_gap": (_pair_gap_backward, _pair_gap_setup),
    "topk_pair_gap_backward": (_pair_gap_double_backward, _pair_gap_backward_setup),
    "hessian_fd_norm": (_hessian_backward, _hessian_setup),
    "hessian_fd_norm_backward": (_hessian_double_backward, _hessian_backward_setup),
}

# Holds the Autograd fallthroughs: torch removes a library's registrations when it is collected.
_library: torch.library.Library | None = None


def register(ops) -> None:
    """Fake kernels for every op of ``ops`` (rows of ``r2et_fast/ops/_table.py``), the backward of
    each differentiable one and an Autograd fallthrough for the others."""
    global _library
    if _library is not None:
        return
    missing = [op.name for op in ops if op.differentiable and op.name not in FORMULAS]
    if missing:
        raise RuntimeError(f"ops marked differentiable in r2et_fast/ops/_table.py have no backward in "
                           f"r2et_fast/_autograd.py FORMULAS: {missing}")
    _library = torch.library.Library("r2et_fast", "IMPL")
    for op in ops:
        qualname = f"r2et_fast::{op.name}"
        torch.library.register_fake(qualname)(op.fake)
        if op.differentiable:
            backward, setup = FORMULAS[op.name]
            torch.library.register_autograd(qualname, backward, setup_context=setup)
        else:
            # Piecewise-constant outputs carry no gradient: skip autograd entirely (no grad_fn).
            _library.impl(op.name, torch.library.fallthrough_kernel, "Autograd")
