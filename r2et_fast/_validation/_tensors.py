"""Checks of tensor arguments: kind, dtype, finiteness and the batch shapes the ops expect."""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator
from contextvars import ContextVar

import numpy as np
import torch
from torch._subclasses.fake_tensor import FakeTensor

from ._scalars import ArgumentTypeError

FLOAT_DTYPES = (torch.float32, torch.float64)


def is_symbolic(value: torch.Tensor) -> bool:
    """A tensor without values: on the meta device, or a FakeTensor (``FakeTensorMode``,
    ``torch.compile`` tracing). Value checks (finiteness, index ranges) skip it, since reading a
    value (``.item()``, ``bool()``) fails there; shape, dtype and device checks still apply."""
    return value.is_meta or isinstance(value, FakeTensor)


# Inside trusted_values(): the value checks (finiteness, label ranges) and the attacks' vanishing-
# gradient probe are skipped. Each reads a tensor back to the host, a device sync per call; the
# Trainer checks the first batch of an epoch and trusts the rest, an attack checks its call's
# inputs once and trusts its own iterates (docs/spec.md "Devices and scale-out"). Shape, dtype
# and device checks stay.
_TRUSTED: ContextVar[bool] = ContextVar("r2et_fast_trusted_values", default=False)


@contextlib.contextmanager
def trusted_values(trusted: bool = True) -> Iterator[None]:
    """Skip the value checks (not the shape, dtype and device checks) while active, when ``trusted``."""
    token = _TRUSTED.set(trusted or _TRUSTED.get())
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def values_trusted() -> bool:
    return _TRUSTED.get()


def check_tensor(value: object, name: str) -> torch.Tensor:
    """``value`` itself, narrowed to a tensor for the checks that follow."""
    if not isinstance(value, torch.Tensor):
        raise ArgumentTypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def as_tensor(value: object, name: str) -> torch.Tensor:
    """A torch tensor, or a numpy array viewed as one (no copy)."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise ArgumentTypeError(f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}")
    return value


def check_float(value: torch.Tensor, name: str) -> None:
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {value.dtype}")


def check_finite(value: torch.Tensor, name: str) -> None:
    """No NaN or Inf in ``value`` (not checked for a meta or fake tensor: it has no values)."""
    if is_symbolic(value) or _TRUSTED.get():
        return
    if not bool(torch.isfinite(value.detach()).all()):
        raise ValueError(f"{name} contains NaN or Inf")


def check_maps(value: object, name: str, min_features: int = 1) -> torch.Tensor:
    """A batch of maps: a 2-D (batch, features) float32/float64 tensor with a non-empty batch; returns
    ``value`` itself, narrowed to a tensor."""
    value = check_tensor(value, name)
    check_float(value, name)
    if value.dim() != 2:
        raise ValueError(f"{name} must be a 2-D (batch, features) tensor, got shape {tuple(value.shape)}")
    if value.shape[0] == 0:
        raise ValueError(f"{name} has an empty batch (shape {tuple(value.shape)})")
    if value.shape[1] < min_features:
        raise ValueError(f"{name} needs at least {min_features} features, got shape {tuple(value.shape)}")
    return value


def check_pair(a: object, b: object, min_features: int = 1) -> None:
    """Two batches of maps ``a`` and ``b`` of the same shape, dtype and device."""
    a = check_maps(a, "a", min_features)
    b = check_maps(b, "b", min_features)
    if a.dtype != b.dtype:
        raise TypeError(f"a and b must have the same dtype, got {a.dtype} and {b.dtype}")
    if a.device != b.device:
        raise ValueError(f"a and b must be on the same device, got {a.device} and {b.device}")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def check_k(k: object, n: int) -> None:
    """A top-k size for maps of ``n`` features: 1 <= k < n."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise ArgumentTypeError(f"k must be an int, got {type(k).__name__}")
    if not 1 <= int(k) < n:
        raise ValueError(f"k must satisfy 1 <= k < n_features (n_features = {n}), got k = {k}")


def check_batch(value: object, name: str, *, values: bool = True) -> torch.Tensor:
    """A non-empty batch of inputs (B, ...) with B >= 1 and at least one more dimension, float32/float64,
    finite; returns ``value`` itself, narrowed to a tensor. ``values=False`` leaves the finiteness
    check (a host sync) to a kernel that tests the values as it reads them."""
    value = check_tensor(value, name)
    check_float(value, name)
    if value.dim() < 2 or value.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty batch (B, ...), got shape {tuple(value.shape)}")
    if values:
        check_finite(value, name)
    return value


def check_inputs(value: object, name: str = "inputs") -> torch.Tensor:
    """A batch an explainer can explain: float32/float64, a non-empty leading batch dimension (a 1-D
    (B,) batch of scalars is allowed), all values finite."""
    value = check_tensor(value, name)
    check_float(value, name)
    if value.dim() == 0:
        raise ValueError(f"{name} must have a leading batch dimension, got a 0-d tensor")
    if value.shape[0] == 0 or value.numel() == 0:
        raise ValueError(f"{name} must be a non-empty batch, got shape {tuple(value.shape)}")
    if not _TRUSTED.get() and not bool(torch.isfinite(value.detach()).all()):
        raise ValueError(f"{name} contains NaN or Inf values")
    return value
