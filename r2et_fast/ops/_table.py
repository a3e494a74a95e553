"""The native ops of r2et_fast, one row each: the one list everything op-shaped follows from.

From this table follow the Autograd fallthroughs and the fake (meta) kernels registered for the
ops (``r2et_fast/_autograd.py``), the public wrappers and ``__all__`` of ``r2et_fast.ops`` and
``r2et_fast``, the twins exported by ``r2et_fast.reference``, the ops ``scripts/cuda_check.py``
checks and the devices the op tests run on (``python_tests/conftest.py``).

A row names an op of the schema (``csrc/ops/r2et_fast.cpp``) and the module of its Python parts:
its public wrapper is ``r2et_fast.ops.<module>.<name>`` and its plain-PyTorch twin
``r2et_fast.reference.<module>.<name>``. Adding an op means: its schema line, its CPU and CUDA
kernels, its twin, its wrapper and one row here (plus a backward in ``_autograd.FORMULAS`` if it is
differentiable, and its check inputs in ``scripts/cuda_check.py``, which fails without them).

This module imports nothing from r2et_fast when it is loaded (only when a wrapper or twin is looked
up), so ``scripts/cuda_check.py`` can load it by file path next to a freshly built library.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

# Devices every op has a kernel for (scripts/cuda_check.py checks both are compiled).
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Op:
    """One native op. ``fake`` computes the output's shape and dtype (for torch.compile and meta
    tensors); ``differentiable=False`` registers an Autograd fallthrough (no grad_fn), ``True``
    the backward in ``r2et_fast._autograd.FORMULAS``; ``public=False`` marks an op without a
    wrapper (a backward op, called by autograd only)."""

    name: str
    module: str
    fake: Callable
    differentiable: bool = False
    public: bool = True

    @property
    def wrapper(self) -> Callable:
        """The public function ``r2et_fast.ops.<module>.<name>``."""
        if not self.public:
            raise AttributeError(f"r2et_fast::{self.name} has no public wrapper")
        return getattr(importlib.import_module(f"r2et_fast.ops.{self.module}"), self.name)

    @property
    def twin(self) -> Callable:
        """The plain-PyTorch twin ``r2et_fast.reference.<module>.<name>``."""
        return getattr(importlib.import_module(f"r2et_fast.reference.{self.module}"), self.name)


# ---- fake kernels: output shapes and dtypes from the inputs ----------------------------------------

def _per_row(first: torch.Tensor, *_args) -> torch.Tensor:
    return first.new_empty(first.shape[0])


def _topk_indices(x, k):
    return x.new_empty((x.shape[0], k), dtype=torch.int64)


def _ranks(x):
    return x.new_empty(x.shape, dtype=torch.int64)


def _pair_gap(maps, k, pairs, transform, n_pairs):
    from r2et_fast.reference.regularizers import pair_rank_positions

    batch, n = maps.shape
    width = k if pairs == "all" else len(pair_rank_positions(pairs, k, n, n_pairs)[0])
    return (maps.new_empty(batch), maps.new_empty((batch, width), dtype=torch.int64),
            maps.new_empty((batch, 0 if pairs == "all" else width), dtype=torch.int64))


def _pair_gap_backward(grad, maps, hi, lo, pairs, transform):
    return maps.new_empty(maps.shape)


def _hessian_backward(grad, grad_x, grad_xv, kappa):
    return grad_x.new_empty(grad_x.shape), grad_x.new_empty(grad_x.shape)


def _projected_step(x, grad, x0, alpha, eps, step_norm, norm, lower, upper):
    return x.new_empty(x.shape)  # the kernels return a contiguous tensor


def _fused_mlp(x, y, weights, biases, layers, layer_params, *_options_then_input_grad):
    input_grad = _options_then_input_grad[-1]
    return (x.new_empty(()), x.new_empty(3), [w.new_empty(w.shape) for w in weights],
            [b.new_empty(b.shape) for b in biases], x.new_empty(x.shape if input_grad else (0,)))


def _fused_attack(x0, x_start, target, pred0, clean, hi, lo, lower, upper, probe, weights, biases, layers,
                  layer_params, score, abs, objective, pairs, transform, k, eps, alpha, steps,  # noqa: A002
                  *_norms_then_early_stop):
    batch = x0.shape[0]
    flags = x0.new_empty(batch, dtype=torch.bool)
    return (x0.new_empty(x0.shape), x0.new_empty((steps + 1, batch)), x0.new_empty(batch, dtype=torch.int64),
            x0.new_empty(x0.shape), flags, x0.new_empty(batch, dtype=torch.bool))


def _fused_saliency(x, target, predict, weights, biases, layers, layer_params, score):
    return (x.new_empty((x.shape[0], weights[-1].shape[0])), x.new_empty(x.shape),
            target.new_empty(target.shape))


OPS: tuple[Op, ...] = (
    Op("topk_indices", "ranking", _topk_indices),
    Op("ranks", "ranking", _ranks),
    Op("precision_at_k", "ranking", _per_row),
    Op("kendall_tau", "ranking", _per_row),
    Op("kendall_tau_topk", "ranking", _per_row),
    Op("spearman", "ranking", _per_row),
    Op("pearson", "similarity", _per_row, differentiable=True),
    Op("mse", "similarity", _per_row, differentiable=True),
    Op("cosine", "similarity", _per_row, differentiable=True),
    Op("topk_pair_gap", "regularizers", _pair_gap, differentiable=True),
    Op("topk_pair_gap_backward", "regularizers", _pair_gap_backward, differentiable=True, public=False),
    Op("hessian_fd_norm", "regularizers", _per_row, differentiable=True),
    Op("hessian_fd_norm_backward", "regularizers", _hessian_backward, differentiable=True, public=False),
    Op("projected_step", "attacks", _projected_step),
    Op("topk_pair_agreement", "thickness", _per_row),
    # returns its own gradients (wrapped by r2et_fast.engine._fused_mlp.FusedMLPObjective)
    Op("fused_mlp_objective", "fused", _fused_mlp),
    # detached: the forward and backward passes of an MLP at x, for explanations without a graph
    Op("fused_mlp_saliency", "fused", _fused_saliency),
    Op("fused_mlp_saliency_vjp", "fused", lambda x, *_rest: x.new_empty(x.shape)),
    # detached: every step of an explanation attack on an MLP (the attacks' fast path)
    Op("fused_mlp_attack", "fused_attack", _fused_attack),
)

_BY_NAME = {op.name: op for op in OPS}


def names() -> list[str]:
    return [op.name for op in OPS]


def public_names() -> list[str]:
    return [op.name for op in OPS if op.public]


def row(name: str) -> Op:
    return _BY_NAME[name]
