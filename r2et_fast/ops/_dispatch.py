"""Runs one call of an op on the backend ``r2et_fast._backend`` resolves for it."""

from __future__ import annotations

import torch

from r2et_fast import _backend, _ops
from r2et_fast import _validation as v
from r2et_fast.ops import _table


def use_native(op: str, first: torch.Tensor, backend: str | None) -> bool:
    """True when this call of ``op`` on ``first``'s device runs the native kernel.

    Meta tensors have no kernel of their own, but the native op's fake kernel (registered from
    the op table with the library) gives the output's shape and dtype: they take the native route
    wherever a CPU call would, ``backend="native"`` included (the twins, plain PyTorch, run on
    meta tensors as well).
    """
    if first.is_meta:
        return _backend.resolve(op, "cpu", backend) == "native"
    return _backend.resolve(op, first.device.type, backend) == "native"


def run(op: str, tensors: dict[str, torch.Tensor], *args, backend: str | None):
    """``op(*tensors, *args)`` natively or on its twin; the twin gets finite input only (the
    kernels check finiteness themselves, row by row; meta and fake tensors have no values to check)."""
    if use_native(op, next(iter(tensors.values())), backend):
        return _ops.native(op)(*tensors.values(), *args)
    for name, t in tensors.items():
        v.check_finite(t, name)
    return _table.row(op).twin(*tensors.values(), *args)
