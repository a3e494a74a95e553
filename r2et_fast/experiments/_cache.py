"""The resume cache of the experiments (docs/spec.md §9): a JSON record per result, reused only when
it was computed with the same key, and a train-or-load helper for models.

A key holds everything that changes the result it guards: the full ``TrainConfig`` of the model
(its ``engine`` included), the key of the model it was fine-tuned from if any (``StartFrom``), the
data set, the split seed and the subset sizes of the training data, the attack budget and the
study's settings, and :data:`CACHE_VERSION`. A result whose stored key
differs is recomputed, and a model whose stored key differs is retrained from scratch in place, so
rerunning a command with other settings never returns results of the old ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch

from r2et_fast import _distributed
from r2et_fast._device import resolve_device
from r2et_fast._io import load_torch, save_json
from r2et_fast.datasets import Split
from r2et_fast.train import TrainConfig, load_model, train
from r2et_fast.train._checkpoint import CHECKPOINT, MODEL

# Part of every key: bump it when the code changes what a cached computation returns.
CACHE_VERSION = 2  # 2: engine='auto' trains MLPs with the fused objective
# Beside model.pt in a run folder: the key the model and its checkpoint were trained with.
MODEL_KEY_FILE = "model_key.json"


def _json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), so equality is exact."""
    return json.loads(json.dumps(value))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def cached(path: str | Path, key: dict, compute: Callable[[], Any]) -> Any:
    """``compute()``, stored at ``path`` with ``key``; a stored record is returned only when its key
    equals ``key`` (with :data:`CACHE_VERSION`), else it is recomputed and overwritten."""
    path = Path(path)
    full = _json({"version": CACHE_VERSION, **key})
    record = _read_json(path) if path.is_file() else None
    if isinstance(record, dict) and record.get("key") == full and "value" in record:
        return record["value"]
    value = _json(compute())
    save_json(path, {"key": full, "value": value})
    return value


def data_key(dataset: str, split_seed: int, max_train: int | None, data: Split | None = None) -> dict:
    """What identifies the data: the data set, the seed of its split, the subset size and, given
    ``data``, a digest of all its splits (so a changed file, encoding or splitter is a new key)."""
    key: dict = {"dataset": dataset, "split_seed": split_seed, "max_train": max_train}
    if data is not None:
        key["digest"] = tensor_digest(data.x_train, data.y_train, data.x_val, data.y_val,
                                      data.x_test, data.y_test)
    return key


def tensor_digest(*tensors: torch.Tensor) -> str:
    """SHA-256 of the tensors' dtypes, shapes and bytes: names data that no :func:`data_key` field
    describes, so that data changed by any setting gives another key."""
    digest = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class StartFrom(NamedTuple):
    """A trained model that a run fine-tunes: its ``model.pt`` and its :func:`model_key`."""

    path: Path
    key: dict


def model_key(tcfg: TrainConfig, data: dict, start: StartFrom | None = None) -> dict:
    """The key of a model: its full training configuration and the :func:`data_key` of its data;
    for a model fine-tuned from another (``start``), also ``{"init": {"mode": "pretrained",
    "from": <that model's key>}}`` (models trained from scratch have no ``init``, as before).

    A model trained on a GPU differs from the CPU one in rounding (other kernels, other summation
    orders), so the device type joins the key there; CPU keys stay as they were. Neither the
    device index nor the world size of a launch does: the same GPU model, and each rank trains a
    whole model in ``reproduce`` (docs/spec.md "Devices and scale-out")."""
    key = {"version": CACHE_VERSION, "train": tcfg.to_dict(), "data": data}
    kind = resolve_device(tcfg.device).type
    if kind != "cpu":
        key["device"] = kind
    if start is not None:
        key["init"] = {"mode": "pretrained", "from": start.key}
    return _json(key)


def train_or_load(data: Split, tcfg: TrainConfig, run: str | Path, trained_on: dict, *,
                  dataset_name: str | None = None, progress: bool = False,
                  distributed: bool | None = None, start: StartFrom | None = None) -> torch.nn.Module:
    """The model ``tcfg`` trained on ``data`` (identified by ``trained_on``, a :func:`data_key`), in
    eval mode: loaded from ``run/model.pt`` when that was trained with the same :func:`model_key`,
    else trained in ``run`` (resuming a checkpoint of the same key; any other is discarded).

    ``dataset_name`` is recorded in the saved model (``r2et_fast.train.train``). ``distributed``: as
    ``train``'s (None: data-parallel under a torchrun launch; the world size then joins the key, as
    the ranks' gradient sums round differently from one process's; False: this process alone, as
    ``reproduce`` trains each model on one rank). ``start``: fine-tune that model (its weights, a
    fresh optimizer) instead of training from the seed's initialisation; it joins the key."""
    run = Path(run)
    key = model_key(tcfg, trained_on, start)
    if distributed is not False and _distributed.launched():
        key["world_size"] = _distributed.launch_size()
    same = _read_json(run / MODEL_KEY_FILE) == key
    if same and (run / MODEL).is_file():
        model, saved, _ = load_model(run / MODEL)
        if saved.to_dict() == tcfg.to_dict():
            return model.eval()
        same = False
    if not same:  # a model or checkpoint of other settings: never resumed, never reused
        for name in (MODEL, CHECKPOINT):
            (run / name).unlink(missing_ok=True)
        save_json(run / MODEL_KEY_FILE, key)
    init_state = None if start is None else load_torch(start.path)["state_dict"]
    result = train(data, tcfg, out_dir=run, resume=same, progress=progress, dataset_name=dataset_name,
                   distributed=distributed, init_state=init_state)
    return result.model.eval()
