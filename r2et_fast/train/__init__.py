"""Training: every method of the papers as an object, one Trainer for any model and device
(docs/spec.md §3, §4)."""

from r2et_fast.train._batches import TensorBatches
from r2et_fast.train._checkpoint import build_model, load_model, save_model
from r2et_fast.train._config import METHOD_LABELS, METHODS, TrainConfig
from r2et_fast.train._loss import R2ETLoss, loss_methods, r2et_loss
from r2et_fast.train._methods import Method, get_method, method_class, register_method
from r2et_fast.train._trainer import Trainer, TrainResult, train

__all__ = ["METHODS", "METHOD_LABELS", "TrainConfig", "TrainResult", "Trainer", "TensorBatches", "train",
           "build_model", "load_model", "save_model", "Method", "get_method", "method_class",
           "register_method", "R2ETLoss", "r2et_loss", "loss_methods"]
