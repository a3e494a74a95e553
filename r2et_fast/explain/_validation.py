"""Argument checks shared by the explanation methods.

Every check raises ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind, bad
value) with the offending argument's name at the start of the message.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

_FLOAT_DTYPES = (torch.float32, torch.float64)
REDUCE_CHOICES: tuple[str | None, ...] = (None, "sum", "max")


def check_model(model: object) -> None:
    """Check that ``model`` can be called on a batch."""
    if not callable(model):
        raise TypeError(f"model must be callable (e.g. a torch.nn.Module), got {type(model)!r}")


def check_inputs(inputs: object, name: str = "inputs") -> torch.Tensor:
    """Check a batch of inputs: float32/float64 tensor, non-empty batch, all values finite."""
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(inputs).__name__}")
    if inputs.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {inputs.dtype}")
    if inputs.dim() == 0:
        raise ValueError(f"{name} must have a leading batch dimension, got a 0-d tensor")
    if inputs.shape[0] == 0 or inputs.numel() == 0:
        raise ValueError(f"{name} must be a non-empty batch, got shape {tuple(inputs.shape)}")
    if not bool(torch.isfinite(inputs.detach()).all()):
        raise ValueError(f"{name} contains NaN or Inf values")
    return inputs


def check_bool(name: str, value: object) -> bool:
    """Check a flag is a real ``bool`` (not a tensor or an int)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def check_choice(name: str, value: object, choices: Sequence[object]) -> object:
    """Check ``value`` is one of ``choices``; the message lists the valid choices."""
    if not any(value is c or (isinstance(value, str) and value == c) for c in choices):
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {valid}; got {value!r}")
    return value


def check_positive_int(name: str, value: object) -> int:
    """Check ``value`` is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def check_optional_positive_int(name: str, value: object) -> int | None:
    """Check ``value`` is None or an int >= 1."""
    return None if value is None else check_positive_int(name, value)


def check_nonnegative_float(name: str, value: object) -> float:
    """Check ``value`` is a finite real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return value


def check_reduce_channels(reduce_channels: object, inputs: torch.Tensor | None = None) -> None:
    """Check the channel reduction name and, given inputs, that they are 4-D images."""
    check_choice("reduce_channels", reduce_channels, REDUCE_CHOICES)
    if reduce_channels is not None and inputs is not None and inputs.dim() != 4:
        raise ValueError(
            "reduce_channels requires 4-D inputs of shape (B, C, H, W), "
            f"got inputs of shape {tuple(inputs.shape)}"
        )


def prepare_target(target: object, inputs: torch.Tensor) -> torch.Tensor | None:
    """Turn ``target`` (None, int, 0-d or (B,) integer tensor) into a LongTensor (B,) or None.

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
        raise ValueError(
            f"target is on device {target.device} but inputs are on device {inputs.device}"
        )
    if target.dim() == 0:
        return target.detach().to(torch.long).expand(batch).clone()
    if target.dim() != 1 or target.shape[0] != batch:
        raise ValueError(
            f"target must have shape ({batch},) to match the inputs batch, "
            f"got shape {tuple(target.shape)}"
        )
    return target.detach().to(torch.long)


def check_target_range(target: torch.Tensor, num_classes: int) -> None:
    """Check class indices lie in [0, C); a single-output model (C == 1) takes labels {0, 1}."""
    n_valid = 2 if num_classes == 1 else num_classes
    if bool(((target < 0) | (target >= n_valid)).any()):
        bad = target[(target < 0) | (target >= n_valid)][0].item()
        raise ValueError(
            f"target must lie in [0, {n_valid}) for a model with {num_classes} output(s), got {bad}"
        )


def check_model_output(out: object, batch: int) -> torch.Tensor:
    """Check the model returned floating scores of shape (B, C)."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"model must return a torch.Tensor, got {type(out).__name__}")
    if out.dim() != 2 or out.shape[0] != batch or out.shape[1] < 1:
        raise ValueError(
            f"model must return class scores of shape (B, C) with B = {batch}, "
            f"got shape {tuple(out.shape)}"
        )
    if not out.is_floating_point():
        raise ValueError(f"model must return floating-point scores, got dtype {out.dtype}")
    return out


def prepare_baseline(baseline: object, inputs: torch.Tensor, keep_graph: bool) -> torch.Tensor:
    """Turn ``baseline`` (None, a number, or a tensor broadcastable to inputs) into a tensor.

    Returns a tensor of the inputs' shape, dtype and device; detached unless ``keep_graph``.
    """
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
        raise ValueError(
            f"baseline is on device {baseline.device} but inputs are on device {inputs.device}"
        )
    try:
        shape = torch.broadcast_shapes(baseline.shape, inputs.shape)
    except RuntimeError:
        shape = None
    if shape != inputs.shape:
        raise ValueError(
            f"baseline of shape {tuple(baseline.shape)} is not broadcastable to the inputs "
            f"shape {tuple(inputs.shape)}"
        )
    if not bool(torch.isfinite(baseline.detach()).all()):
        raise ValueError("baseline contains NaN or Inf values")
    if not keep_graph:
        baseline = baseline.detach()
    return baseline.to(device=inputs.device, dtype=inputs.dtype).expand(inputs.shape)
