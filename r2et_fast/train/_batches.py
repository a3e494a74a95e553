"""Where a training epoch's batches come from: in-memory tensors in a seeded order, or any iterable
of (x, y) batches (a ``DataLoader`` with any ``Sampler``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

Batch = tuple[torch.Tensor, torch.Tensor]


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's order: a function of (seed, epoch) alone, so a resumed epoch replays
    the batches of the uninterrupted run."""
    return seed * 1_000_003 + epoch


def step_seed(seed: int, epoch: int, batch: int) -> int:
    """A seed per training step (AT's random start), reproducible after a resume."""
    return seed * 1_000_003 + epoch * 10_007 + batch


class TensorBatches:
    """Batches of ``batch_size`` rows of (x, y), in an order drawn from (seed, epoch); the last
    batch may be smaller."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int = 0) -> None:
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same number of rows, got {len(x)} and {len(y)}")
        if len(x) == 0:
            raise ValueError("x is an empty training set")
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        gen = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        order = torch.randperm(len(self.x), generator=gen)
        for first in range(0, len(self.x), self.batch_size):
            idx = order[first:first + self.batch_size]
            yield self.x[idx], self.y[idx]


def set_epoch(source: Iterable, epoch: int) -> None:
    """Tell ``source`` (or its sampler, as DistributedSampler wants) which epoch is starting."""
    for obj in (source, getattr(source, "sampler", None), getattr(source, "batch_sampler", None)):
        if obj is not None and hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)
            return
