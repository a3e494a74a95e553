"""The papers' tabular model: n -> hidden -> classes with LeakyReLU (softplus for SP)."""

from __future__ import annotations

import torch
from torch import nn

from r2et_fast.models._activation import make_activation


class TabularMLP(nn.Module):
    """Two-layer perceptron returning logits ``(B, n_classes)``.

    ``activation="softplus"`` (with ``beta``) gives the smooth model of the SP baseline, whose input
    Hessian is non-zero; LeakyReLU nets are piecewise linear.
    """

    def __init__(self, n_features: int, n_classes: int = 2, hidden: int = 32,
                 activation: str = "leaky_relu", beta: float = 10.0) -> None:
        super().__init__()
        for name, value in (("n_features", n_features), ("n_classes", n_classes), ("hidden", hidden)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.hidden = nn.Linear(n_features, hidden)
        self.act = make_activation(activation, beta)
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.hidden(x)))
