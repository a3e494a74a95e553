"""Shared inputs for the benchmarks: the issue's workload, B = 1024 maps of n = 784 features."""

from __future__ import annotations

import pytest
import torch

BATCH, FEATURES, K = 1024, 784, 8


@pytest.fixture(scope="session")
def maps() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    a = torch.rand(BATCH, FEATURES, generator=g)
    b = a + 0.05 * torch.randn(BATCH, FEATURES, generator=g)
    return a, b


def training_step(data, cfg, batch: int):
    """One optimiser step of ``cfg`` on the first ``batch`` training rows, as a closure to time."""
    from r2et_fast.train import build_model, objective

    model = build_model(cfg, data.input_shape)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x, y = data.x_train[:batch], data.y_train[:batch]

    def step():
        loss, _ = objective(model, x, y, cfg, step_seed=0)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step
