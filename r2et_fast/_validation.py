"""Argument checks shared by the public functions. Errors name the offending argument."""

from __future__ import annotations

import numbers

import torch

FLOAT_DTYPES = (torch.float32, torch.float64)


def check_tensor(t, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")


def check_float(t: torch.Tensor, name: str) -> None:
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {t.dtype}")


def check_finite(t: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or Inf")


def check_maps(t, name: str, min_features: int = 1) -> None:
    """A batch of maps: a 2-D (batch, features) float32/float64 tensor with a non-empty batch."""
    check_tensor(t, name)
    check_float(t, name)
    if t.dim() != 2:
        raise ValueError(f"{name} must be a 2-D (batch, features) tensor, got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} has an empty batch (shape {tuple(t.shape)})")
    if t.shape[1] < min_features:
        raise ValueError(f"{name} needs at least {min_features} features, got shape {tuple(t.shape)}")


def check_pair(a, b, min_features: int = 1) -> None:
    check_maps(a, "a", min_features)
    check_maps(b, "b", min_features)
    if a.dtype != b.dtype:
        raise TypeError(f"a and b must have the same dtype, got {a.dtype} and {b.dtype}")
    if a.device != b.device:
        raise ValueError(f"a and b must be on the same device, got {a.device} and {b.device}")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def check_k(k, n: int) -> None:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if not 1 <= k < n:
        raise ValueError(f"k must satisfy 1 <= k < n_features (n_features = {n}), got k = {k}")


def check_positive_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")


def check_batch(t, name: str) -> None:
    """A non-empty batch of inputs (B, ...), float32/float64, finite."""
    check_tensor(t, name)
    check_float(t, name)
    if t.dim() < 2 or t.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty batch (B, ...), got shape {tuple(t.shape)}")
    check_finite(t, name)
