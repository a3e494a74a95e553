"""The CUDA kernels against the plain-PyTorch reference (run on CPU copies) and the CPU kernels.

Needs a CUDA GPU and an extension built with CUDA: skipped without a GPU; with a GPU but no CUDA
kernels compiled, the tests fail rather than skip, since that is a broken build.
"""

from __future__ import annotations

import pytest
import torch

import r2et_fast
from r2et_fast import reference
from r2et_fast._ops import has_kernel

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="needs a CUDA GPU (torch.cuda.is_available() is False)"),
]

OPS = ("topk_indices", "ranks", "precision_at_k", "kendall_tau", "kendall_tau_topk", "spearman",
       "pearson", "mse", "cosine")
PAIR_OPS = ("kendall_tau", "spearman", "pearson", "mse", "cosine")
PAIR_K_OPS = ("precision_at_k", "kendall_tau_topk")
BATCHES = (1, 7, 64)
FEATURES = (2, 3, 50, 784)
DTYPES = (torch.float32, torch.float64)


@pytest.fixture(scope="module", autouse=True)
def cuda_kernels():
    assert r2et_fast.native_available(), "the r2et_fast extension is not loaded"
    missing = [op for op in OPS if not has_kernel(op, "cuda")]
    assert not missing, f"the extension was built without CUDA kernels for {missing}"


def native(op: str):
    return getattr(torch.ops.r2et_fast, op)


