"""Train / validation / test splits: the :class:`Split` record and the one seeded stratified splitter
that every data set uses (docs/spec.md §9).

:func:`stratified_split` makes the same split on every machine: only ``torch.randperm`` on a CPU
generator decides it. Its rule, per class ``c`` with ``n_c`` members (classes in ascending order,
members in ascending index order):

1. a seeded permutation of the class's members;
2. the first ``round_half_up(test_fraction · n_c)`` members go to test, the next
   ``round_half_up(val_fraction · n_c)`` to validation, the rest to train;

then each split (train, validation, test, in that order) is shuffled once more with the same
generator, so no split is ordered by class. Rounding half up (``floor(x + 0.5)``, not Python's
``round``, which rounds half to even) is the rule the committed tabular splits were made with; the
same rule sizes the pair sets of the pair data sets.

A split with a zero fraction is empty; a split with a positive fraction, and train, get at least
one member of every class (stratification), otherwise the splitter refuses the fractions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from r2et_fast._validation import ArgumentTypeError, as_tensor, check_fraction

__all__ = ["Split", "check_split_fractions", "round_half_up", "stratified_split"]


@dataclass(frozen=True)
class Split:
    """Train/validation/test tensors of one data set."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_features(self) -> int:
        """Features per sample (all dimensions after the batch one)."""
        return self.x_train[0].numel()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def round_half_up(x: float) -> int:
    """``floor(x + 0.5)``: the splits' rounding rule (2.5 -> 3, where ``round`` gives 2)."""
    return int(math.floor(x + 0.5))


def check_split_fractions(val_fraction: object, test_fraction: object, *,
                          allow_zero: bool = False) -> tuple[float, float]:
    """Both fractions in (0, 1) (or [0, 1) with ``allow_zero``) and leaving rows for training."""
    val = check_fraction(val_fraction, "val_fraction", allow_zero=allow_zero)
    test = check_fraction(test_fraction, "test_fraction", allow_zero=allow_zero)
    if val + test >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be < 1 to leave rows for training, got "
                         f"{val} + {test} = {val + test}")
    return val, test


def _labels(labels: object) -> torch.Tensor:
    if isinstance(labels, np.ndarray):
        labels = labels.copy()  # the loaders keep their arrays read-only; torch wants writable memory
    t = as_tensor(labels, "labels")
    if t.dim() != 1:
        raise ValueError(f"labels must be a 1-D tensor of class ids, got shape {tuple(t.shape)}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got dtype {t.dtype}")
    if t.numel() == 0:
        raise ValueError("labels is empty: there is nothing to split")
    return t.detach().cpu().long()


def _generator(seed: object) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        if seed.device.type != "cpu":
            raise ValueError(f"seed must be an int or a CPU torch.Generator, got one on {seed.device}")
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ArgumentTypeError(f"seed must be an int or a torch.Generator, got {type(seed).__name__}")
    return torch.Generator().manual_seed(int(seed))


def stratified_split(labels: torch.Tensor | np.ndarray, val_fraction: float, test_fraction: float,
                     seed: int | torch.Generator = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices ``(train, val, test)`` (int64 CPU tensors) of a seeded split stratified by ``labels``.

    Args:
        labels: ``(N,)`` integer class ids (torch or numpy).
        val_fraction, test_fraction: share of every class in validation / test, each in [0, 1),
            summing to less than 1. See the module docstring for the rounding rule.
        seed: an int, or a CPU ``torch.Generator`` to draw from (it advances, so a caller can keep
            drawing from the same stream afterwards).

    The three index sets are disjoint and together cover ``range(N)``.
    """
    y = _labels(labels)
    val_fraction, test_fraction = check_split_fractions(val_fraction, test_fraction, allow_zero=True)
    g = _generator(seed)
    parts: list[list[torch.Tensor]] = [[], [], []]
    for c in torch.unique(y).tolist():
        members = torch.nonzero(y == c).flatten()
        members = members[torch.randperm(len(members), generator=g)]
        n_test = round_half_up(test_fraction * len(members))
        n_val = round_half_up(val_fraction * len(members))
        n_train = len(members) - n_test - n_val
        if n_train < 1 or (test_fraction > 0 and n_test < 1) or (val_fraction > 0 and n_val < 1):
            raise ValueError(f"class {c} has {len(members)} rows: too few for val_fraction={val_fraction} "
                             f"and test_fraction={test_fraction} to leave every split a row of it")
        parts[0].append(members[n_test + n_val:])
        parts[1].append(members[n_test:n_test + n_val])
        parts[2].append(members[:n_test])
    out = []
    for p in parts:
        idx = torch.cat(p)
        out.append(idx[torch.randperm(len(idx), generator=g)])
    return out[0], out[1], out[2]
