"""Where computations run: the one rule for every ``device=`` argument and ``--device`` option
(docs/spec.md "Devices and scale-out").

``device`` is None (the model's device, else the CPU), ``"auto"`` (this process's CUDA device when
one is visible, else the CPU; under torchrun the GPU of ``LOCAL_RANK``), or anything
``torch.device`` accepts (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``). Bad values raise
a ValueError naming the argument, so the CLI turns them into its one-line error.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TypeVar, cast

import torch

AUTO = "auto"

Device = torch.device | str | None
T = TypeVar("T")


def model_device(model: object) -> torch.device | None:
    """The device of ``model``'s first parameter (or buffer); None for a plain function or a
    module without tensors."""
    if isinstance(model, torch.nn.Module):
        for tensor in (*model.parameters(), *model.buffers()):
            return tensor.device
    return None


# What "auto" means in this process when set (the CLI's --device: every model a command builds or
# loads goes there); None: CUDA when available.
_AUTO: list[torch.device] = []


@contextlib.contextmanager
def auto_means(device: object) -> Iterator[torch.device]:
    """While active, ``"auto"`` means ``device`` (resolved) in this process."""
    resolved, before = resolve_device(device), list(_AUTO)
    _AUTO[:] = [resolved]
    try:
        yield resolved
    finally:
        _AUTO[:] = before


def auto_device() -> torch.device:
    """This process's CUDA device when CUDA is available, else the CPU (or what
    :func:`set_auto_device` chose)."""
    if _AUTO:
        return _AUTO[0]
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    return torch.device("cpu")


def resolve_device(device: object, model: object = None, name: str = "device") -> torch.device:
    """``device`` as a ``torch.device``: None -> the model's device (else the CPU), ``"auto"`` ->
    :func:`auto_device`. A device this machine does not have (CUDA without a GPU) is refused."""
    if device is None:
        return model_device(model) or torch.device("cpu")
    if isinstance(device, str) and device == AUTO:
        return auto_device()
    if not isinstance(device, (str, torch.device)) or isinstance(device, bool):
        raise ValueError(f"{name} must be 'auto', a device name such as 'cpu' or 'cuda:0', or a "
                         f"torch.device, got {type(device).__name__} {device!r}")
    try:
        out = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"{name} must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from exc
    if out.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name} {device!r}: CUDA is not available on this machine (use 'cpu' or 'auto')")
    if out.type not in ("cpu", "cuda"):
        raise ValueError(f"{name} must be a CPU or CUDA device, got {device!r}")
    return out


def check_device_name(device: object, name: str = "device") -> None:
    """Refuse a malformed ``device`` now (a config field), without requiring the device itself to be
    present: a config written on a GPU machine must still load on a CPU one."""
    if device is None or (isinstance(device, str) and device == AUTO):
        return
    if isinstance(device, torch.device):
        return
    if not isinstance(device, str):
        raise ValueError(f"{name} must be 'auto', a device name such as 'cpu' or 'cuda:0', or a "
                         f"torch.device, got {type(device).__name__} {device!r}")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"{name} must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from exc
    if parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"{name} must be a CPU or CUDA device, got {device!r}")


def move(model: torch.nn.Module | object, device: torch.device) -> None:
    """Put an ``nn.Module`` on ``device`` (in place); other callables are left as they are."""
    if isinstance(model, torch.nn.Module) and model_device(model) not in (None, device):
        model.to(device)


def compute_device(device: object, model: object, x: torch.Tensor, name: str = "device") -> torch.device:
    """Where an entry point computes: ``device`` when given (the model, a module, is moved there),
    else the model's device, else the device of its inputs ``x``. The entry points move their inputs
    here once per call; what they return stays here."""
    target = model_device(model) if device is None else resolve_device(device, model, name)
    if target is None:
        return x.device if isinstance(x, torch.Tensor) else torch.device("cpu")
    if device is not None:
        move(model, target)
    return target


def to(value: T, device: torch.device) -> T:
    """A tensor on ``device`` (no copy when it is there already); anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.device != device:
        return cast(T, value.to(device))
    return value


def to_with(x: torch.Tensor, y: T, device: torch.device) -> tuple[torch.Tensor, T]:
    """``x`` on ``device``, and ``y`` with it when it was on the device of ``x``: labels on another
    device than their inputs stay there, for the label check to name."""
    if isinstance(y, torch.Tensor) and y.device == x.device:
        y = to(y, device)
    return to(x, device), y
