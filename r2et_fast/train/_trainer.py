"""The training loop for any model and device (docs/spec.md §3, §4): seeded, deterministic on CPU,
atomic checkpoints each epoch, resumable after a kill (the resumed run reproduces the
uninterrupted one exactly), logs and checkpoints written by the main process only.

Under a torchrun launch (an initialised process group) the Trainer trains one model with
DistributedDataParallel: every rank sees the same seeded batches and takes its contiguous share of
each, and its loss is weighted by that share so that DDP's average of the ranks' gradients is the
gradient of the whole batch's mean (docs/spec.md "Devices and scale-out"). A DataLoader over a
``DistributedSampler`` is taken as already shared out."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from r2et_fast import _distributed
from r2et_fast._device import resolve_device
from r2et_fast._io import load_torch, save_json, save_torch
from r2et_fast._validation import check_finite, trusted_values
from r2et_fast.datasets import Split
from r2et_fast.metrics import prediction_auc
from r2et_fast.train._batches import TensorBatches, set_epoch, step_seed
from r2et_fast.train._checkpoint import CHECKPOINT, LOG, MODEL, build_model, save_model
from r2et_fast.train._config import TrainConfig
from r2et_fast.train._methods import get_method

OptimizerFactory = Callable[[Iterator[torch.nn.Parameter]], torch.optim.Optimizer]


@dataclass
class TrainResult:
    model: torch.nn.Module
    config: TrainConfig
    history: list[dict] = field(default_factory=list)
    out_dir: Path | None = None


class Trainer:
    """Trains a built model with the method named by ``cfg``.

    Args:
        model: any ``nn.Module`` mapping a batch to logits (B, C).
        cfg: the run's :class:`TrainConfig` (method, hyper-parameters, epochs, seed, engine).
        device: where the model and every batch go (default: ``cfg.device`` unless "auto", else
            the model's device).
        optimizer: ``params -> Optimizer`` (default: Adam with ``cfg.lr`` and the method's weight
            decay; a factory of your own sets its own decay, so WD's ``cfg.weight_decay`` is then
            yours to pass).
        wrap: ``model -> model`` applied once before training, e.g. DistributedDataParallel; the
            objective calls the wrapped model, checkpoints hold the unwrapped one.
        is_main: whether this process writes checkpoints, the log and ``model.pt`` (default: rank 0).
        distributed: train data-parallel over the initialised process group (default: whether one
            of more than one process is initialised); ``wrap`` defaults to DDP then.
        out_dir: where those go (None: nothing is written, nothing resumed).
        resume: continue from ``out_dir``'s checkpoint when its configuration matches.
    """

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, *, device: torch.device | str | None = None,
                 optimizer: OptimizerFactory | None = None, wrap: Callable[[torch.nn.Module], torch.nn.Module]
                 | None = None, is_main: bool | None = None, out_dir: str | Path | None = None,
                 resume: bool = True, progress: bool = True, dataset_name: str | None = None,
                 distributed: bool | None = None) -> None:
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
        if device is None and not (isinstance(cfg.device, str) and cfg.device == "auto"):
            device = cfg.device
        self.device = resolve_device(device, model)
        self.model = model.to(self.device)
        self.cfg, self.method = cfg, get_method(cfg)
        decay = self.method.weight_decay()
        factory = optimizer or (lambda params: torch.optim.Adam(params, lr=cfg.lr, weight_decay=decay))
        self.optimizer = factory(self.model.parameters())
        self.distributed = _distributed.active() if distributed is None else bool(distributed)
        if self.distributed and not _distributed.initialized():
            raise ValueError("distributed=True needs an initialised process group (launch with "
                             "torchrun; r2et_fast._distributed.init())")
        # a group of one is allowed when asked for explicitly (a 1-GPU DDP smoke run)
        self.rank = torch.distributed.get_rank() if self.distributed else 0
        self.world = torch.distributed.get_world_size() if self.distributed else 1
        if wrap is None and self.distributed:
            wrap = self._ddp
        self.wrapped = wrap(self.model) if wrap is not None else self.model
        self.is_main = self.rank == 0 if is_main is None else is_main
        self.progress, self.dataset_name = progress, dataset_name
        self.out = Path(out_dir) if out_dir is not None else None
        self.resume = resume
        self.history: list[dict] = []
        self.start_epoch = 0

    def _ddp(self, model: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index if self.device.index is not None else torch.cuda.current_device()] \
            if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def _shard(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """This rank's rows of a batch and their share of it. With fewer rows than ranks a rank
        without rows takes a stand-in row of weight 0, so every rank still runs the step's
        collectives."""
        start, stop = _distributed.bounds(len(x), self.rank, self.world)
        if start == stop:
            return x[:1], y[:1], 0.0
        return x[start:stop], y[start:stop], (stop - start) / len(x)

    def _restore(self) -> None:
        if self.out is None or not self.resume or not (self.out / CHECKPOINT).is_file():
            return
        path = self.out / CHECKPOINT
        state = load_torch(path)
        keys = ("config", "model", "optimizer", "epoch", "history")
        if not isinstance(state, dict) or any(key not in state for key in keys):
            raise ValueError(f"{path} is not a checkpoint written by the Trainer (expected the keys "
                             f"{', '.join(keys)}); use another out_dir, or resume=False")
        if TrainConfig.from_dict(state["config"]) != self.cfg:
            raise ValueError(f"{self.out / CHECKPOINT} was written with another configuration; "
                             "use another out_dir, or resume=False (CLI: --restart) to train from scratch")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"{path} does not fit this model: {first}") from exc
        self.start_epoch, self.history = state["epoch"], state["history"]

    def _epoch(self, batches: Iterable, epoch: int) -> dict[str, float]:
        self.model.train()
        sums: dict[str, torch.Tensor] = {}
        count = 0
        # a DataLoader over a DistributedSampler already gives each rank its own rows: its batches
        # are not shared out again, and each counts as 1 / world of the step
        sharded = isinstance(getattr(batches, "sampler", None), DistributedSampler)
        for b, (x, y) in enumerate(batches):
            share = 1.0
            if self.world > 1:
                x, y, share = (x, y, 1 / self.world) if sharded else self._shard(x, y)
                self.method.batch_mean = partial(_distributed.batch_mean, share=share)
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            if b == 0:
                # the value checks of the ops read the data back to the host at every call; the
                # first batch of each epoch is checked here, the others are trusted (a source
                # of batches yielding NaN later is caught by the epoch's loss, see below)
                check_finite(x, "the training batch x")
            with trusted_values(b > 0):
                loss, parts = self.method(self.wrapped, x, y, step_seed=step_seed(self.cfg.seed, epoch, b))
            self.optimizer.zero_grad()
            # DDP averages the ranks' gradients: weighted by share * world, the average is the
            # gradient of the whole batch's mean even when the shares differ in size
            (loss * (share * self.world) if self.world > 1 else loss).backward()
            self.optimizer.step()
            # float64 sums on the device: one host sync per epoch, the values of summing .item()s
            for key, value in {"loss": loss.detach(), **parts}.items():
                value = value.double() * share if self.world > 1 else value.double()
                sums[key] = sums[key] + value if key in sums else value
            count += 1
        if count == 0:
            raise ValueError("the batch source yielded no batches")
        stacked = torch.stack(list(sums.values()))
        if self.world > 1:  # the ranks' weighted shares add up to the batch means
            torch.distributed.all_reduce(stacked)
        values = stacked.tolist()
        if not all(map(math.isfinite, values)):
            raise ValueError(f"training diverged or met non-finite data in epoch {epoch + 1}: "
                             f"{dict(zip(sums, values))}")
        return {key: value / count for key, value in zip(sums, values)}

    def _validate(self, val: tuple[torch.Tensor, torch.Tensor] | None) -> dict[str, float]:
        if val is None:
            return {}
        self.model.eval()
        x, y = val[0].to(self.device), val[1].to(self.device)
        with torch.no_grad():
            acc = (self.model(x).argmax(1) == y).double().mean().item()
        return {"val_accuracy": acc, "val_auc": prediction_auc(self.model, x, y)}

    def _save_checkpoint(self, epoch: int) -> None:
        assert self.out is not None
        save_torch(self.out / CHECKPOINT, {"model": self.model.state_dict(),
                                           "optimizer": self.optimizer.state_dict(), "epoch": epoch,
                                           "history": self.history, "config": self.cfg.to_dict()})
        save_json(self.out / LOG, {"config": self.cfg.to_dict(), "dataset": self.dataset_name,
                                   "history": self.history})

    def fit(self, batches: Iterable, val: tuple[torch.Tensor, torch.Tensor] | None = None, *,
            input_shape: tuple[int, ...] | None = None, n_classes: int | None = None) -> TrainResult:
        """Train for ``cfg.epochs`` epochs over ``batches`` (re-iterated each epoch; ``set_epoch``
        is called on it or its sampler first), validating on ``val`` = (x, y) after each epoch.

        ``model.pt`` is written when ``out_dir`` is set and ``input_shape``/``n_classes`` are given.
        """
        self._restore()
        cfg = self.cfg
        bar = tqdm(range(self.start_epoch, cfg.epochs), desc=f"train {cfg.method}",
                   disable=not self.progress or not self.is_main, initial=self.start_epoch, total=cfg.epochs)
        for epoch in bar:
            began = time.perf_counter()
            set_epoch(batches, epoch)
            record = {"epoch": epoch + 1, **self._epoch(batches, epoch), **self._validate(val),
                      "seconds": time.perf_counter() - began}
            self.history.append(record)
            bar.set_postfix(loss=f"{record['loss']:.3f}",
                            **({"val_auc": f"{record['val_auc']:.3f}"} if "val_auc" in record else {}))
            if self.out is not None and self.is_main:
                self._save_checkpoint(epoch + 1)
        self.model.eval()
        if self.out is not None and self.is_main and input_shape is not None and n_classes is not None:
            save_model(self.out / MODEL, self.model, cfg, input_shape, n_classes, self.dataset_name)
        if self.distributed:  # no rank reads the run folder before rank 0 has written it
            _distributed.barrier()
        return TrainResult(model=self.model, config=cfg, history=self.history, out_dir=self.out)


def train(data: Split, cfg: TrainConfig, *, out_dir: str | Path | None = None, resume: bool = True,
          progress: bool = True, dataset_name: str | None = None,
          device: torch.device | str | None = None, distributed: bool | None = None,
          init_state: dict[str, torch.Tensor] | None = None) -> TrainResult:
    """Build the model ``cfg.arch`` on ``device`` (default ``cfg.device``; "auto": CUDA when
    available) and train ``cfg.method`` on ``data``'s train split, logging validation accuracy and
    AUC per epoch. The data stay where they are; each batch moves to the device as it is used.
    Under a torchrun launch the ranks train one model data-parallel (:class:`Trainer`; this
    process joins the launch's group first); ``distributed=False`` trains in this process alone.

    With ``out_dir`` a checkpoint is written atomically after every epoch, a JSON log beside it, and
    the final model as ``model.pt``; with ``resume`` an existing checkpoint of the same
    configuration is continued.

    ``init_state``: a state dict loaded into the built model before training (fine-tuning a trained
    model: its weights, a fresh optimizer); a resumed checkpoint's weights replace it.
    """
    input_shape, n_classes = tuple(data.x_train.shape[1:]), int(data.y_train.max()) + 1
    where = resolve_device(cfg.device if device is None else device, None,
                           "device" if device is not None else "cfg.device")
    if distributed is not False:
        _distributed.init(where)
    model = build_model(cfg, input_shape, n_classes).to(device=where, dtype=data.x_train.dtype)
    if init_state is not None:
        model.load_state_dict(init_state)
    trainer = Trainer(model, cfg, device=where, out_dir=out_dir, resume=resume, progress=progress,
                      dataset_name=dataset_name, distributed=distributed,
                      is_main=None if distributed is not False else True)
    batches = TensorBatches(data.x_train, data.y_train, cfg.batch_size, cfg.seed)
    return trainer.fit(batches, (data.x_val, data.y_val), input_shape=input_shape, n_classes=n_classes)
