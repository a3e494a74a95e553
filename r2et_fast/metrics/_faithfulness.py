"""Prediction sensitivity and removal-based faithfulness (DFFOT, COMP, SUFF), one value per sample.

Quantus style: hyper-parameters go to ``__init__``, data to ``__call__``. Every call is batched over
the samples, runs under ``torch.no_grad`` with the model switched to eval mode (each submodule's
train/eval flag is restored afterwards; parameters are never touched), and evaluates the perturbed
inputs in chunks of at most ``batch_size`` model inputs, so memory stays bounded whatever the number
of removal fractions.

Conventions shared by the faithfulness metrics:

* **Model output**: a ``(B, C)`` tensor of logits; a single logit ``(B, 1)`` ``z`` is read as the
  two-class logits ``(0, z)`` (so its probability of class 1 is ``sigmoid(z)``).
* **Explained class** ``c``: ``target`` (an int or a ``(B,)`` integer tensor), by default the class
  the model predicts for ``x`` (``argmax``, ties to the lower class).
* **Ranking**: features are ranked by attribution, descending, ties to the lower feature index
  (:func:`r2et_fast.ops.ranks`); the attribution's sign counts, so pass ``attributions.abs()`` to
  rank by magnitude. The "top-k features" are the k best-ranked ones.
* **Attribution layout**: ``attributions`` has the shape of ``x`` (one value per input entry), or is
  that flattened per sample ``(B, x[0].numel())``. Attributions with fewer dims than ``x`` that
  match ``x.shape[2:]`` (or ``(B, prod(x.shape[2:]))``) are per-position maps broadcast over dim 1:
  for images ``x`` ``(B, C, H, W)`` and ``attributions`` ``(B, H, W)``, removing a pixel replaces all
  of its channels. The number of features ``n`` is the number of attribution values per sample.
* **Removal** is replacement by ``baseline``: a number (default ``0.0``) or a tensor broadcastable
  to one sample ``x.shape[1:]`` (e.g. per-feature training means).
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterator, Sequence
from typing import NamedTuple, cast

import torch

from r2et_fast import _distributed
from r2et_fast import _validation as v
from r2et_fast._device import compute_device, resolve_device, to

# the wrapper's own module: r2et_fast.ops fills its namespace at import, which a type checker can't see
from r2et_fast.ops import ranking

# The model outputs Sensitivity compares (a subset of r2et_fast.explain.SCORES: no loss).
SENSITIVITY_SCORES = ("prob", "logit")
K_MODES = ("auto", "all", "percent")
PERCENTS = (1, 5, 10, 20, 50)
FULL_GRID_MAX = 256  # DFFOT with fractions=None tries every m up to this many features
GRID_POINTS = 100  # ... and this many evenly spaced fractions beyond it
DEFAULT_BATCH_SIZE = 1024


# ---- helpers ------------------------------------------------------------------------------------

@contextlib.contextmanager
def _inference(model) -> Iterator[None]:
    """no_grad + eval mode, restoring every submodule's own train/eval flag afterwards."""
    modes = [(m, m.training) for m in model.modules()] if isinstance(model, torch.nn.Module) else []
    try:
        if modes:
            model.eval()
        with torch.no_grad():
            yield
    finally:
        for m, training in modes:
            m.training = training


def _logits(out, n_rows: int, name: str = "model output") -> torch.Tensor:
    """Validate one (n_rows, C) logits tensor; a single logit z becomes the two classes (0, z)."""
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        raise TypeError(f"{name} must be a floating-point (batch, classes) logits tensor, "
                        f"got {type(out).__name__}")
    if out.dim() != 2 or out.shape[0] != n_rows or out.shape[1] == 0:
        raise ValueError(f"{name} must have shape ({n_rows}, classes), got {tuple(out.shape)}")
    if out.shape[1] == 1:
        out = torch.cat([torch.zeros_like(out), out], dim=1)
    return out


def _classes(out, n_rows: int) -> torch.Tensor:
    """(n_rows, heads) predicted classes of a logits tensor or a tuple/list of them."""
    heads = out if isinstance(out, (tuple, list)) else (out,)
    if len(heads) == 0:
        raise ValueError("model returned an empty tuple of outputs")
    return torch.stack([_logits(h, n_rows, f"model output {i}" if len(heads) > 1 else "model output")
                        .argmax(dim=1) for i, h in enumerate(heads)], dim=1)


