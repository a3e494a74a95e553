"""Backend selection: ``"native"`` (the C++/CUDA extension) or ``"reference"`` (plain PyTorch).

The process-wide choice comes from ``set_backend`` or the ``R2ET_FAST_BACKEND`` environment
variable (``auto`` by default); every op also takes ``backend=`` for a single call. ``auto`` means
native when the extension is loaded and has a kernel for the tensors' device, reference otherwise.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from r2et_fast import _ops

BACKENDS = ("auto", "native", "reference")
ENV_VAR = "R2ET_FAST_BACKEND"

_requested: str | None = None  # None: read the environment variable


def _check_name(name: str, source: str) -> str:
    if not isinstance(name, str) or name.lower() not in BACKENDS:
        raise ValueError(f"{source} must be one of {BACKENDS}, got {name!r}")
    return name.lower()


def requested_backend() -> str:
    """The backend asked for (``auto``, ``native`` or ``reference``), before resolution."""
    if _requested is not None:
        return _requested
    return _check_name(os.environ.get(ENV_VAR, "auto"), f"environment variable {ENV_VAR}")


def set_backend(name: str) -> None:
    """Select the process-wide backend: ``"auto"``, ``"native"`` or ``"reference"``."""
    global _requested
    name = _check_name(name, "backend")
    if name == "native" and not _ops.native_available():
        raise RuntimeError(f"backend 'native' requested but the extension is unavailable: "
                           f"{_ops.load_error()}")
    _requested = name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Context manager that selects a backend for the duration of a ``with`` block."""
    global _requested
    previous = _requested
    set_backend(name)
    try:
        yield
    finally:
        _requested = previous


def backend() -> str:
    """The backend ops use by default now: ``"native"`` or ``"reference"``."""
    name = requested_backend()
    if name == "auto":
        return "native" if _ops.native_available() else "reference"
    return name


def resolve(op: str, device_type: str, override: str | None = None) -> str:
    """The backend one call of ``op`` on ``device_type`` tensors runs on."""
    name = requested_backend() if override is None else _check_name(override, "backend")
    if name == "reference":
        return "reference"
    has_kernel = _ops.has_kernel(op, device_type)
    if name == "native":
        if not has_kernel:
            reason = _ops.load_error() or f"no {device_type} kernel was compiled"
            raise RuntimeError(f"backend 'native' cannot run r2et_fast::{op} on "
                               f"{device_type}: {reason}")
        return "native"
    return "native" if has_kernel else "reference"
