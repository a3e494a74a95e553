"""One training loop for every method: seeded, deterministic on CPU, atomic checkpoints each
epoch, resumable after a kill (the resumed run reproduces the uninterrupted one exactly)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from r2et_fast import models
from r2et_fast._io import load_torch, save_json, save_torch
from r2et_fast.datasets import Split
from r2et_fast.metrics import prediction_auc
from r2et_fast.train._config import TrainConfig
from r2et_fast.train._objectives import objective

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
LOG = "log.json"


def build_model(cfg: TrainConfig, input_shape: int | tuple[int, ...], n_classes: int = 2) -> torch.nn.Module:
    """The model ``cfg.arch`` for samples of ``input_shape`` (an int: n tabular features); SP swaps
    the activation for softplus(beta). Seeded by ``cfg.seed``."""
    shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        activation = "softplus" if cfg.method == "sp" else cfg.activation
        return models.build(cfg.arch, shape, n_classes, activation=activation, beta=cfg.softplus_beta,
                            hidden=cfg.hidden, node_features=cfg.node_features)


def _epoch_order(cfg: TrainConfig, epoch: int, n: int) -> torch.Tensor:
    # The order depends on (seed, epoch) alone, so a resumed epoch replays the same batches.
    return torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch))


@dataclass
class TrainResult:
    model: torch.nn.Module
    config: TrainConfig
    history: list[dict] = field(default_factory=list)
    out_dir: Path | None = None


def save_model(path: str | Path, model: torch.nn.Module, cfg: TrainConfig, input_shape: tuple[int, ...],
               n_classes: int, dataset: str | None) -> None:
    shape = list(input_shape)
    save_torch(path, {"state_dict": model.state_dict(), "config": cfg.to_dict(), "input_shape": shape,
                      "n_features": math.prod(shape), "n_classes": n_classes, "dataset": dataset})


def load_model(path: str | Path) -> tuple[torch.nn.Module, TrainConfig, dict]:
    """A model saved by ``train`` (``weights_only=True``): (model in eval mode, config, metadata)."""
    payload = load_torch(path)
    cfg = TrainConfig.from_dict(payload["config"])
    shape = tuple(payload.get("input_shape", [payload["n_features"]]))
    model = build_model(cfg, shape, payload["n_classes"])
    model.load_state_dict(payload["state_dict"])
    meta = {k: payload[k] for k in ("n_features", "n_classes", "dataset")}
    meta["input_shape"] = shape
    return model.eval(), cfg, meta


def train(data: Split, cfg: TrainConfig, *, out_dir: str | Path | None = None, resume: bool = True,
          progress: bool = True, dataset_name: str | None = None) -> TrainResult:
    """Train ``cfg.method`` on ``data`` (train split); log validation accuracy and AUC per epoch.

    With ``out_dir`` a checkpoint is written atomically after every epoch, a JSON log beside it, and
    the final model as ``model.pt``; with ``resume`` an existing checkpoint of the same
    configuration is continued.
    """
    input_shape, n_classes = tuple(data.x_train.shape[1:]), int(data.y_train.max()) + 1
    model = build_model(cfg, input_shape, n_classes).to(data.x_train.dtype)
    decay = cfg.weight_decay if cfg.method == "wd" else 0.0
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=decay)
    history: list[dict] = []
    start = 0
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and resume and (out / CHECKPOINT).is_file():
        state = load_torch(out / CHECKPOINT)
        if state["config"] != cfg.to_dict():
            raise ValueError(f"{out / CHECKPOINT} was written with another configuration; "
                             "use another out_dir or resume=False")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, history = state["epoch"], state["history"]

    n = len(data.x_train)
    bar = tqdm(range(start, cfg.epochs), desc=f"train {cfg.method}", disable=not progress,
               initial=start, total=cfg.epochs)
    for epoch in bar:
        model.train()
        began, sums, batches = time.perf_counter(), {}, 0
        order = _epoch_order(cfg, epoch, n)
        for b, first in enumerate(range(0, n, cfg.batch_size)):
            idx = order[first:first + cfg.batch_size]
            loss, parts = objective(model, data.x_train[idx], data.y_train[idx], cfg,
                                    step_seed=cfg.seed * 1_000_003 + epoch * 10_007 + b)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for key, value in {"loss": loss.item(), **parts}.items():
                sums[key] = sums.get(key, 0.0) + value
            batches += 1
        model.eval()
        with torch.no_grad():
            val_acc = (model(data.x_val).argmax(1) == data.y_val).double().mean().item()
        record = {"epoch": epoch + 1, **{k: v / batches for k, v in sums.items()},
                  "val_accuracy": val_acc, "val_auc": prediction_auc(model, data.x_val, data.y_val),
                  "seconds": time.perf_counter() - began}
        history.append(record)
        bar.set_postfix(loss=f"{record['loss']:.3f}", val_auc=f"{record['val_auc']:.3f}")
        if out is not None:
            save_torch(out / CHECKPOINT, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                          "epoch": epoch + 1, "history": history, "config": cfg.to_dict()})
            save_json(out / LOG, {"config": cfg.to_dict(), "dataset": dataset_name, "history": history})
    model.eval()
    if out is not None:
        save_model(out / MODEL, model, cfg, input_shape, n_classes, dataset_name)
    return TrainResult(model=model, config=cfg, history=history, out_dir=out)
