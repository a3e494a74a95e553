"""Class labels as every entry point accepts them (attacks, R2ETLoss): one rule, errors name ``y``."""

from __future__ import annotations

import numbers
from typing import TypeGuard

import torch

from ._scalars import ArgumentTypeError
from ._tensors import values_trusted


def as_labels(y: object, x: torch.Tensor) -> torch.Tensor:
    """``y`` as an int64 tensor (B,) on the device of ``x``.

    Accepted, where unambiguous: an integer tensor of any integer dtype (int8 ... int64, uint8),
    of shape (B,) or 0-d (one label for every sample), on the device of ``x`` (no silent copy
    across devices); a Python int (the same label for every sample); a list or tuple of B Python
    ints. Bools, floats and complex numbers are refused (a bool tensor is a mask, a float label is
    a bug), as are wrong lengths and negative labels; every error names ``y``. The upper end of the
    class range is checked once the model's output is known (:func:`check_label_range`).
    """
    batch = x.shape[0]
    if isinstance(y, torch.Tensor):
        if y.dtype == torch.bool or y.dtype.is_floating_point or y.dtype.is_complex:
            raise ArgumentTypeError(f"y must be an integer tensor of class labels, got dtype {y.dtype}")
        if y.device != x.device:
            raise ValueError(f"y must be on the device of x ({x.device}), got {y.device}")
        if y.dim() == 0:
            labels = y.detach().to(torch.int64).expand(batch).clone()
        elif y.shape == (batch,):
            labels = y.detach().to(torch.int64)
        else:
            raise ValueError(f"y must have shape ({batch},) (one label per sample of x) or be 0-d, "
                             f"got shape {tuple(y.shape)}")
    elif _is_int(y):
        labels = torch.full((batch,), int(y), dtype=torch.int64, device=x.device)
    elif isinstance(y, (list, tuple)):
        if not all(_is_int(v) for v in y):
            bad = next(v for v in y if not _is_int(v))
            raise ArgumentTypeError(f"y must hold Python ints only, got {type(bad).__name__} {bad!r}")
        if len(y) != batch:
            raise ValueError(f"y must hold one label per sample of x ({batch}), got {len(y)}")
        labels = torch.tensor([int(v) for v in y], dtype=torch.int64, device=x.device)
    else:
        raise ArgumentTypeError("y must be an integer tensor, a Python int or a list/tuple of ints, "
                                f"got {type(y).__name__}")
    if not values_trusted() and bool((labels < 0).any()):
        raise ValueError(f"y must hold non-negative class labels, got {int(labels.min())}")
    return labels


def _is_int(value: object) -> TypeGuard[numbers.Integral]:
    # bool is an Integral too, but a True/False label is almost surely a mask passed by mistake
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_label_range(y: torch.Tensor, num_outputs: int) -> None:
    """Labels lie in [0, C), or in {0, 1} for a single-output model (the logit of class 1)."""
    n_valid = 2 if num_outputs == 1 else num_outputs
    if not values_trusted() and bool((y >= n_valid).any()):
        raise ValueError(f"y must lie in [0, {n_valid}) for a model with {num_outputs} output(s), "
                         f"got {int(y.max())}")