def maps(batch: int, n: int, dtype: torch.dtype, seed: int, ties: bool) -> torch.Tensor:
    """Random (batch, n) maps on the CPU; with ``ties``, values on a coarse grid repeat (and the
    grid includes both -0.0 and +0.0, which must tie)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n, generator=gen, dtype=torch.float64)
    if ties:
        x = torch.round(x * 2) / 2
    return x.to(dtype)


def non_contiguous(x: torch.Tensor, how: int) -> torch.Tensor:
    """A non-contiguous CUDA view equal to x: every other column of a wider tensor (how=0) or a
    transpose (how=1)."""
    if how == 0:
        wide = torch.zeros(x.shape[0], 2 * x.shape[1], dtype=x.dtype, device="cuda")
        wide[:, ::2] = x.cuda()
        view = wide[:, ::2]
    else:
        view = x.t().contiguous().cuda().t()
    assert not view.is_contiguous() or x.shape[0] == 1 or x.shape[1] == 1
    return view


def assert_matches(got: torch.Tensor, expected: torch.Tensor) -> None:
    got = got.cpu()
    assert got.dtype == expected.dtype and got.shape == expected.shape
    if expected.dtype == torch.int64:
        assert torch.equal(got, expected)
    elif expected.dtype == torch.float64:
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-10, equal_nan=True)
    else:
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6, equal_nan=True)


def k_values(n: int) -> list[int]:
    return sorted({1, n - 1, max(1, n // 3)})


def cases():
    for batch in BATCHES:
        for n in FEATURES:
            for dtype in DTYPES:
                for ties in (False, True):
                    name = f"B{batch}-n{n}-{str(dtype)[6:]}-{'ties' if ties else 'distinct'}"
                    yield pytest.param(batch, n, dtype, ties, id=name)


CASES = list(cases())


@pytest.mark.parametrize(("batch", "n", "dtype", "ties"), CASES)
def test_rankings_match_reference(batch, n, dtype, ties):
    x = maps(batch, n, dtype, seed=1, ties=ties)
    expected = {("ranks",): reference.ranks(x)}
    for k in k_values(n):
        expected[("topk_indices", k)] = reference.topk_indices(x, k)
    for key, want in expected.items():
        assert_matches(native(key[0])(x, *key[1:]), want)  # the CPU kernel agrees too
        for view in (x.cuda(), non_contiguous(x, 0), non_contiguous(x, 1)):
            got = native(key[0])(view, *key[1:])
            assert got.is_cuda
            assert_matches(got, want)


@pytest.mark.parametrize(("batch", "n", "dtype", "ties"), CASES)
def test_pair_ops_match_reference(batch, n, dtype, ties):
    a = maps(batch, n, dtype, seed=2, ties=ties)
    b = maps(batch, n, dtype, seed=3, ties=ties)
    expected = {(op,): getattr(reference, op)(a, b) for op in PAIR_OPS}
    for op in PAIR_K_OPS:
        for k in k_values(n):
            expected[(op, k)] = getattr(reference, op)(a, b, k)
    for key, want in expected.items():
        op, extra = key[0], key[1:]
        assert_matches(native(op)(a, b, *extra), want)  # the CPU kernel agrees too
        for how in (None, 0, 1):
            ga = a.cuda() if how is None else non_contiguous(a, how)
            gb = b.cuda() if how is None else non_contiguous(b, 1 - how)
            got = native(op)(ga, gb, *extra)
            assert got.is_cuda
            assert_matches(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_undefined_correlations_are_nan(dtype):
    a = maps(4, 50, dtype, seed=4, ties=True)
    b = maps(4, 50, dtype, seed=5, ties=True)
    a[1] = 1.5  # constant row: Kendall, Spearman, Pearson undefined
    b[2] = -0.5
    a[3] = 0.0  # zero row: cosine undefined as well
    ga, gb = a.cuda(), b.cuda()
    for op in ("kendall_tau", "spearman", "pearson"):
        got = native(op)(ga, gb).cpu()
        assert torch.isnan(got[1:]).all() and torch.isfinite(got[0]), (op, got)
        assert_matches(native(op)(ga, gb), native(op)(a, b))
    got = native("cosine")(ga, gb).cpu()
    assert torch.isnan(got[3]) and torch.isfinite(got[:3]).all(), got
    # T_1(a) has a single feature, hence no pairs: NaN, as on the CPU.
    assert torch.isnan(native("kendall_tau_topk")(ga, gb, 1).cpu()).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_signed_zeros_tie(dtype):
    x = torch.tensor([[0.0, -0.0, 1.0, -0.0, 0.0, -1.0]], dtype=dtype)
    assert native("ranks")(x.cuda()).cpu().tolist() == [[1, 2, 0, 3, 4, 5]]
    assert_matches(native("topk_indices")(x.cuda(), 3), native("topk_indices")(x, 3))
    y = torch.tensor([[-0.0, 0.0, 0.0, 2.0, -0.0, 1.0]], dtype=dtype)
    for op in ("kendall_tau", "spearman"):
        assert_matches(native(op)(x.cuda(), y.cuda()), native(op)(x, y))


def test_many_features_and_tiles():
    # Several pair-kernel tiles per row, long j loops, many ties.
    a = maps(3, 3001, torch.float64, seed=6, ties=True)
    b = a + 0.5 * maps(3, 3001, torch.float64, seed=7, ties=True)
    for op in ("kendall_tau", "spearman"):
        assert_matches(native(op)(a.cuda(), b.cuda()), native(op)(a, b))
    assert_matches(native("kendall_tau_topk")(a.cuda(), b.cuda(), 2000),
                   native("kendall_tau_topk")(a, b, 2000))


def test_side_stream():
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


def test_nan_and_inf_rejected():
    good = maps(2, 10, torch.float64, seed=10, ties=False).cuda()
    for bad_value in (float("nan"), float("inf")):
        bad = good.clone()
        bad[1, 3] = bad_value
        with pytest.raises(ValueError, match="x contains NaN or Inf"):
            native("ranks")(bad)
        with pytest.raises(ValueError, match="x contains NaN or Inf"):
            native("topk_indices")(bad, 3)
        for op in PAIR_OPS:
            with pytest.raises(ValueError, match="a contains NaN or Inf"):
                native(op)(bad, good)
            with pytest.raises(ValueError, match="b contains NaN or Inf"):
                native(op)(good, bad)
        for op in PAIR_K_OPS:
            with pytest.raises(ValueError, match="b contains NaN or Inf"):
                native(op)(good, bad, 3)


def test_mixed_devices_rejected():
    a = maps(2, 10, torch.float64, seed=11, ties=False)
    b = maps(2, 10, torch.float64, seed=12, ties=False)
    for ga, gb in ((a.cuda(), b), (a, b.cuda())):
        for op in PAIR_OPS:
            with pytest.raises(ValueError, match="a and b must be on the same device"):
                native(op)(ga, gb)
        for op in PAIR_K_OPS:
            with pytest.raises(ValueError, match="a and b must be on the same device"):
                native(op)(ga, gb, 3)


def test_other_bad_inputs_rejected():
    x = maps(2, 10, torch.float64, seed=13, ties=False).cuda()
    with pytest.raises(ValueError, match="k must satisfy"):
        native("topk_indices")(x, 10)
    with pytest.raises(ValueError, match="k must satisfy"):
        native("precision_at_k")(x, x, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        native("ranks")(x.to(torch.float16))
    with pytest.raises(TypeError, match="same dtype"):
        native("pearson")(x, x.float())
    with pytest.raises(ValueError, match="2-D"):
        native("mse")(x[0], x[0])
    with pytest.raises(ValueError, match="same shape"):
        native("cosine")(x, x[:, :5])
