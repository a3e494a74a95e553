"""The fused MLP objective op (docs/spec.md §3): R2ET's CE - w_g G_k + w_h Ĥ of an MLP given by its
weights, and the objective's gradient w.r.t. every weight and bias, in one call.

Most callers want ``r2et_fast.engine.fused_objective(model, x, y, ...)``, which recognises the
model and wraps this op in an autograd Function. Layer codes: see ``r2et_fast.engine._mlp_spec``.
"""

from __future__ import annotations

import functools

import torch

from r2et_fast import _ops
from r2et_fast import _validation as v
from r2et_fast.explain._score import SCORES
from r2et_fast.ops._dispatch import use_native
from r2et_fast.ops.regularizers import _check_pair_options, _default_n_pairs
from r2et_fast.reference import fused as _twin

_LINEAR, _N_KINDS = 0, 5

# (loss, parts = [ce, hess, gap], grad_weights, grad_biases, grad_x)
FusedResult = tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], list[torch.Tensor], torch.Tensor]


def _check_net(x: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor],
               layers: list[int], layer_params: list[float]) -> int:
    """The layer list against the weights (shapes chain from x's n features); returns C."""
    if not isinstance(layers, (list, tuple)) or not all(isinstance(c, int) and 0 <= c < _N_KINDS
                                                        for c in layers):
        raise ValueError(f"layers must be a list of layer codes in [0, {_N_KINDS}), got {layers!r}")
    if not isinstance(layer_params, (list, tuple)) or len(layer_params) != 2 * len(layers):
        raise ValueError(f"layer_params must be a list of 2 numbers per layer ({2 * len(layers)}), "
                         f"got {layer_params!r}")
    n_linear = sum(c == _LINEAR for c in layers)
    if n_linear == 0:
        raise ValueError("layers must contain at least one Linear layer (code 0)")
    for name, ts in (("weights", weights), ("biases", biases)):
        if not isinstance(ts, (list, tuple)) or len(ts) != n_linear:
            raise ValueError(f"{name} must be a list of {n_linear} tensors (one per Linear layer)")
    width, j = x.shape[1], 0
    for code in layers:
        if code != _LINEAR:
            continue
        w, b = v.check_tensor(weights[j], f"weights[{j}]"), v.check_tensor(biases[j], f"biases[{j}]")
        if w.dim() != 2 or w.shape[1] != width or w.shape[0] < 1:
            raise ValueError(f"weights[{j}] must have shape (out, {width}), got {tuple(w.shape)}")
        if b.numel() and tuple(b.shape) != (w.shape[0],):
            raise ValueError(f"biases[{j}] must be empty or have shape ({w.shape[0]},), got {tuple(b.shape)}")
        for name, t in ((f"weights[{j}]", w), (f"biases[{j}]", b)):
            if t.dtype != x.dtype or t.device != x.device:
                raise TypeError(f"{name} must be {x.dtype} on {x.device} like x, got {t.dtype} on {t.device}")
        width, j = w.shape[0], j + 1
    return width


@functools.lru_cache(maxsize=256)
def objective_args(n: int, layers: tuple[int, ...], layer_params: tuple[float, ...], score: str, k: int,
                   pairs: str, transform: str, n_pairs: int | None, pair_count: float, kappa: float,
                   lambda_gap: float, lambda_hess: float, with_gap: bool, with_hessian: bool, adaptive: bool,
                   input_grad: bool) -> tuple:
    """The op's arguments after (x, y, weights, biases), checked, for n features. Cached: a training
    loop calls with the same options every step, and the checks are Python (the tensors' checks are
    the kernels')."""
    v.check_choice(score, "score", SCORES)
    for name, flag in (("with_gap", with_gap), ("with_hessian", with_hessian), ("adaptive", adaptive),
                       ("input_grad", input_grad)):
        v.check_bool(flag, name)
    lambda_gap = v.check_nonnegative_float(lambda_gap, "lambda_gap")
    lambda_hess = v.check_nonnegative_float(lambda_hess, "lambda_hess")
    resolved = 0
    if with_gap:
        v.check_k(k, n)
        _check_pair_options(pairs, transform)
        resolved = _default_n_pairs(pairs, k, n, None if pairs == "all" else n_pairs)
        pair_count = v.check_positive_float(pair_count, "pair_count")
    kappa = v.check_positive_float(kappa, "kappa") if with_hessian else 1.0  # unread without Ĥ
    return (list(layers), list(layer_params), score, int(k), pairs, transform, resolved, float(pair_count),
            float(kappa), lambda_gap, lambda_hess, with_gap, with_hessian, adaptive, input_grad)


