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
            r2et_fast.precision_at_k(a, b, k, backend=backend),
            np_precision_at_k(a.numpy(), b.numpy(), k),
            atol=1e-12,
        )
        np.testing.assert_allclose(
            r2et_fast.kendall_tau_topk(a, b, k, backend=backend),
            np_kendall_topk(a.numpy(), b.numpy(), k),
            atol=1e-6,
        )
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
    assert torch.isnan(
        r2et_fast.cosine(
            torch.zeros(1, 3, dtype=torch.float64), torch.ones(1, 3, dtype=torch.float64), backend=backend
        )
    ).all()


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
    np.testing.assert_allclose(
        r2et_fast.precision_at_k(a, b, k, backend="native"), np_precision_at_k(a.numpy(), b.numpy(), k)
    )


# ---- Native fast paths: T_k selection (k <= 16 column bound, 16 < k <= 32 streaming, k > 32 sort),
# ---- direct tau-b (n <= 64) vs Knight (n > 64), radix-sorted keys (+-0.0, huge/tiny float64).


def _special_rows(n, dtype, seed):
    """Rows full of ties, -0.0 next to 0.0, and (float64) huge and subnormal magnitudes."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(-3, 4, (6, n), generator=g).to(torch.float64)
    base[0] = 0.0
    base[0, ::3] = -0.0
    base[1, torch.randperm(n, generator=g)[: n // 2]] = -0.0
    base[2] = torch.randn(n, generator=g, dtype=torch.float64)  # no ties
    base[3] = torch.sort(base[2]).values  # ascending: every new value enters a streaming T_k
    if dtype == torch.float64:
        base[4] = torch.tensor([1e300, -1e300, 5e-324, -5e-324, 1e-310, 0.0, -0.0], dtype=torch.float64)[
            torch.randint(0, 7, (n,), generator=g)
        ]
        base[5] = torch.randn(n, generator=g, dtype=torch.float64) * 1e200
    return base.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [10, 20, 64, 65, 785])
def test_native_fast_paths_match_numpy(backend, dtype, n):
    a = _special_rows(n, dtype, seed=n)
    b = torch.cat([_special_rows(n, dtype, seed=n + 1)[1:], a[:1]])
    an, bn = a.double().numpy(), b.double().numpy()
    np.testing.assert_array_equal(r2et_fast.ranks(a, backend=backend), np_ranks(an))
    np.testing.assert_allclose(
        r2et_fast.kendall_tau(a, b, backend=backend).double(), np_kendall(an, bn), atol=1e-6
    )
    np.testing.assert_allclose(
        r2et_fast.spearman(a, b, backend=backend).double(), np_spearman(an, bn), atol=1e-6
    )
    for k in sorted({1, 2, 8, 16, 17, 32, 33, 64, 65, n - 1} & set(range(1, n))):
        np.testing.assert_array_equal(r2et_fast.topk_indices(a, k, backend=backend), np_topk(an, k))
        np.testing.assert_allclose(
            r2et_fast.precision_at_k(a, b, k, backend=backend).double(),
            np_precision_at_k(an, bn, k),
            atol=1e-12,
        )
        np.testing.assert_allclose(
            r2et_fast.kendall_tau_topk(a, b, k, backend=backend).double(),
            np_kendall_topk(an, bn, k),
            atol=1e-6,
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [3, 20, 40])
@pytest.mark.parametrize("where", [0, 5, 780])
def test_native_non_finite_in_any_row_is_reported_a_first(backend, dtype, k, where):
    """The native kernels check each row inside their loop: any row, any position, a before b."""
    a, b = make_pair(7, 785, ties=False, dtype=dtype)
    ops = {
        "precision_at_k": lambda x, y: r2et_fast.precision_at_k(x, y, k, backend=backend),
        "kendall_tau_topk": lambda x, y: r2et_fast.kendall_tau_topk(x, y, k, backend=backend),
        "kendall_tau": lambda x, y: r2et_fast.kendall_tau(x, y, backend=backend),
        "spearman": lambda x, y: r2et_fast.spearman(x, y, backend=backend),
        "pearson": lambda x, y: r2et_fast.pearson(x, y, backend=backend),
        "mse": lambda x, y: r2et_fast.mse(x, y, backend=backend),
        "cosine": lambda x, y: r2et_fast.cosine(x, y, backend=backend),
    }
    for bad in (float("nan"), float("inf"), -float("inf")):
        a_bad, b_bad = a.clone(), b.clone()
        a_bad[6, where] = bad
        b_bad[1, 784 - where] = bad
        for op in ops.values():
            with pytest.raises(ValueError, match="a contains NaN or Inf"):
                op(a_bad, b_bad)
            with pytest.raises(ValueError, match="b contains NaN or Inf"):
                op(a, b_bad)
        with pytest.raises(ValueError, match="x contains NaN or Inf"):
            r2et_fast.topk_indices(a_bad, k, backend=backend)
        with pytest.raises(ValueError, match="x contains NaN or Inf"):
            r2et_fast.ranks(a_bad, backend=backend)


def test_constant_row_whose_mean_rounds_is_nan(backend):
    """0.1 repeated: the computed mean is not exactly 0.1, yet the row is constant."""
    a = torch.full((1, 784), 0.1, dtype=torch.float64)
    b = torch.randn(1, 784, dtype=torch.float64)
    assert torch.isnan(r2et_fast.pearson(a, b, backend=backend)).all()
    assert torch.isnan(r2et_fast.pearson(b, a, backend=backend)).all()
