"""Atomic writes: a crash never leaves a half-written file behind (write aside, then rename)."""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch


def _atomic(path: str | os.PathLike, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_json(path: str | os.PathLike, payload: Any) -> None:
    _atomic(path, lambda f: f.write(json.dumps(payload, indent=2).encode()))


def save_torch(path: str | os.PathLike, payload: Any) -> None:
    _atomic(path, lambda f: torch.save(payload, f))


def load_torch(path: str | os.PathLike) -> Any:
    """Load a checkpoint safely: tensors and plain containers only (``weights_only=True``)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError, KeyError, ValueError, OSError) as exc:
        # a truncated or foreign file: name it rather than surface the unpickler's internals
        raise ValueError(f"{path} is not a readable r2et_fast checkpoint (corrupted, truncated or "
                         f"another format; torch.load raised {type(exc).__name__})") from exc
