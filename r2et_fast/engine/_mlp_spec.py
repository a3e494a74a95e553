"""Recognising a model as a plain MLP, the input of the fused objective (docs/spec.md §3).

An MLP here is a chain of layers, each either affine (``nn.Linear``) or an elementwise activation
(ReLU, LeakyReLU with any slope, Softplus with any beta and threshold, Tanh). Layers that are the
identity on a (B, n) batch (Identity, Flatten(1, -1), Dropout in eval mode or with p = 0) are
dropped. Accepted containers: ``nn.Sequential`` (nested too) and the package's ``TabularMLP``.
Any order is allowed (two Linears in a row, an activation first or last): the fused passes treat
every layer on its own, so nothing assumes Linear/activation alternation.

The layer codes and the two parameters per layer are what the native op
``r2et_fast::fused_mlp_objective`` reads (``csrc/ops/fused_mlp.h`` has the same numbering).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from r2et_fast.models.tabular import TabularMLP

# Layer codes of the op (keep in step with csrc/ops/fused_mlp.h).
LINEAR, RELU, LEAKY_RELU, SOFTPLUS, TANH = 0, 1, 2, 3, 4
KIND_NAMES = {LINEAR: "linear", RELU: "relu", LEAKY_RELU: "leaky_relu", SOFTPLUS: "softplus", TANH: "tanh"}
# Kinds with a non-zero second derivative: their layers add a term to the adjoint of the backward.
SMOOTH_KINDS = frozenset({SOFTPLUS, TANH})

SUPPORTED = ("Linear, ReLU, LeakyReLU, Softplus, Tanh, Identity, Flatten(1, -1), Dropout (eval mode or "
             "p = 0), nested nn.Sequential, r2et_fast's TabularMLP")


@dataclass(frozen=True)
class MLPSpec:
    """A recognised MLP: one (kind, p0, p1) per kept layer and the Linear modules, in order.

    p0/p1: LeakyReLU (slope, 0); Softplus (beta, threshold); 0 otherwise. ``linears[j]`` is the
    j-th layer of kind LINEAR (a module may appear twice: tied weights). ``flattens_input``: a
    Flatten comes before the first Linear, so inputs of any shape (B, ...) are accepted.
    """

    kinds: tuple[int, ...]
    params: tuple[float, ...]  # two per layer, flat (the op's float[] argument)
    linears: tuple[nn.Linear, ...]
    flattens_input: bool

    @property
    def smooth(self) -> bool:
        """Whether some activation has a non-zero second derivative."""
        return any(kind in SMOOTH_KINDS for kind in self.kinds)

    @property
    def n_outputs(self) -> int:
        """C: the width the last Linear gives (activations keep it)."""
        return self.linears[-1].out_features


def _plain(module: nn.Module, cls: type[nn.Module]) -> bool:
    """``module`` behaves exactly like ``cls``: no overridden forward and no hooks that could
    change what it computes (weight-norm style pre-hooks, output hooks)."""
    return (isinstance(module, cls) and getattr(type(module), "forward", None) is cls.forward
            and not module._forward_hooks and not module._forward_pre_hooks)


def _leaves(module: nn.Module, path: str, out: list[tuple[str, nn.Module]]) -> str | None:
    """Append the layers of ``module`` (containers unrolled) to ``out``; a reason if it is not an MLP."""
    if _plain(module, nn.Sequential):
        # _modules, not named_children(): that skips a module met twice, Sequential.forward does not
        for name, child in module._modules.items():
            if child is None:
                return f"layer {path}[{name}] is None"
            reason = _leaves(child, f"{path}[{name}]" if name.isdigit() else f"{path}.{name}", out)
            if reason is not None:
                return reason
        return None
    if _plain(module, TabularMLP):
        for name in ("hidden", "act", "out"):  # the order of TabularMLP.forward
            reason = _leaves(getattr(module, name), f"{path}.{name}", out)
            if reason is not None:
                return reason
        return None
    out.append((path, module))
    return None


def _layer(path: str, m: nn.Module) -> tuple[int, float, float] | str | None:
    """(kind, p0, p1) of a layer, None for an identity layer, or why it is not supported."""
    if isinstance(m, nn.Linear) and _plain(m, nn.Linear):
        if m.in_features < 1 or m.out_features < 1:
            return f"layer {path} (Linear({m.in_features}, {m.out_features})) has an empty side"
        return LINEAR, 0.0, 0.0
    if _plain(m, nn.ReLU):
        return RELU, 0.0, 0.0
    if isinstance(m, nn.LeakyReLU) and _plain(m, nn.LeakyReLU):
        return LEAKY_RELU, float(m.negative_slope), 0.0
    if isinstance(m, nn.Softplus) and _plain(m, nn.Softplus):
        return SOFTPLUS, float(m.beta), float(m.threshold)
    if _plain(m, nn.Tanh):
        return TANH, 0.0, 0.0
    if _plain(m, nn.Identity):
        return None
    if isinstance(m, nn.Flatten) and _plain(m, nn.Flatten):
        if (m.start_dim, m.end_dim) != (1, -1):
            return (f"layer {path} (Flatten(start_dim={m.start_dim}, end_dim={m.end_dim})) is not "
                    "supported: only Flatten(1, -1), which keeps the batch dimension")
        return None
    if isinstance(m, nn.Dropout) and _plain(m, nn.Dropout):
        if m.training and m.p > 0:
            return f"layer {path} (Dropout(p={m.p}) in training mode) is random: not supported"
        return None
    return f"layer {path} ({type(m).__name__}) is not supported (supported: {SUPPORTED})"


def recognize_mlp(model: object) -> MLPSpec | str:
    """The :class:`MLPSpec` of ``model``, or a message naming the first layer that prevents it."""
    if not isinstance(model, nn.Module):
        return f"model is a {type(model).__name__}, not an nn.Module"
    leaves: list[tuple[str, nn.Module]] = []
    reason = _leaves(model, "model", leaves)
    if reason is not None:
        return reason
    kinds: list[int] = []
    params: list[float] = []
    linears: list[nn.Linear] = []
    flattens = False
    for path, module in leaves:
        layer = _layer(path, module)
        if isinstance(layer, str):
            return layer
        if layer is None:
            flattens = flattens or (isinstance(module, nn.Flatten) and not linears)
            continue
        kind, p0, p1 = layer
        if kind == LINEAR:
            assert isinstance(module, nn.Linear)
            if linears and linears[-1].out_features != module.in_features:
                return (f"layer {path} (Linear({module.in_features}, {module.out_features})) does not "
                        f"take the {linears[-1].out_features} features the layer before it gives")
            linears.append(module)
        kinds.append(kind)
        params += [p0, p1]
    if not linears:
        return "model has no Linear layer: nothing to train"
    return MLPSpec(tuple(kinds), tuple(params), tuple(linears), flattens)


def input_problem(spec: MLPSpec, x: torch.Tensor) -> str | None:
    """Why ``x`` cannot be fed to the MLP ``spec`` describes (shape, dtype, device), or None."""
    first = spec.linears[0]
    if x.dim() != 2 and not spec.flattens_input:
        return (f"x has shape {tuple(x.shape)}: an MLP without a leading Flatten takes (B, n) inputs")
    n = math.prod(x.shape[1:])
    if n != first.in_features:
        return f"x has {n} features per sample but the first Linear takes {first.in_features}"
    for j, lin in enumerate(spec.linears):
        for name, p in (("weight", lin.weight), ("bias", lin.bias)):
            if p is None:
                continue
            if p.dtype != x.dtype or p.device != x.device:
                return (f"Linear layer {j} has its {name} in {p.dtype} on {p.device}, but x is "
                        f"{x.dtype} on {x.device}")
    return None
