"""Every ranking/similarity op, on both backends, against numpy/scipy computed row by row; and the
native kernels of every device against their twins (run on CPU copies) and the CPU kernel."""

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
from python_tests.ops.kernel_cases import DTYPES, assert_matches, k_values, layouts, maps, native
from r2et_fast import reference


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


# ---- Kendall tau-b by n (float32): all pairs (n <= 64), a radix sort + merge count (65..255 and
# ---- > 4096), two radix sorts + the bitset count (256..4096, with 2, 4 or 8 registers of word
# ---- counters); float64 rows always take std::sort + the merge count. Equal float32 and float64
# ---- results on the same values therefore mean equal integer counts (the same final division).
@requires_native
@pytest.mark.parametrize("n", [65, 255, 256, 1024, 1025, 2048, 2049, 4096, 4097])
@pytest.mark.parametrize("ties", [False, True])
def test_native_kendall_paths_count_exactly(n, ties):
    a, b = make_pair(4, n, ties, seed=n)
    b[1] = -a[1]  # every untied pair discordant
    b[2] = a[2]  # every untied pair concordant
    if ties:
        a[3, ::3] = -0.0  # ties -0.0 with 0.0
        b[3, 1::4] = -0.0
    a32, b32 = a.float(), b.float()
    for op in (r2et_fast.kendall_tau, r2et_fast.spearman):
        want = op(a32.double(), b32.double(), backend="native").float()
        torch.testing.assert_close(op(a32, b32, backend="native"), want, rtol=0, atol=0, equal_nan=True)
    assert_matches(native("kendall_tau")(a32[:2], b32[:2]), reference.kendall_tau(a32[:2], b32[:2]))


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


# ---- the native kernels on every device against their twins -------------------------------------

PAIR_OPS = ("kendall_tau", "spearman", "pearson", "mse", "cosine")
PAIR_K_OPS = ("precision_at_k", "kendall_tau_topk")
KERNEL_CASES = [pytest.param(n, dtype, ties, id=f"n{n}-{str(dtype)[6:]}-{'ties' if ties else 'distinct'}")
                for n in (2, 3, 50, 784) for dtype in DTYPES for ties in (False, True)]
BATCHES = (1, 7, 64)


@pytest.mark.parametrize(("n", "dtype", "ties"), KERNEL_CASES)
def test_ranking_kernels_match_twin(device, n, dtype, ties):
    for batch in BATCHES:
        x = maps(batch, n, dtype, seed=1, ties=ties)
        expected = {("ranks",): reference.ranks(x)}
        for k in k_values(n):
            expected[("topk_indices", k)] = reference.topk_indices(x, k)
        for (op, *extra), want in expected.items():
            assert_matches(native(op)(x, *extra), want)  # the CPU kernel agrees too
            for view in layouts(x, device):
                got = native(op)(view, *extra)
                assert got.device.type == device
                assert_matches(got, want)


@pytest.mark.parametrize(("n", "dtype", "ties"), KERNEL_CASES)
def test_pair_kernels_match_twin(device, n, dtype, ties):
    """Every device's kernel against the CPU kernel on all rows and against the twin on the rows
    the twin checks: all of them, except for the O(n^2) Kendall twins (the first few rows; the
    kernels treat rows independently)."""
    for batch in BATCHES:
        a = maps(batch, n, dtype, seed=2, ties=ties)
        b = maps(batch, n, dtype, seed=3, ties=ties)
        calls = [(op,) for op in PAIR_OPS] + [(op, k) for op in PAIR_K_OPS for k in k_values(n)]
        # a contiguous with b contiguous, a strided with b transposed, a transposed with b strided
        (a0, a1, a2), (b0, b1, b2) = layouts(a, device), layouts(b, device)
        views = ((a0, b0), (a1, b2), (a2, b1))
        for op, *extra in calls:
            rows = min(batch, 4) if op.startswith("kendall") else batch
            twin = getattr(reference, op)(a[:rows], b[:rows], *extra)
            cpu = native(op)(a, b, *extra)
            assert_matches(cpu[:rows], twin)
            for ga, gb in views:
                got = native(op)(ga, gb, *extra)
                assert got.device.type == device
                assert_matches(got[:rows], twin)
                assert_matches(got, cpu)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_give_nan_where_undefined(device, dtype):
    a = maps(4, 50, dtype, seed=4, ties=True)
    b = maps(4, 50, dtype, seed=5, ties=True)
    a[1] = 1.5  # constant row: Kendall, Spearman, Pearson undefined
    b[2] = -0.5
    a[3] = 0.0  # zero row: cosine undefined as well
    ga, gb = a.to(device), b.to(device)
    for op in ("kendall_tau", "spearman", "pearson"):
        got = native(op)(ga, gb).cpu()
        assert torch.isnan(got[1:]).all() and torch.isfinite(got[0]), (op, got)
        assert_matches(got, native(op)(a, b))
    got = native("cosine")(ga, gb).cpu()
    assert torch.isnan(got[3]) and torch.isfinite(got[:3]).all(), got
    # T_1(a) has a single feature, hence no pairs: NaN.
    assert torch.isnan(native("kendall_tau_topk")(ga, gb, 1).cpu()).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_tie_signed_zeros(device, dtype):
    x = torch.tensor([[0.0, -0.0, 1.0, -0.0, 0.0, -1.0]], dtype=dtype)
    y = torch.tensor([[-0.0, 0.0, 0.0, 2.0, -0.0, 1.0]], dtype=dtype)
    gx, gy = x.to(device), y.to(device)
    assert native("ranks")(gx).cpu().tolist() == [[1, 2, 0, 3, 4, 5]]
    assert_matches(native("topk_indices")(gx, 3), reference.topk_indices(x, 3))
    for op in ("kendall_tau", "spearman"):
        assert_matches(native(op)(gx, gy), getattr(reference, op)(x, y))


def test_kernels_on_many_features(device):
    """Several pair-kernel tiles per row, long j loops, many ties: against the CPU kernel, and the
    O(n^2) twins on the first row."""
    a = maps(3, 3001, torch.float64, seed=6, ties=True)
    b = a + 0.5 * maps(3, 3001, torch.float64, seed=7, ties=True)
    ga, gb = a.to(device), b.to(device)
    for op, *extra in (("kendall_tau",), ("spearman",), ("kendall_tau_topk", 2000)):
        got, cpu = native(op)(ga, gb, *extra), native(op)(a, b, *extra)
        assert_matches(got, cpu)
        assert_matches(got[:1], getattr(reference, op)(a[:1], b[:1], *extra))


def test_kernels_on_a_side_stream(cuda_device):
    a = maps(16, 100, torch.float64, seed=8, ties=True)
    b = maps(16, 100, torch.float64, seed=9, ties=True)
    ga, gb = a.cuda(), b.cuda()
    torch.cuda.synchronize()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        outs = {op: native(op)(ga, gb) for op in PAIR_OPS}
    stream.synchronize()
    for op, got in outs.items():
        assert_matches(got, native(op)(a, b))
