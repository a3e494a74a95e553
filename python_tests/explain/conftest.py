"""Small float64 models with hand-computable input gradients for the explanation tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class SoftplusMLP(nn.Module):
    """z = W2 softplus(W1 x + b1) + b2; its input Jacobian is W2 diag(sigmoid(W1 x + b1)) W1."""

    def __init__(self, d_in: int, d_hidden: int, n_out: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.fc2 = nn.Linear(d_hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(nn.functional.softplus(self.fc1(x)))

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """Hand-computed d logits / dx, shape (B, C, D)."""
        with torch.no_grad():
            slope = torch.sigmoid(x @ self.fc1.weight.T + self.fc1.bias)  # softplus' = sigmoid
            return torch.einsum("ch,bh,hd->bcd", self.fc2.weight, slope, self.fc1.weight)


class TinyConv(nn.Module):
    """Conv(3 -> 4, 3x3) -> softplus -> linear, for (B, 3, 8, 8) images."""

    def __init__(self, n_out: int = 5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(nn.functional.softplus(self.conv(x)).flatten(1))


def score_grads_from_jacobian(jac: torch.Tensor, logits: torch.Tensor, target: torch.Tensor):
    """Hand formulas for the three scores of class c given J = dz/dx (B, C, D).

    d z_c/dx = J_c;  d p_c/dx = p_c (J_c - sum_j p_j J_j);  d CE/dx = -(J_c - sum_j p_j J_j).
    """
    p = torch.softmax(logits, dim=1)
    rows = torch.arange(jac.shape[0])
    j_c = jac[rows, target]
    centred = j_c - torch.einsum("bc,bcd->bd", p, jac)
    return {
        "logit": j_c,
        "prob": p[rows, target].unsqueeze(1) * centred,
        "loss": -centred,
    }


@pytest.fixture
def hand_score_grads():
    """The hand formulas of :func:`score_grads_from_jacobian`."""
    return score_grads_from_jacobian


@pytest.fixture
def make_mlp():
    """Factory for a float64 :class:`SoftplusMLP` with N(0, 1) parameters from ``seed``."""

    def make(d_in: int, d_hidden: int, n_out: int, seed: int) -> SoftplusMLP:
        g = torch.Generator().manual_seed(seed)
        model = SoftplusMLP(d_in, d_hidden, n_out).double()
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
        return model

    return make


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def linear(gen) -> nn.Linear:
    model = nn.Linear(4, 3).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(3, 4, generator=gen, dtype=torch.float64))
        model.bias.copy_(torch.randn(3, generator=gen, dtype=torch.float64))
    return model


@pytest.fixture
def mlp(make_mlp) -> SoftplusMLP:
    return make_mlp(4, 6, 3, seed=99)


@pytest.fixture
def conv(gen) -> TinyConv:
    model = TinyConv().double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return model


@pytest.fixture
def x(gen) -> torch.Tensor:
    return torch.randn(5, 4, generator=gen, dtype=torch.float64)


@pytest.fixture
def images(gen) -> torch.Tensor:
    return torch.randn(2, 3, 8, 8, generator=gen, dtype=torch.float64)
