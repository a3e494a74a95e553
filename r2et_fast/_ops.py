"""Loads the compiled extension (``r2et_fast._C``) once and answers what it provides.

Importing the package never fails because of the extension: when it cannot be loaded, one warning
is issued and every op runs on the plain-PyTorch reference backend. The ops' autograd and fake
registrations follow from the ops table and are made by ``r2et_fast.ops``, which the package
always imports.
"""

from __future__ import annotations

import functools
import importlib
import warnings

import torch

_load_error: str | None = None
try:
    # Loading the library registers torch.ops.r2et_fast.* (a compiled module: no stub to type-check).
    importlib.import_module("r2et_fast._C")
except ImportError as exc:  # not built, or built against another torch
    _load_error = f"{type(exc).__name__}: {exc}"
    warnings.warn(
        "r2et_fast: the native extension could not be loaded "
        f"({_load_error}); falling back to the slower plain-PyTorch reference backend. "
        "Build it with `pip install --no-build-isolation -e .`.",
        RuntimeWarning,
        stacklevel=2,
    )


def native_available() -> bool:
    """True when the compiled extension is loaded."""
    return _load_error is None


def load_error() -> str | None:
    """Why the extension could not be loaded, or None."""
    return _load_error


def has_kernel(op: str, device_type: str) -> bool:
    """True when ``r2et_fast::op`` has a native kernel for ``device_type`` ("cpu", "cuda")."""
    if _load_error is not None:
        return False
    key = {"cpu": "CPU", "cuda": "CUDA"}.get(device_type)
    if key is None:
        return False
    return _registered(op, key)


@functools.cache
def _registered(op: str, key: str) -> bool:
    # The extension registers all its kernels when it loads (above), so the answer never changes:
    # asked once per op and device instead of once per call (a dispatcher lookup of ~10 us).
    try:
        return torch._C._dispatch_has_kernel_for_dispatch_key(f"r2et_fast::{op}", key)
    except RuntimeError:  # not an op of the extension (a pure-PyTorch function)
        return False


def native(op: str):
    """The native op ``torch.ops.r2et_fast.<op>``."""
    return getattr(torch.ops.r2et_fast, op)
