"""A seeded synthetic tabular task: a few informative features decide the label, the rest is noise."""

from __future__ import annotations

import torch

from r2et_fast.datasets.split import Split


def make_tabular(n_samples: int = 3000, n_features: int = 16, n_informative: int = 5,
                 seed: int = 0, dtype: torch.dtype = torch.float32) -> Split:
    """Binary task y = 1[w·x + 0.5·(x_0 x_1) + noise > 0] with w non-zero on ``n_informative``
    features; split 60/20/20. The same seed gives the same data on every machine."""
    if not 1 <= n_informative <= n_features:
        raise ValueError(f"n_informative must be in [1, n_features], got {n_informative}")
    if n_samples < 10:
        raise ValueError(f"n_samples must be at least 10, got {n_samples}")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_samples, n_features, generator=g, dtype=torch.float64)
    w = torch.zeros(n_features, dtype=torch.float64)
    w[:n_informative] = torch.linspace(2.0, 0.5, n_informative, dtype=torch.float64)
    logit = x @ w + 0.5 * x[:, 0] * x[:, min(1, n_features - 1)]
    y = (logit + 0.3 * torch.randn(n_samples, generator=g, dtype=torch.float64) > 0).long()
    n_train, n_val = int(0.6 * n_samples), int(0.2 * n_samples)
    x = x.to(dtype)
    return Split(x[:n_train], y[:n_train], x[n_train:n_train + n_val], y[n_train:n_train + n_val],
                 x[n_train + n_val:], y[n_train + n_val:])
