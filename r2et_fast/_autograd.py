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
    torch.library.register_fake("r2et_fast::topk_pair_gap")(_pair_gap_fake)
    torch.library.register_fake("r2et_fast::topk_pair_gap_backward")(
        lambda grad, maps, hi, lo, pairs, transform: torch.empty_like(maps))


def _pair_gap_fake(maps, k, pairs, transform, n_pairs):
    from r2et_fast.reference.regularizers import pair_rank_positions

    batch, n = maps.shape
    width = k if pairs == "all" else len(pair_rank_positions(pairs, k, n, n_pairs)[0])
    return (maps.new_empty(batch), maps.new_empty((batch, width), dtype=torch.int64),
            maps.new_empty((batch, 0 if pairs == "all" else width), dtype=torch.int64))


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


def _pair_gap_backward_setup(ctx, inputs, output) -> None:
    grad, maps, hi, lo, pairs, transform = inputs
    ctx.save_for_backward(grad, maps, hi, lo)
    ctx.pairs, ctx.transform = pairs, transform


def _pair_gap_double_backward(ctx, upstream):
    # Second derivatives are rare (gradgradcheck, Hessian-vector products): differentiate the
    # plain-PyTorch twin of the backward instead of writing a third kernel.
    from r2et_fast.reference.regularizers import topk_pair_gap_backward

    grad, maps, hi, lo = ctx.saved_tensors
    create_graph = torch.is_grad_enabled()  # True under backward(create_graph=True)
    with torch.enable_grad():
        grad_, maps_ = grad.detach().requires_grad_(), maps.detach().requires_grad_()
        out = topk_pair_gap_backward(grad_, maps_, hi, lo, ctx.pairs, ctx.transform)
        d_grad, d_maps = torch.autograd.grad(out, (grad_, maps_), upstream, allow_unused=True,
                                             create_graph=create_graph)
    d_maps = torch.zeros_like(maps) if d_maps is None else d_maps
    return d_grad, d_maps, None, None, None, None


def register() -> None:
    _register_fakes()
    torch.library.register_autograd("r2et_fast::topk_pair_gap", _pair_gap_backward,
                                    setup_context=_pair_gap_setup)
    torch.library.register_autograd("r2et_fast::topk_pair_gap_backward", _pair_gap_double_backward,
                                    setup_context=_pair_gap_backward_setup)
    for op, backward in (("mse", _mse_backward), ("cosine", _cosine_backward),
                         ("pearson", _pearson_backward)):
        torch.library.register_autograd(f"r2et_fast::{op}", backward, setup_context=_save_inputs)
