"""The smooth-pooling surrogate of the MNIST CNN (docs/spec.md §7, §8).

Max pooling routes the gradient by a tie-break wherever the candidates of a window are exactly
equal (most first-layer windows on MNIST's black background), so the attribution is discontinuous
there and the Wang & Kong bounds, which assume a twice-differentiable model, cannot hold. The
surrogate keeps the trained weights and replaces each max pool by the smooth maximum
tau * log(mean(exp(h / tau))) over the window: equal to the max at a tie, within
tau * log(window size) of it elsewhere, infinitely differentiable.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from r2et_fast.models.cnn import MnistCNN

POOLINGS = ("max", "lse")


def lse_pool2d(h: torch.Tensor, size: int, tau: float) -> torch.Tensor:
    """Smooth max pooling (non-overlapping ``size`` x ``size`` windows, floor mode like
    ``F.max_pool2d(h, size)``): tau * log(mean(exp(h / tau))) per window."""
    b, c, height, width = h.shape
    ho, wo = height // size, width // size
    windows = h[:, :, : ho * size, : wo * size].reshape(b, c, ho, size, wo, size)
    return tau * torch.logsumexp(windows / tau, dim=(3, 5)) - tau * math.log(size * size)


class SmoothPoolCNN(nn.Module):
    """A trained :class:`~r2et_fast.models.MnistCNN` evaluated with :func:`lse_pool2d` in place of
    its max pools (same weights, shared with the wrapped model): twice differentiable, as the
    bounds assume. ``tau`` -> 0 recovers the max pool."""

    def __init__(self, cnn: nn.Module, tau: float = 0.1) -> None:
        super().__init__()
        if not isinstance(cnn, MnistCNN):
            raise TypeError(f"SmoothPoolCNN wraps an MnistCNN (arch 'cnn'), got {type(cnn).__name__}")
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0 < tau < math.inf:
            raise ValueError(f"tau must be a finite number > 0, got {tau!r}")
        self.cnn = cnn
        self.tau = float(tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"SmoothPoolCNN expects inputs of shape (B, 1, 28, 28), got {tuple(x.shape)}")
        b = self.cnn.body
        h = b.act(lse_pool2d(b.conv1(x), 2, self.tau))
        h = b.act(lse_pool2d(b.conv2(h), 3, self.tau))
        h = b.act(b.fc1(h.flatten(1)))
        return b.fc3(b.act(b.fc2(h)))


def with_pooling(model: nn.Module, pooling: str, tau: float) -> nn.Module:
    """The model as trained (``"max"``) or its smooth-pooling surrogate (``"lse"``), in eval mode."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    return (model if pooling == "max" else SmoothPoolCNN(model, tau)).eval()
