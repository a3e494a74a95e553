"""Activations shared by the models: piecewise-linear by default, softplus(beta) for SP."""

from __future__ import annotations

from torch import nn

ACTIVATIONS = ("relu", "leaky_relu", "softplus")


def make_activation(name: str, beta: float = 10.0) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
    if name == "softplus":
        if not beta > 0:
            raise ValueError(f"beta must be > 0, got {beta!r}")
        return nn.Softplus(beta=beta)
    return nn.ReLU() if name == "relu" else nn.LeakyReLU()