def fused_mlp_objective(x: torch.Tensor, y: torch.Tensor, weights: list[torch.Tensor],
                        biases: list[torch.Tensor], layers: list[int], layer_params: list[float],
                        score: str = "loss", k: int = 1, pairs: str = "all", transform: str = "linear",
                        n_pairs: int | None = None, pair_count: float = 1.0, kappa: float = 1e-3,
                        lambda_gap: float = 0.0, lambda_hess: float = 0.0, with_gap: bool = True,
                        with_hessian: bool = True, adaptive: bool = False, input_grad: bool = False,
                        *, backend: str | None = None) -> FusedResult:
    """The objective, its parts and its gradients for the MLP ``layers`` with ``weights``/``biases``.

    Args:
        x: (B, n) inputs; y: (B,) int64 labels (C = 1: labels {0, 1}, BCE-with-logits task loss).
        weights, biases: one per Linear layer, in order; a bias is an empty (0,) tensor when absent.
        layers, layer_params: layer codes and two parameters per layer (``engine._mlp_spec``).
        score: the explained score (``"logit"``, ``"prob"``, ``"loss"``).
        k, pairs, transform, n_pairs: G_k's options (``ops.topk_pair_gap``); ``pair_count`` divides
            its batch mean. Only read with ``with_gap``.
        kappa: the step of Ĥ; only read with ``with_hessian``.
        lambda_gap, lambda_hess, adaptive: the weights (``adaptive``: |lambda (CE + 1) / term|).
        input_grad: also return d loss / dx (through the point x only, as the autograd engine).

    Returns ``(loss, parts, grad_weights, grad_biases, grad_x)``; ``parts = [ce, hess, gap]`` (0
    where a term is off), an empty grad for an absent bias, ``grad_x`` empty unless asked for.
    """
    v.check_maps(x, "x")
    y = v.check_tensor(y, "y")
    if y.dtype != torch.int64 or tuple(y.shape) != (x.shape[0],) or y.device != x.device:
        raise ValueError(f"y must be an int64 tensor of shape ({x.shape[0]},) on {x.device}, got "
                         f"{y.dtype} {tuple(y.shape)} on {y.device}")
    n_out = _check_net(x, weights, biases, layers, layer_params)
    args = objective_args(x.shape[1], tuple(layers), tuple(float(p) for p in layer_params), score, k, pairs,
                          transform, n_pairs, pair_count, kappa, lambda_gap, lambda_hess, with_gap,
                          with_hessian, adaptive, input_grad)
    if use_native("fused_mlp_objective", x, backend):
        # The kernels check x's values and y's range themselves (the CPU one while the rows are in
        # cache), with the messages below: no host sync here.
        loss, parts, gw, gb, gx = _ops.native("fused_mlp_objective")(x, y, list(weights), list(biases), *args)
        return loss, parts, list(gw), list(gb), gx
    v.check_finite(x, "x")
    if not v.is_symbolic(y):  # meta / fake tensors: no values to range-check
        v.check_target_range(y, n_out)
    for j, w in enumerate(weights):
        v.check_finite(w, f"weights[{j}]")
    return _twin.fused_mlp_objective(x, y, list(weights), list(biases), *args)


