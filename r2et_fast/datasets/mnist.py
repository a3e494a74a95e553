"""MNIST from the shipped 10,000-digit file (``mnist_10k.npz``, SHA-256 checked).

Two views:
- ``load_mnist``: single digits (N, 1, 28, 28) in [0, 1] with their class, for the single-input CNN;
- ``mnist_pairs``: siamese pairs (N, 2, 28, 28) of two digits from ``digits`` (default 3 and 8),
  label 1 when both images show the same digit, balanced half/half.

Splits are seeded and stratified (:func:`r2et_fast.datasets.split.stratified_split`, the splitter
of every data set); the *images* are split first, so no image of the test pairs is seen in
training. Each split then draws its pairs with the split's share of ``n_pairs``, rounded half up
like the split itself.
"""

from __future__ import annotations

import io
import os

import numpy as np
import torch

from r2et_fast._validation import check_float_dtype, check_int
from r2et_fast.datasets._integrity import read_verified
from r2et_fast.datasets.split import Split, check_split_fractions, round_half_up, stratified_split

FILE = "mnist_10k.npz"


def _raw(data_dir: str | os.PathLike[str] | None) -> tuple[torch.Tensor, torch.Tensor]:
    with np.load(io.BytesIO(read_verified(FILE, data_dir))) as npz:
        images, labels = npz["images"], npz["labels"]
    return torch.from_numpy(images.astype(np.int64)), torch.from_numpy(labels.astype(np.int64))


def _digits(digits) -> tuple[int, ...] | None:
    """``digits`` as a tuple of distinct ints in 0..9 (None: all ten)."""
    if digits is None:
        return None
    digits = tuple(digits)
    if len(digits) < 1 or len(set(digits)) != len(digits) or not all(
            isinstance(d, int) and 0 <= d <= 9 for d in digits):
        raise ValueError(f"digits must be distinct ints in 0..9, got {digits!r}")
    return digits


def load_mnist(digits=None, *, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2,
               dtype: torch.dtype = torch.float32,
               data_dir: str | os.PathLike[str] | None = None) -> Split:
    """Single digits as (N, 1, 28, 28) in [0, 1]; labels are the digits (or their index in ``digits``
    when given, so ``digits=(3, 8)`` is a binary task with 3 -> 0 and 8 -> 1)."""
    digits = _digits(digits)
    seed = check_int(seed, "seed")
    val_fraction, test_fraction = check_split_fractions(val_fraction, test_fraction)
    dtype = check_float_dtype(dtype)
    images, labels = _raw(data_dir)
    if digits is not None:
        keep = torch.isin(labels, torch.tensor(digits))
        images, labels = images[keep], labels[keep]
        labels = torch.tensor([digits.index(int(v)) for v in labels], dtype=torch.long)
    x = (images.to(dtype) / 255.0).unsqueeze(1)
    train, val, test = stratified_split(labels, val_fraction, test_fraction, seed)
    return Split(x[train], labels[train], x[val], labels[val], x[test], labels[test])


def _pairs(x: torch.Tensor, y: torch.Tensor, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n balanced pairs from images x (M, 1, 28, 28) with classes y: n // 2 same-class pairs and the
    rest different-class, drawn with replacement, in a seeded random order."""
    classes = torch.unique(y)
    by_class = [torch.nonzero(y == c).flatten() for c in classes]
    n_same = n // 2

    def pick(pool: torch.Tensor, count: int) -> torch.Tensor:
        return pool[torch.randint(len(pool), (count,), generator=g)]

    cls_a = torch.randint(len(classes), (n,), generator=g)
    offset = torch.randint(1, len(classes), (n,), generator=g)
    cls_b = torch.where(torch.arange(n) < n_same, cls_a, (cls_a + offset) % len(classes))
    first = torch.empty(n, dtype=torch.long)
    second = torch.empty(n, dtype=torch.long)
    for c, pool in enumerate(by_class):
        a, b = cls_a == c, cls_b == c
        first[a] = pick(pool, int(a.sum()))
        second[b] = pick(pool, int(b.sum()))
    order = torch.randperm(n, generator=g)
    pairs = torch.cat([x[first], x[second]], dim=1)[order]
    same = (torch.arange(n) < n_same).long()[order]
    return pairs, same


def mnist_pairs(digits=(3, 8), *, n_pairs: int = 4000, seed: int = 0, val_fraction: float = 0.1,
                test_fraction: float = 0.2, dtype: torch.dtype = torch.float32,
                data_dir: str | os.PathLike[str] | None = None) -> Split:
    """Siamese pairs (P, 2, 28, 28) of digits from ``digits``; label 1 = same digit, balanced.

    ``n_pairs`` is the total over the three splits, shared in the split's proportions; the images
    are split first (stratified), then each split draws its own pairs.
    """
    digits = _digits(digits)
    if digits is None or len(digits) < 2:
        raise ValueError(f"digits must hold at least two digits for pairs, got {digits!r}")
    n_pairs = check_int(n_pairs, "n_pairs", 10)
    seed = check_int(seed, "seed")
    single = load_mnist(digits, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                        dtype=dtype, data_dir=data_dir)
    g = torch.Generator().manual_seed(seed + 1)
    n_val, n_test = round_half_up(n_pairs * val_fraction), round_half_up(n_pairs * test_fraction)
    sizes = (n_pairs - n_val - n_test, n_val, n_test)
    parts = [_pairs(x, y, n, g) for (x, y), n in zip(
        ((single.x_train, single.y_train), (single.x_val, single.y_val), (single.x_test, single.y_test)),
        sizes)]
    return Split(parts[0][0], parts[0][1], parts[1][0], parts[1][1], parts[2][0], parts[2][1])
