"""The fused MLP saliency as the fast path of detached explanations (docs/spec.md §3).

``explain._score.score_gradient`` asks the registered fast paths first when no graph is wanted
(evaluation maps, the thickness estimator's path points, metrics, attack bookkeeping); this one
answers for models :func:`~r2et_fast.engine._mlp_spec.recognize_mlp` accepts, on the CPU, with one
native call computing the logits and g(x) (``ops.fused.fused_mlp_saliency``). Elsewhere it declines
and autograd computes the gradient as before. CUDA declines too until its kernel has run on a GPU.

:func:`fused_input_saliency` is the same for create_graph gradients inside
``explain._score.input_gradients_only()`` (the attacks' steps): :class:`FusedSaliencyMap`, the op
forward and d<grad, g>/dz by the op's vector-Jacobian product backward, the weights held fixed.
It is opt-in (``register_fast_input_gradient``): it is not faster than autograd here yet.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.autograd.function import once_differentiable

from r2et_fast.engine._mlp_spec import input_problem, recognize_mlp
from r2et_fast.explain._score import register_fast_gradient
from r2et_fast.ops.fused import fused_mlp_saliency, fused_mlp_saliency_vjp


@dataclass(frozen=True)
class _Net:
    """The op arguments of a recognised MLP: detached weights and biases, layer codes, parameters."""

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    kinds: list[int]
    params: list[float]

    def args(self) -> tuple[list[torch.Tensor], list[torch.Tensor], list[int], list[float]]:
        return self.weights, self.biases, self.kinds, self.params


def recognised_net(model: object, z: torch.Tensor, target: torch.Tensor | None) -> _Net | None:
    if z.device.type != "cpu" or z.is_meta or z.dim() < 2 or z.shape[0] == 0:
        return None
    if target is not None and (target.dtype != torch.int64 or tuple(target.shape) != (z.shape[0],)
                               or target.device != z.device):
        return None  # the slow path checks and converts it
    spec = recognize_mlp(model)
    if isinstance(spec, str) or input_problem(spec, z) is not None:
        return None
    biases = [lin.bias.detach() if lin.bias is not None else z.new_empty((0,)) for lin in spec.linears]
    return _Net([lin.weight.detach() for lin in spec.linears], biases, list(spec.kinds), list(spec.params))


def fused_saliency(model: object, z: torch.Tensor, target: torch.Tensor | None, score: str
                   ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(ds/dz, target) of ``model`` at ``z`` by the fused op, or None where it does not apply."""
    net = recognised_net(model, z, target)
    if net is None:
        return None
    _, grad, explained = fused_mlp_saliency(z.detach().reshape(z.shape[0], -1), target, *net.args(), score)
    return grad.reshape(z.shape), explained


class FusedSaliencyMap(torch.autograd.Function):
    """g(z) = ds/dz of an MLP with its weights held fixed, differentiable once w.r.t. z: the
    backward is the op's vector-Jacobian product (the adjoint of the passes), not double backprop."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, target: torch.Tensor | None, net: _Net, score: str):
        _, grad, explained = fused_mlp_saliency(z.detach(), target, *net.args(), score)
        ctx.save_for_backward(z.detach(), explained)
        ctx.net, ctx.score = net, score
        ctx.mark_non_differentiable(explained)
        return grad, explained

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_g, _grad_target):
        z, explained = ctx.saved_tensors
        vjp = fused_mlp_saliency_vjp(z, explained, grad_g.contiguous(), *ctx.net.args(), ctx.score)
        return vjp, None, None, None


def fused_input_saliency(model: object, z: torch.Tensor, target: torch.Tensor | None, score: str
                         ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(ds/dz differentiable w.r.t. z only, target), or None where the fused op does not apply."""
    net = recognised_net(model, z, target)
    if net is None:
        return None
    grad, explained = FusedSaliencyMap.apply(z.reshape(z.shape[0], -1), target, net, score)
    return grad.reshape(z.shape), explained


register_fast_gradient(fused_saliency)
# Not registered by default: on the CPU machine of benchmarks/RESULTS.md an ERAttack step through it
# (forward op + vector-Jacobian product op, both recomputing the passes) ran 1.25x *slower* than
# autograd's double backprop at B = 2048 on Adult's MLP. Opt in with
# ``explain._score.register_fast_input_gradient(fused_input_saliency)``.
