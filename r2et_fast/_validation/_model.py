"""Checks of a model and of the arguments tied to its outputs: the explained class and a baseline."""

from __future__ import annotations

import math
import numbers

import torch

from ._scalars import ArgumentTypeError, check_choice
from ._tensors import values_trusted

REDUCE_CHOICES: tuple[str | None, ...] = (None, "sum", "max")


def check_callable(value: object, name: str) -> None:
    """Something that can be called (a model, an explanation function)."""
    if not callable(value):
        raise ArgumentTypeError(f"{name} must be callable, got {type(value).__name__}")


def check_model_output(out: object, batch: int) -> torch.Tensor:
    """The model returned floating scores of shape (B, C)."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"model must return a torch.Tensor, got {type(out).__name__}")
    if out.dim() != 2 or out.shape[0] != batch or out.shape[1] < 1:
        raise ValueError(f"model must return class scores of shape (B, C) with B = {batch}, "
                         f"got shape {tuple(out.shape)}")
    if not out.is_floating_point():
        raise ValueError(f"model must return floating-point scores, got dtype {out.dtype}")
    return out


def check_reduce_channels(value: object, inputs: torch.Tensor | None = None) -> None:
    """A channel reduction name and, given inputs, that they are 4-D images."""
    check_choice(value, "reduce_channels", REDUCE_CHOICES)
    if value is not None and inputs is not None and inputs.dim() != 4:
        raise ValueError("reduce_channels requires 4-D inputs of shape (B, C, H, W), "
                         f"got inputs of shape {tuple(inputs.shape)}")


def prepare_target(target: object, inputs: torch.Tensor) -> torch.Tensor | None:
    """``target`` (None, int, 0-d or (B,) integer tensor) as a LongTensor (B,), or None.

    The class range is checked later, once the model output (and so C) is known.
    """
    if target is None:
        return None
    batch = inputs.shape[0]
    if isinstance(target, bool):
        raise TypeError("target must be an int or an integer tensor, got bool")
    if isinstance(target, numbers.Integral):
        if target < 0:
            raise ValueError(f"target must be a non-negative class index, got {int(target)}")
        return torch.full((batch,), int(target), dtype=torch.long, device=inputs.device)
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be None, an int or a LongTensor, got {type(target).__name__}")
    if target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool:
        raise TypeError(f"target must be an integer tensor, got dtype {target.dtype}")
    if target.device != inputs.device:
        raise ValueError(f"target is on device {target.device} but inputs are on device {inputs.device}")
    if target.dim() == 0:
        return target.detach().to(torch.long).expand(batch).clone()
    if target.dim() != 1 or target.shape[0] != batch:
        raise ValueError(f"target must have shape ({batch},) to match the inputs batch, "
                         f"got shape {tuple(target.shape)}")
    return target.detach().to(torch.long)


def check_target_range(target: torch.Tensor, num_classes: int) -> None:
    """Class indices lie in [0, C); a single-output model (C == 1) takes labels {0, 1}. Not read
    inside :func:`trusted_values` (a host sync: the Trainer's later batches, an attack's steps)."""
    if values_trusted():
        return
    n_valid = 2 if num_classes == 1 else num_classes
    bad = (target < 0) | (target >= n_valid)
    if bool(bad.any()):
        raise ValueError(f"target must lie in [0, {n_valid}) for a model with {num_classes} output(s), "
                         f"got {target[bad][0].item()}")


def prepare_baseline(baseline: object, inputs: torch.Tensor, keep_graph: bool) -> torch.Tensor:
    """``baseline`` (None, a number, or a tensor broadcastable to inputs) as a tensor of the inputs'
    shape, dtype and device; detached unless ``keep_graph``."""
    if baseline is None:
        return torch.zeros_like(inputs.detach())
    if isinstance(baseline, bool):
        raise TypeError("baseline must be None, a number or a tensor, got bool")
    if isinstance(baseline, numbers.Real):
        if not math.isfinite(float(baseline)):
            raise ValueError(f"baseline must be finite, got {baseline}")
        return torch.full_like(inputs.detach(), float(baseline))
    if not isinstance(baseline, torch.Tensor):
        raise TypeError(f"baseline must be None, a number or a tensor, got {type(baseline)!r}")
    if not (baseline.is_floating_point() or baseline.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"baseline must be a real tensor, got dtype {baseline.dtype}")
    if baseline.dim() > 0 and baseline.device != inputs.device:
        raise ValueError(f"baseline is on device {baseline.device} but inputs are on device {inputs.device}")
    try:
        shape = torch.broadcast_shapes(baseline.shape, inputs.shape)
    except RuntimeError:
        shape = None
    if shape != inputs.shape:
        raise ValueError(f"baseline of shape {tuple(baseline.shape)} is not broadcastable to the inputs "
                         f"shape {tuple(inputs.shape)}")
    if not bool(torch.isfinite(baseline.detach()).all()):
        raise ValueError("baseline contains NaN or Inf values")
    if not keep_graph:
        baseline = baseline.detach()
    return baseline.to(device=inputs.device, dtype=inputs.dtype).expand(inputs.shape)
