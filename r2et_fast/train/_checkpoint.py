"""Building a configured model, and saving and loading trained models (``weights_only=True``)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from r2et_fast import models
from r2et_fast._io import load_torch, save_torch
from r2et_fast.train._config import TrainConfig
from r2et_fast.train._methods import method_class

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
LOG = "log.json"


def build_model(cfg: TrainConfig, input_shape: int | tuple[int, ...], n_classes: int = 2) -> torch.nn.Module:
    """The model ``cfg.arch`` for samples of ``input_shape`` (an int: n tabular features), with the
    activation the method asks for (SP: softplus(beta)). Seeded by ``cfg.seed``."""
    shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        activation = method_class(cfg.method).activation(cfg)
        return models.build(cfg.arch, shape, n_classes, activation=activation, beta=cfg.softplus_beta,
                            hidden=cfg.hidden, node_features=cfg.node_features)


def save_model(path: str | Path, model: torch.nn.Module, cfg: TrainConfig, input_shape: tuple[int, ...],
               n_classes: int, dataset: str | None) -> None:
    shape = list(input_shape)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_torch(path, {"state_dict": state, "config": cfg.to_dict(), "input_shape": shape,
                      "n_features": math.prod(shape), "n_classes": n_classes, "dataset": dataset})


def load_model(path: str | Path) -> tuple[torch.nn.Module, TrainConfig, dict]:
    """A model saved by ``train`` (``weights_only=True``): (model in eval mode, config, metadata)."""
    payload = load_torch(path)
    if not isinstance(payload, dict):
        raise ValueError(f"{path} is not a model saved by r2et_fast.train: it holds a "
                         f"{type(payload).__name__}, not a model record")
    try:
        cfg = TrainConfig.from_dict(payload["config"])
        shape = tuple(payload.get("input_shape", [payload["n_features"]]))
        model = build_model(cfg, shape, payload["n_classes"])
        model.load_state_dict(payload["state_dict"])
        meta = {k: payload[k] for k in ("n_features", "n_classes", "dataset")}
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path} is not a model saved by r2et_fast.train: {first}") from exc
    meta["input_shape"] = shape
    return model.eval(), cfg, meta
