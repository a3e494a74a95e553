"""The fused MLP objective as an autograd Function (docs/spec.md §3).

``fused_objective(model, x, y, ...)`` computes what ``_R2ETFamily.__call__`` and
``EstimatedHessian.__call__`` (``r2et_fast/train/_methods.py``) compute for a model
:func:`~r2et_fast.engine._mlp_spec.recognize_mlp` accepts: CE - w_g G_k + w_h Ĥ and its parts,
but without building the double-backprop graph. One op call (``ops.fused.fused_mlp_objective``,
native kernel or its twin) returns the objective and its gradient w.r.t. every weight and bias;
the Function hands those gradients back, times the incoming gradient, when ``loss.backward()``
runs, so any optimizer, gradient clipping or loss scaling works as with the autograd path.

The gradients are first-order only (``once_differentiable``): differentiating them again raises.

``FusedEngine`` (registered as ``engine="fused"``) names this path in the engine registry: ``auto``
picks it for every model it can run; named explicitly, it refuses other models with the offending
layer's name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.autograd.function import once_differentiable

from r2et_fast import _ops
from r2et_fast import _validation as v
from r2et_fast.engine._autograd import AutogradEngine
from r2et_fast.engine._base import _REGISTRY, GradientEngine, Gradients, Model
from r2et_fast.engine._mlp_spec import MLPSpec, input_problem, recognize_mlp
from r2et_fast.ops._dispatch import use_native
from r2et_fast.ops.fused import fused_mlp_objective, objective_args

Parts = dict[str, torch.Tensor]


@dataclass(frozen=True)
class _Plan:
    """Everything of a call that is not a tensor: the network's layers and the objective's options."""

    layers: tuple[int, ...]
    params: tuple[float, ...]
    has_bias: tuple[bool, ...]
    options: dict  # the op's keyword arguments from score to adaptive
    backend: str | None


class FusedMLPObjective(torch.autograd.Function):
    """forward(plan, x, y, *weights, *biases) -> (loss, parts); ``biases`` holds only the Linear
    layers that have one. parts = [ce, hess, gap], detached (for the log)."""

    @staticmethod
    def forward(ctx, plan: _Plan, x: torch.Tensor, y: torch.Tensor, *tensors: torch.Tensor):
        n_linear = len(plan.has_bias)
        weights, present = list(tensors[:n_linear]), iter(tensors[n_linear:])
        biases = [next(present) if has else x.new_empty((0,)) for has in plan.has_bias]
        want_x = bool(ctx.needs_input_grad[1])
        flat = x.reshape(x.shape[0], -1)
        if use_native("fused_mlp_objective", flat, plan.backend):
            # the options checked once (cached), the tensors by the kernel: no Python checks per step
            args = objective_args(flat.shape[1], plan.layers, plan.params, **plan.options, input_grad=want_x)
            loss, parts, gw, gb, gx = _ops.native("fused_mlp_objective")(flat, y, weights, biases, *args)
        else:
            loss, parts, gw, gb, gx = fused_mlp_objective(
                flat, y, weights, biases, list(plan.layers), list(plan.params), **plan.options,
                input_grad=want_x, backend=plan.backend)
        # Plain attributes, not save_for_backward: these are results, never modified in place.
        ctx.grads = (gx.reshape(x.shape) if want_x else None, gw,
                     [g for g, has in zip(gb, plan.has_bias) if has])
        ctx.mark_non_differentiable(parts)
        return loss, parts

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss, *_unused):
        gx, gw, gb = ctx.grads
        # always scaled: telling loss.backward()'s 1.0 apart would read grad_loss back to the host
        # at every step, and x * 1.0 is x exactly, so the gradients are the same bits either way
        scaled = [g * grad_loss for g in (*gw, *gb)]
        return (None, None if gx is None else gx * grad_loss, None, *scaled)


def mean_pair_count(pairs: str, k: int, n: int, n_pairs: int | None) -> int:
    """The divisor of ``regularizers.mean_pair_gap``, to the letter: k (n - k) for "all", else
    n_pairs (mm only) or min(k, n - k). For "anchor" this is not the number of pairs it sums
    (k - 1 + min(k, n - k) by default); the fused objective reproduces the existing convention."""
    n_pairs = n_pairs if pairs == "mm" else None
    return k * (n - k) if pairs == "all" else (n_pairs or min(k, n - k))


def mlp_spec_or_raise(model: object, x: torch.Tensor) -> MLPSpec:
    """The MLP spec of ``model`` for input ``x``, else a ValueError naming the layer or the input."""
    spec = recognize_mlp(model)
    if isinstance(spec, str):
        raise ValueError(f"the fused MLP objective cannot run this model: {spec}")
    problem = input_problem(spec, x)
    if problem is not None:
        raise ValueError(f"the fused MLP objective cannot run this model on x: {problem}")
    return spec


def fused_objective(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, score: str = "loss",
                    k: int = 8, pairs: str = "all", transform: str = "linear", n_pairs: int | None = None,
                    kappa: float = 1e-3, lambda_gap: float = 0.3, lambda_hess: float = 0.1,
                    with_gap: bool = True, with_hessian: bool = True, adaptive: bool = False,
                    backend: str | None = None) -> tuple[torch.Tensor, Parts]:
    """(loss, parts) of R2ET (``with_gap``) or Est-H (``with_gap=False``) for an MLP, as the
    methods of ``r2et_fast.train`` compute them; ``loss.backward()`` fills every parameter's grad.

    parts: ``ce``, ``hess`` (with ``with_hessian``) and ``gap`` (with ``with_gap``), detached.
    The task loss is cross-entropy; for a single-output model (C = 1) BCE-with-logits.
    """
    v.check_batch(x, "x", values=False)  # the op checks the values (the kernel while reading them)
    spec = mlp_spec_or_raise(model, x)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a tensor of labels, got {type(y).__name__}")
    n = math.prod(x.shape[1:])
    count = mean_pair_count(pairs, k, n, n_pairs) if with_gap else 1
    options = dict(score=score, k=k, pairs=pairs, transform=transform,
                   n_pairs=n_pairs if pairs == "mm" else None, pair_count=count, kappa=kappa,
                   lambda_gap=lambda_gap, lambda_hess=lambda_hess, with_gap=with_gap,
                   with_hessian=with_hessian, adaptive=adaptive)
    plan = _Plan(spec.kinds, spec.params, tuple(lin.bias is not None for lin in spec.linears), options,
                 backend)
    tensors = [lin.weight for lin in spec.linears]
    tensors += [lin.bias for lin in spec.linears if lin.bias is not None]
    loss, values = FusedMLPObjective.apply(plan, x, y, *tensors)
    ce, hess, gap = values.unbind()
    parts: Parts = {"ce": ce}
    if with_hessian:
        parts["hess"] = hess
    if with_gap:
        parts["gap"] = gap
    return loss, parts


class FusedEngine(GradientEngine):
    """fused: MLPs of Linear and ReLU/LeakyReLU/Softplus/Tanh layers; R2ET and Est-H computed by one
    fused op (``fused_objective``) instead of double backprop. ``auto`` picks it for every model it
    can run on the CPU. Callers that want g(x) with a graph (explanations, attacks, the other regularisers)
    get the passes of the engine ``auto`` would pick without it."""

    name = "fused"

    def unsupported(self, model: Model, x: torch.Tensor) -> str | None:
        spec = recognize_mlp(model)
        return spec if isinstance(spec, str) else input_problem(spec, x)

    def preferred(self, model: Model, x: torch.Tensor) -> bool:
        # Wherever it runs (resolve_engine asks ``unsupported`` next), on the CPU: the CUDA kernel
        # has not run on a GPU yet, so there it stays opt-in (engine="fused").
        return x.device.type == "cpu"

    def gradients(self, model: Model, x: torch.Tensor, target: torch.Tensor | None, *, score: str,
                  kappa: float | None = None) -> Gradients:
        # The fused op returns the objective's parameter gradients, not g(x) with a graph.
        return _graph_engine(model, x).gradients(model, x, target, score=score, kappa=kappa)


def _graph_engine(model: Model, x: torch.Tensor) -> GradientEngine:
    """The engine ``auto`` resolves to when the fused one is left out."""
    ranked = sorted((item for name, item in _REGISTRY.items() if name != FusedEngine.name),
                    key=lambda item: -item[0])
    for _, engine in ranked:
        if engine.preferred(model, x) and engine.unsupported(model, x) is None:
            return engine
    return _AUTOGRAD


_AUTOGRAD = AutogradEngine()
