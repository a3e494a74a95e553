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