def fused_mlp_saliency(x: torch.Tensor, target: torch.Tensor | None, weights: list[torch.Tensor],
                       biases: list[torch.Tensor], layers: list[int], layer_params: list[float],
                       score: str = "logit", *, backend: str | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The logits (B, C) of the MLP ``layers`` at x (B, n), its input gradient g = ds/dx (B, n) of
    the score of ``target`` (B,) int64 (None: the predicted class, argmax or 1[z > 0] for C = 1),
    and the explained class (B,); no autograd graph (the results are detached)."""
    v.check_maps(x, "x")
    if target is not None:
        target = v.check_tensor(target, "target")
        if target.dtype != torch.int64 or tuple(target.shape) != (x.shape[0],) or target.device != x.device:
            raise ValueError(f"target must be an int64 tensor of shape ({x.shape[0]},) on {x.device}, got "
                             f"{target.dtype} {tuple(target.shape)} on {target.device}")
    n_out = _check_net(x, weights, biases, layers, layer_params)
    v.check_choice(score, "score", SCORES)
    predict = target is None
    labels = x.new_zeros((x.shape[0],), dtype=torch.int64) if target is None else target
    args = (list(layers), [float(p) for p in layer_params], score)
    if use_native("fused_mlp_saliency", x, backend):  # the kernels check x and target's range
        native = _ops.native("fused_mlp_saliency")
        return native(x.detach(), labels, predict, list(weights), list(biases), *args)
    v.check_finite(x, "x")
    if target is not None and not v.is_symbolic(target):
        v.check_target_range(target, n_out)
    with torch.no_grad():
        return _twin.fused_mlp_saliency(x.detach(), labels, predict, [w.detach() for w in weights],
                                        [b.detach() for b in biases], *args)


def fused_mlp_saliency_vjp(x: torch.Tensor, target: torch.Tensor, grad: torch.Tensor,
                           weights: list[torch.Tensor], biases: list[torch.Tensor], layers: list[int],
                           layer_params: list[float], score: str = "logit", *,
                           backend: str | None = None) -> torch.Tensor:
    """d <grad, g(x)> / dx (B, n) of the MLP ``layers`` for the class ``target`` (B,) int64, where
    g = ds/dx is what :func:`fused_mlp_saliency` returns: the vector-Jacobian product an attack's
    step needs, by the adjoint of the passes (no double backprop; detached)."""
    v.check_maps(x, "x")
    target = v.check_tensor(target, "target")
    if target.dtype != torch.int64 or tuple(target.shape) != (x.shape[0],) or target.device != x.device:
        raise ValueError(f"target must be an int64 tensor of shape ({x.shape[0]},) on {x.device}, got "
                         f"{target.dtype} {tuple(target.shape)} on {target.device}")
    grad = v.check_tensor(grad, "grad")
    if grad.shape != x.shape or grad.dtype != x.dtype or grad.device != x.device:
        raise ValueError(f"grad must have the shape, dtype and device of x {tuple(x.shape)}, got "
                         f"{tuple(grad.shape)} {grad.dtype} on {grad.device}")
    n_out = _check_net(x, weights, biases, layers, layer_params)
    v.check_choice(score, "score", SCORES)
    args = (list(layers), [float(p) for p in layer_params], score)
    if use_native("fused_mlp_saliency_vjp", x, backend):  # the kernels check x, grad and target
        native = _ops.native("fused_mlp_saliency_vjp")
        return native(x.detach(), target, grad.detach(), list(weights), list(biases), *args)
    v.check_finite(x, "x")
    v.check_finite(grad, "grad")
    if not v.is_symbolic(target):
        v.check_target_range(target, n_out)
    with torch.no_grad():
        return _twin.fused_mlp_saliency_vjp(x.detach(), target, grad.detach(), [w.detach() for w in weights],
                                            [b.detach() for b in biases], *args)
