"""Training: every method of the papers in one loop (SPEC §3, §4)."""

from r2et_fast.train._config import METHOD_LABELS, METHODS, TrainConfig
from r2et_fast.train._objectives import objective
from r2et_fast.train._trainer import TrainResult, build_model, load_model, save_model, train

__all__ = ["METHODS", "METHOD_LABELS", "TrainConfig", "TrainResult", "train", "build_model",
           "load_model", "save_model", "objective"]
