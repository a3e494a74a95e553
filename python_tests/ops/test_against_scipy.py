"""Every ranking/similarity op, on both backends, against numpy/scipy computed row by row."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

import r2et_fast
from python_tests.conftest import (
    np_cosine,
    np_kendall,
    np_kendall_topk,
    np_mse,
    np_pearson,
    np_precision_at_k,
    np_ranks,
    np_spearman,
    np_topk,
    requires_native,
)


def make_pair(batch, n, ties, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(batch, n, generator=g, dtype=torch.float64)
    b = a + 0.7 * torch.randn(batch, n, generator=g, dtype=torch.float64)
    if ties:  # few distinct values: many ties within each row and joint ties across rows
        a, b = (a * 1.5).round(), (b * 1.5).round()
    return a.to(dtype), b.to(dtype)


CASES = [(1, 2, False), (1, 3, True), (4, 17, False), (5, 64, True), (3, 784, False), (2, 784, True)]
METRICS = {
    "kendall_tau": np_kendall,
    "spearman": np_spearman,
    "pearson": np_pearson,
    "mse": np_mse,
    "cosine": np_cosine,
}


@pytest.mark.parametrize("batch,n,ties", CASES)
@pytest.mark.parametrize("name", sorted(METRICS))
def test_pairwise_metrics_match_scipy(backend, name, batch, n, ties):
    a, b = make_pair(batch, n, ties)
    got = getattr(r2et_fast, name)(a, b, backend=backend).numpy()
    want = METRICS[name](a.numpy(), b.numpy())
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("batch,n,ties", CASES)
def test_topk_metrics_match_numpy(backend, batch, n, ties):
    a, b = make_pair(batch, n, ties, seed=1)
    for k in sorted({1, min(8, n - 1), n - 1}):
        np.testing.assert_array_equal(r2et_fast.topk_indices(a, k, backend=backend), np_topk(a.numpy(), k))
        np.testing.assert_allclose(
            r2et_fast.precision_at_k(a, b, k, backend=backend), np_precision_at_k(a.numpy(), b.numpy(), k),
            atol=1e-12)
        np.testing.assert_allclose(
            r2et_fast.kendall_tau_topk(a, b, k, backend=backend),
            np_kendall_topk(a.numpy(), b.numpy(), k), atol=1e-6)
    np.testing.assert_array_equal(r2et_fast.ranks(a, backend=backend), np_ranks(a.numpy()))


def test_float32_results_are_float32_and_close(backend):
    a, b = make_pair(6, 100, ties=False, dtype=torch.float32)
    for name, oracle in METRICS.items():
        got = getattr(r2et_fast, name)(a, b, backend=backend)
        assert got.dtype == torch.float32
        np.testing.assert_allclose(got.numpy(), oracle(a.double().numpy(), b.double().numpy()), atol=1e-5)


def test_constant_rows_give_nan_like_scipy(backend):
    a = torch.ones(2, 5, dtype=torch.float64)
    b = torch.arange(10, dtype=torch.float64).reshape(2, 5)
    for name in ("kendall_tau", "spearman", "pearson"):
        assert torch.isnan(getattr(r2et_fast, name)(a, b, backend=backend)).all(), name
    assert torch.isnan(r2et_fast.cosine(torch.zeros(1, 3, dtype=torch.float64),
                                        torch.ones(1, 3, dtype=torch.float64), backend=backend)).all()


def test_identical_and_reversed_maps(backend):
    a = torch.randn(3, 40, dtype=torch.float64)
    assert torch.allclose(r2et_fast.kendall_tau(a, a, backend=backend), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(r2et_fast.kendall_tau(a, -a, backend=backend), -torch.ones(3, dtype=torch.float64))
    assert torch.equal(r2et_fast.precision_at_k(a, a, 5, backend=backend), torch.ones(3, dtype=torch.float64))


@requires_native
@pytest.mark.parametrize("ties", [False, True])
def test_native_kendall_large_n_matches_scipy(ties):
    """n = 50,000 in one row: the O(n log n) kernel against scipy (the O(n^2) reference is too slow)."""
    a, b = make_pair(1, 50_000, ties, seed=3)
    want = scipy.stats.kendalltau(a[0].numpy(), b[0].numpy()).statistic
    got = r2et_fast.kendall_tau(a, b, backend="native").item()
    assert abs(got - want) < 1e-6
    want_s = scipy.stats.spearmanr(a[0].numpy(), b[0].numpy()).statistic
    assert abs(r2et_fast.spearman(a, b, backend="native").item() - want_s) < 1e-6
    k = 1000
    np.testing.assert_allclose(r2et_fast.precision_at_k(a, b, k, backend="native"),
                               np_precision_at_k(a.numpy(), b.numpy(), k))