def _chunked(model, x: torch.Tensor, batch_size: int, read) -> torch.Tensor:
    """read(model(chunk)) of every chunk of ``batch_size`` rows, concatenated; under a torchrun
    launch the chunks are split over the ranks (the same chunks: exactly the single-process result)."""
    def one(i: int) -> torch.Tensor:
        return read(model(x[i:i + batch_size]), len(x[i:i + batch_size]))

    return torch.cat([t.to(x.device) for t in _distributed.map_items(range(0, len(x), batch_size), one)])


def _check_baseline_value(baseline) -> None:
    if isinstance(baseline, torch.Tensor):
        if not bool(torch.isfinite(baseline).all()):
            raise ValueError("baseline contains NaN or Inf")
    elif isinstance(baseline, bool) or not isinstance(baseline, numbers.Real):
        raise TypeError(f"baseline must be a number or a tensor, got {type(baseline).__name__}")
    elif not math.isfinite(baseline):
        raise ValueError(f"baseline must be finite, got {baseline!r}")


def _baseline_tensor(baseline, x: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    try:
        return t.expand(x.shape[1:])
    except RuntimeError as exc:
        raise ValueError(f"baseline must broadcast to one sample of shape {tuple(x.shape[1:])}, "
                         f"got shape {tuple(t.shape)}") from exc


def _feature_ranks(attributions, x: torch.Tensor, backend: str | None):
    """(B, n) ordinal ranks of the features, and the per-sample mask shape broadcasting onto x."""
    v.check_tensor(attributions, "attributions")
    v.check_float(attributions, "attributions")
    b = x.shape[0]
    if attributions.dim() < 2 or attributions.shape[0] != b:
        raise ValueError(f"attributions must be a batch of {b} explanations like x {tuple(x.shape)}, "
                         f"got shape {tuple(attributions.shape)}")
    if attributions.device != x.device:
        raise ValueError(f"attributions must be on the device of x ({x.device}), got {attributions.device}")
    v.check_finite(attributions, "attributions")
    flat = attributions.reshape(b, -1)
    per_entry = x.shape[1:].numel()
    if attributions.shape == x.shape or (attributions.dim() == 2 and flat.shape[1] == per_entry):
        mask_shape = tuple(x.shape[1:])
    elif x.dim() > 2 and (attributions.shape[1:] == x.shape[2:]
                          or (attributions.dim() == 2 and flat.shape[1] == x.shape[2:].numel())):
        mask_shape = (1, *x.shape[2:])  # one value per position, shared over dim 1
    else:
        per_position = f" or {(b, *x.shape[2:])} (per position)" if x.dim() > 2 else ""
        raise ValueError(f"attributions must have the shape of x {tuple(x.shape)}{per_position}, "
                         f"or be flattened per sample; got shape {tuple(attributions.shape)}")
    return ranking.ranks(flat.contiguous(), backend=backend), mask_shape


def _target(target, n_classes: int, predicted: torch.Tensor) -> torch.Tensor:
    if target is None:
        return predicted
    b = predicted.shape[0]
    if isinstance(target, numbers.Integral) and not isinstance(target, bool):
        target = torch.full((b,), int(target), dtype=torch.int64, device=predicted.device)
    elif not isinstance(target, torch.Tensor) or target.is_floating_point() or target.dtype == torch.bool \
            or target.is_complex():
        raise TypeError(f"target must be None, an int or an integer tensor, got {type(target).__name__}")
    if target.shape != (b,):
        raise ValueError(f"target must have shape ({b},), got {tuple(target.shape)}")
    if target.numel() and not (0 <= int(target.min()) and int(target.max()) < n_classes):
        raise ValueError(f"target must lie in [0, {n_classes}) (the model's classes)")
    return target.to(device=predicted.device, dtype=torch.int64)


def _removed(x: torch.Tensor, ranks: torch.Tensor, ms: torch.Tensor, mask_shape: tuple,
             baseline: torch.Tensor, keep: bool) -> torch.Tensor:
    """(len(ms) * B, ...) inputs: x with its top-m features removed (keep=False) or kept (keep=True)."""
    remove = ranks.unsqueeze(0) < ms.view(-1, 1, 1)  # (m, B, n): the top-m features
    if keep:
        remove = ~remove
    remove = remove.view(len(ms), x.shape[0], *mask_shape)
    return torch.where(remove, baseline, x.unsqueeze(0)).reshape(-1, *x.shape[1:])


class _Setup(NamedTuple):
    ranks: torch.Tensor  # (B, n)
    mask_shape: tuple
    baseline: torch.Tensor  # one sample's shape
    logits: torch.Tensor  # (B, C) logits of x
    target: torch.Tensor  # (B,) explained class


# ---- prediction sensitivity ---------------------------------------------------------------------

class Sensitivity:
    """``(model, x, x_adv) -> (B,) bool``: did the predicted class change under the attack?

    The model may return one ``(B, C)`` logits tensor (``(B, 1)``: one logit, class 1 iff ``z > 0``)
    or a tuple/list of them, as pair models do with their three classifications; a sample counts as
    changed when any of them changed. The share of changed samples is :meth:`share`, i.e.
    ``metric(model, x, x_adv).float().mean()``.
    """

    name = "sensitivity"

    def __init__(self, *, batch_size: int = DEFAULT_BATCH_SIZE, device=None) -> None:
        v.check_positive_int(batch_size, "batch_size")
        self.batch_size = batch_size
        self.device = None if device is None else resolve_device(device)

    def __call__(self, model, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
        v.check_callable(model, "model")
        v.check_batch(x, "x")
        v.check_batch(x_adv, "x_adv")
        where = compute_device(self.device, model, x)
        x, x_adv = to(x, where), to(x_adv, where)
        if x_adv.shape != x.shape:
            raise ValueError(f"x_adv must have the shape of x {tuple(x.shape)}, got {tuple(x_adv.shape)}")
        if x_adv.device != x.device:
            raise ValueError(f"x_adv must be on the device of x ({x.device}), got {x_adv.device}")
        with _inference(model):
            before = _chunked(model, x, self.batch_size, _classes)
            after = _chunked(model, x_adv, self.batch_size, _classes)
        if before.shape != after.shape:
            raise ValueError("model returned a different number of outputs for x and x_adv")
        return (before != after).any(dim=1)

    def share(self, model, x: torch.Tensor, x_adv: torch.Tensor) -> float:
        """Share of the samples whose prediction changed."""
        return self(model, x, x_adv).double().mean().item()

    def __repr__(self) -> str:
        device = "" if self.device is None else f", device={str(self.device)!r}"
        return f"{type(self).__name__}(batch_size={self.batch_size!r}{device})"


# ---- removal-based faithfulness -----------------------------------------------------------------

class FaithfulnessMetric:
    """Base class: ``metric(model, x, attributions, target=None) -> (B,)``; see the module notes."""

    name = ""

    def __init__(self, *, baseline=0.0, batch_size: int = DEFAULT_BATCH_SIZE,
                 backend: str | None = None, device=None) -> None:
        _check_baseline_value(baseline)
        v.check_positive_int(batch_size, "batch_size")
        self.baseline = baseline
        self.batch_size = batch_size
        self.backend = backend
        self.device = None if device is None else resolve_device(device)

    def _place(self, model, x, attributions, target):
        """(x, attributions, target) on the metric's device: ``device`` when given (the model moved
        there), else the model's, else that of ``x``."""
        v.check_batch(x, "x")
        where = compute_device(self.device, model, x)
        return to(x, where), to(attributions, where), to(target, where)

    def _setup(self, model, x, attributions, target) -> _Setup:
        v.check_callable(model, "model")
        v.check_batch(x, "x")
        ranks, mask_shape = _feature_ranks(attributions, x, self.backend)
        baseline = _baseline_tensor(self.baseline, x)
        logits = _chunked(model, x, self.batch_size, _logits)
        return _Setup(ranks, mask_shape, baseline, logits,
                      _target(target, logits.shape[1], logits.argmax(dim=1)))

    def _evaluate(self, model, batch: torch.Tensor) -> torch.Tensor:
        return _logits(model(batch), batch.shape[0])

    def __repr__(self) -> str:
        params = {k: val for k, val in vars(self).items() if val is not None}
        return f"{type(self).__name__}({', '.join(f'{k}={val!r}' for k, val in params.items())})"


class DFFOTResult(NamedTuple):
    """DFFOT per sample: the fraction removed at the first flip (1.0 if none), and whether it flipped."""

    fraction: torch.Tensor  # (B,) float, in (0, 1]
    flipped: torch.Tensor  # (B,) bool


def _check_fractions(fractions) -> tuple[float, ...] | None:
    if fractions is None:
        return None
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, Sequence) or len(fractions) == 0:
        raise TypeError("fractions must be None or a non-empty sequence of numbers in (0, 1]")
    out = []
    for f in fractions:
        if isinstance(f, bool) or not isinstance(f, numbers.Real):
            raise TypeError(f"fractions must hold numbers, got {type(f).__name__}")
        # numbers.Real's stubs declare no comparison with an int on the left; every Real compares
        if not 0 < cast(float, f) <= 1:
            raise ValueError(f"fractions must lie in (0, 1], got {f!r}")
        out.append(float(f))
    return tuple(out)


def dffot_grid(n: int, fractions: Sequence[float] | None = None) -> list[int]:
    """Sorted distinct feature counts m tried by DFFOT for ``n`` features.

    ``fractions=None``: every m in 1..n when n <= 256, else m = ceil(j·n/100) for j = 1..100.
    Otherwise m = ceil(f·n) (at least 1) for each fraction f.
    """
    v.check_positive_int(n, "n")
    fractions = _check_fractions(fractions)
    if fractions is None:
        if n <= FULL_GRID_MAX:
            return list(range(1, n + 1))
        return sorted({-(-j * n // GRID_POINTS) for j in range(1, GRID_POINTS + 1)})
    return sorted({min(n, max(1, math.ceil(f * n - 1e-9))) for f in fractions})


class DFFOT(FaithfulnessMetric):
    """Decision flip, fraction of top features: the least fraction m/n of the top-ranked features
    whose removal changes the predicted class away from ``c``.

    m runs over :func:`dffot_grid` (``fractions=None``: every m for n <= 256, else 100 evenly spaced
    fractions). A sample whose prediction never flips (not even with everything removed) gets 1.0;
    :meth:`evaluate` also returns the ``flipped`` flag that tells these apart. With an explicit
    ``target`` the model already disagrees with, the first grid point counts as a flip.
    Samples stop being evaluated once they flipped.
    """

    name = "dffot"

    def __init__(self, *, fractions: Sequence[float] | None = None, baseline=0.0,
                 batch_size: int = DEFAULT_BATCH_SIZE, backend: str | None = None, device=None) -> None:
        self.fractions = _check_fractions(fractions)
        super().__init__(baseline=baseline, batch_size=batch_size, backend=backend, device=device)

    def evaluate(self, model, x: torch.Tensor, attributions: torch.Tensor,
                 target=None) -> DFFOTResult:
        x, attributions, target = self._place(model, x, attributions, target)
        with _inference(model):
            s = self._setup(model, x, attributions, target)
            b, n = s.ranks.shape
            ms = torch.tensor(dffot_grid(n, self.fractions), dtype=torch.int64, device=x.device)

            # Blocks of batch_size samples are searched independently (under a torchrun launch
            # split over the ranks: the same blocks, so exactly the single-process result).
            def search(r0: int) -> torch.Tensor:
                rows = torch.arange(r0, min(b, r0 + self.batch_size), device=x.device)
                first = torch.full((len(rows),), -1, dtype=torch.int64, device=x.device)  # flip index
                k0 = 0
                while k0 < len(ms):
                    active = (first < 0).nonzero().squeeze(1)
                    if active.numel() == 0:
                        break
                    k1 = min(len(ms), k0 + max(1, self.batch_size // active.numel()))
                    idx = rows[active]
                    batch = _removed(x[idx], s.ranks[idx], ms[k0:k1], s.mask_shape, s.baseline, keep=False)
                    pred = self._evaluate(model, batch).argmax(dim=1).view(k1 - k0, len(idx))
                    flips = pred != s.target[idx].unsqueeze(0)  # (m, b)
                    hit = flips.any(dim=0)
                    first[active[hit]] = k0 + flips.to(torch.uint8).argmax(dim=0)[hit]
                    k0 = k1
                return first

            first = torch.cat([t.to(x.device) for t in
                               _distributed.map_items(range(0, b, self.batch_size), search)])
        flipped = first >= 0
        removed = torch.where(flipped, ms[first.clamp_min(0)], torch.full_like(first, n))
        return DFFOTResult(removed.to(x.dtype) / n, flipped)

    def __call__(self, model, x: torch.Tensor, attributions: torch.Tensor, target=None) -> torch.Tensor:
        return self.evaluate(model, x, attributions, target).fraction
