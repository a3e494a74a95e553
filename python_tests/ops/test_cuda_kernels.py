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
from r2et_fast.reference import regularizers as reference_regularizers

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="needs a CUDA GPU (torch.cuda.is_available() is False)"),
]

OPS = ("topk_indices", "ranks", "precision_at_k", "kendall_tau", "kendall_tau_topk", "spearman",
       "pearson", "mse", "cosine")
REGULARIZER_OPS = ("topk_pair_gap", "topk_pair_gap_backward", "hessian_fd_norm",
                   "hessian_fd_norm_backward")
PAIR_OPS = ("kendall_tau", "spearman", "pearson", "mse", "cosine")
PAIR_K_OPS = ("precision_at_k", "kendall_tau_topk")
BATCHES = (1, 7, 64)
FEATURES = (2, 3, 50, 784)
DTYPES = (torch.float32, torch.float64)


@pytest.fixture(scope="module", autouse=True)
def cuda_kernels():
    assert r2et_fast.native_available(), "the r2et_fast extension is not loaded"
    missing = [op for op in OPS + REGULARIZER_OPS if not has_kernel(op, "cuda")]
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


# ---- the regulariser ops: top-k pair gap G_k and the finite-difference Hessian norm ----

GAP_PAIRS = ("all", "anchor", "mm")
GAP_TRANSFORMS = ("linear", "exp")
GAP_FEATURES = (2, 3, 50, 784)


def n_pairs_values(pairs: str, k: int, n: int) -> list[int]:
    if pairs == "all":
        return [0]
    if pairs == "anchor":
        return sorted({1, 2, k, n})  # clipped to the ranks that exist
    return sorted({1, min(k, n - k)})


def assert_close_to(got: torch.Tensor, want64: torch.Tensor, dtype: torch.dtype,
                    scale: float = 1.0) -> None:
    """got (in dtype, on the GPU) against an expectation computed in float64 from the same values.
    The kernels accumulate in double, so float32 results are off by their final rounding; ``scale``
    bounds the terms summed into one result, for the absolute error of cancelling sums (and of the
    float32 atomics that add several terms into one entry of the pair-gap backward)."""
    got = got.cpu()
    assert got.dtype == dtype and got.shape == want64.shape
    if dtype == torch.float64:
        torch.testing.assert_close(got, want64, rtol=1e-12, atol=max(1e-10, 4e-15 * scale))
    else:
        torch.testing.assert_close(got.double(), want64, rtol=2e-6, atol=max(1e-6, 1e-6 * scale))


def assert_same_rows_as_sets(got: torch.Tensor, want: torch.Tensor) -> None:
    got = got.cpu()
    assert got.dtype == torch.int64 and got.shape == want.shape
    assert torch.equal(got.sort(dim=1).values, want.sort(dim=1).values)


@pytest.mark.parametrize("ties", (False, True), ids=("distinct", "ties"))
@pytest.mark.parametrize("dtype", DTYPES, ids=("float32", "float64"))
@pytest.mark.parametrize("transform", GAP_TRANSFORMS)
@pytest.mark.parametrize("pairs", GAP_PAIRS)
def test_topk_pair_gap_matches_reference(pairs, transform, dtype, ties):
    for n in GAP_FEATURES:
        x = maps(7, n, dtype, seed=20 + n, ties=ties)
        if ties and n >= 3:
            x[0, :3] = torch.tensor([0.0, -0.0, 0.0], dtype=dtype)  # signed zeros tie
        x64 = x.double()  # the same values: the same ranking
        grad = maps(7, 1, dtype, seed=21, ties=False)[:, 0]
        # n sum_T I - k sum I cancels terms up to n sum |I|; the other forms lose no digits
        scale = n * float(x64.abs().sum(dim=1).max()) if (pairs, transform) == ("all", "linear") else 1.0
        for k in k_values(n):
            for n_pairs in n_pairs_values(pairs, k, n):
                where = f"n={n} k={k} n_pairs={n_pairs}"
                want_gap = reference.topk_pair_gap(x64, k, pairs, transform, n_pairs)
                want_hi, want_lo = reference_regularizers.pair_indices(x64, k, pairs, n_pairs)
                views = [x.cuda()] + ([non_contiguous(x, 0), non_contiguous(x, 1)] if n == 50 else [])
                for view in views:
                    gap, hi, lo = native("topk_pair_gap")(view, k, pairs, transform, n_pairs)
                    assert gap.is_cuda and hi.is_cuda and lo.is_cuda, where
                    assert_close_to(gap, want_gap, dtype, scale)
                    if pairs == "all":  # T_k; the CPU kernel returns it in any order
                        assert_same_rows_as_sets(hi, want_hi)
                        assert lo.shape == (7, 0) and lo.dtype == torch.int64, where
                    else:
                        assert_matches(hi, want_hi)
                        assert_matches(lo, want_lo)
                    # the backward from the chosen indices, against the twin and the CPU kernel
                    got = native("topk_pair_gap_backward")(grad.cuda(), view, hi, lo, pairs, transform)
                    assert got.is_cuda and got.shape == x.shape, where
                    want = reference_regularizers.topk_pair_gap_backward(
                        grad.double(), x64, hi.cpu(), lo.cpu(), pairs, transform)
                    bw_scale = float(want.abs().max()) * (hi.shape[1] + 1)
                    assert_close_to(got, want, dtype, bw_scale)
                    cpu = native("topk_pair_gap_backward")(grad, x, hi.cpu(), lo.cpu(), pairs, transform)
                    assert_close_to(got, cpu.double(), dtype, bw_scale)
                cpu_gap, cpu_hi, cpu_lo = native("topk_pair_gap")(x, k, pairs, transform, n_pairs)
                assert_close_to(gap, cpu_gap.double(), dtype, scale)
                if pairs == "all":
                    assert_same_rows_as_sets(hi, cpu_hi)
                else:
                    assert_matches(hi, cpu_hi)
                    assert_matches(lo, cpu_lo)


@pytest.mark.parametrize("dtype", DTYPES, ids=("float32", "float64"))
@pytest.mark.parametrize("transform", GAP_TRANSFORMS)
@pytest.mark.parametrize("pairs", GAP_PAIRS)
def test_topk_pair_gap_gradients_match_reference_backend(pairs, transform, dtype):
    for n, k in ((2, 1), (50, 1), (50, 17), (50, 49), (784, 100)):
        x = maps(5, n, dtype, seed=22, ties=True).cuda()
        n_pairs = None if pairs == "all" else n_pairs_values(pairs, k, n)[-1]
        out, grads = [], []
        for backend in ("native", "reference"):
            leaf = x.clone().requires_grad_()
            gap = r2et_fast.topk_pair_gap(leaf, k, pairs, transform, n_pairs, backend=backend)
            assert gap.is_cuda
            upstream = torch.linspace(-1.0, 2.0, 5, dtype=dtype, device="cuda")
            out.append(gap)
            grads.append(torch.autograd.grad(gap, leaf, upstream)[0])
        tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(out[0], out[1], **tol)
        torch.testing.assert_close(grads[0], grads[1], **tol)


@pytest.mark.parametrize("transform", GAP_TRANSFORMS)
@pytest.mark.parametrize("pairs", GAP_PAIRS)
def test_topk_pair_gap_gradcheck(pairs, transform):
    x = maps(3, 10, torch.float64, seed=23, ties=False).cuda().requires_grad_()
    fn = lambda m: r2et_fast.topk_pair_gap(m, 4, pairs, transform, backend="native")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("dtype", DTYPES, ids=("float32", "float64"))
def test_topk_pair_gap_exp_stays_finite(dtype):
    """e^{-I_i} e^{I_j} overflows for large maps; the log-space form stays finite."""
    x = torch.tensor([[1000.0, 999.5, 999.0, 998.0], [-80.0, -90.0, -100.0, -95.0]], dtype=dtype)
    gap, hi, lo = native("topk_pair_gap")(x.cuda(), 2, "all", "exp", 0)
    assert torch.isfinite(gap).all()
    assert_close_to(gap, reference.topk_pair_gap(x.double(), 2, "all", "exp", 0), dtype)
    grad = torch.ones(2, dtype=dtype)
    got = native("topk_pair_gap_backward")(grad.cuda(), x.cuda(), hi, lo, "all", "exp")
    assert torch.isfinite(got).all()
    want = reference_regularizers.topk_pair_gap_backward(grad.double(), x.double(), hi.cpu(), lo.cpu(),
                                                         "all", "exp")
    assert_close_to(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=("float32", "float64"))
def test_hessian_fd_norm_matches_reference(dtype):
    for batch in BATCHES:
        for n in (1, 2, 50, 784, 5000):
            gx = maps(batch, n, dtype, seed=24, ties=False)
            gxv = gx + 1e-2 * maps(batch, n, dtype, seed=25, ties=False)
            gxv[0] = gx[0]  # coinciding rows: H = 0 and a zero gradient
            grad = maps(batch, 1, dtype, seed=26, ties=False)[:, 0]
            for kappa in (1e-3, 0.7):
                want = reference.hessian_fd_norm(gx.double(), gxv.double(), kappa)
                want_bw = reference_regularizers.hessian_fd_norm_backward(
                    grad.double(), gx.double(), gxv.double(), kappa)
                for how in (None, 0, 1):
                    a = gx.cuda() if how is None else non_contiguous(gx, how)
                    b = gxv.cuda() if how is None else non_contiguous(gxv, 1 - how)
                    got = native("hessian_fd_norm")(a, b, kappa)
                    assert got.is_cuda
                    assert_close_to(got, want, dtype)
                    assert float(got[0]) == 0.0
                    d_x, d_xv = native("hessian_fd_norm_backward")(grad.cuda(), a, b, kappa)
                    assert d_x.is_cuda and d_xv.is_cuda
                    assert_close_to(d_x, want_bw[0], dtype)
                    assert_close_to(d_xv, want_bw[1], dtype)
                    assert (d_x[0] == 0).all() and (d_xv[0] == 0).all()
                cpu = native("hessian_fd_norm")(gx, gxv, kappa)
                assert_close_to(got, cpu.double(), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=("float32", "float64"))
def test_hessian_fd_norm_gradients_match_reference_backend(dtype):
    gx = maps(6, 300, dtype, seed=27, ties=False).cuda()
    gxv = gx + 0.1 * maps(6, 300, dtype, seed=28, ties=False).cuda()
    gxv[2] = gx[2]
    upstream = torch.linspace(-1.0, 2.0, 6, dtype=dtype, device="cuda")
    results = []
    for backend in ("native", "reference"):
        a, b = gx.clone().requires_grad_(), gxv.clone().requires_grad_()
        h = r2et_fast.hessian_fd_norm(a, b, 0.05, backend=backend)
        assert h.is_cuda
        results.append((h, *torch.autograd.grad(h, (a, b), upstream)))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    for native_t, reference_t in zip(*results):
        torch.testing.assert_close(native_t, reference_t, **tol)


def test_hessian_fd_norm_gradcheck():
    gx = maps(3, 8, torch.float64, seed=29, ties=False).cuda().requires_grad_()
    gxv = (gx.detach() + maps(3, 8, torch.float64, seed=30, ties=False).cuda()).requires_grad_()
    fn = lambda a, b: r2et_fast.hessian_fd_norm(a, b, 0.3, backend="native")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (gx, gxv))
    assert torch.autograd.gradgradcheck(fn, (gx, gxv))


def test_regularizer_ops_on_a_side_stream():
    x = maps(16, 100, torch.float64, seed=31, ties=True)
    y = x + maps(16, 100, torch.float64, seed=32, ties=False)
    grad = maps(16, 1, torch.float64, seed=33, ties=False)[:, 0]
    gx, gy, gg = x.cuda(), y.cuda(), grad.cuda()
    torch.cuda.synchronize()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        outs = {pairs: native("topk_pair_gap")(gx, 30, pairs, "exp", 5) for pairs in GAP_PAIRS}
        bws = {p: native("topk_pair_gap_backward")(gg, gx, o[1], o[2], p, "exp") for p, o in outs.items()}
        h = native("hessian_fd_norm")(gx, gy, 0.1)
        h_bw = native("hessian_fd_norm_backward")(gg, gx, gy, 0.1)
    stream.synchronize()
    for pairs, (gap, hi, lo) in outs.items():
        assert_close_to(gap, reference.topk_pair_gap(x, 30, pairs, "exp", 5), torch.float64)
        want = reference_regularizers.topk_pair_gap_backward(grad, x, hi.cpu(), lo.cpu(), pairs, "exp")
        assert_close_to(bws[pairs], want, torch.float64)
    assert_close_to(h, reference.hessian_fd_norm(x, y, 0.1), torch.float64)
    for got, want in zip(h_bw, reference_regularizers.hessian_fd_norm_backward(grad, x, y, 0.1)):
        assert_close_to(got, want, torch.float64)


def test_regularizer_ops_reject_bad_input():
    x = maps(2, 10, torch.float64, seed=34, ties=False).cuda()
    op = native("topk_pair_gap")
    with pytest.raises(ValueError, match="pairs must be one of"):
        op(x, 2, "some", "linear", 0)
    with pytest.raises(ValueError, match="transform must be"):
        op(x, 2, "all", "cubic", 0)
    with pytest.raises(ValueError, match="n_pairs must satisfy"):
        op(x, 2, "mm", "linear", 5)
    with pytest.raises(ValueError, match="n_pairs must be >= 1"):
        op(x, 2, "anchor", "linear", 0)
    with pytest.raises(ValueError, match="k must satisfy"):
        op(x, 10, "all", "linear", 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        op(x.half(), 2, "all", "linear", 0)
    for bad_value in (float("nan"), float("inf")):
        bad = x.clone()
        bad[1, 3] = bad_value
        with pytest.raises(ValueError, match="maps contains NaN or Inf"):
            op(bad, 2, "all", "exp", 0)
        with pytest.raises(ValueError, match="a contains NaN or Inf"):
            native("hessian_fd_norm")(bad, x, 1.0)
    _, hi, lo = op(x, 2, "all", "linear", 0)
    grad = torch.ones(2, dtype=torch.float64, device="cuda")
    with pytest.raises(TypeError, match="grad must have the dtype of maps"):
        native("topk_pair_gap_backward")(grad.float(), x, hi, lo, "all", "linear")
    with pytest.raises(ValueError, match="grad must have shape"):
        native("topk_pair_gap_backward")(grad[:1], x, hi, lo, "all", "linear")
    with pytest.raises(ValueError, match="same device"):
        native("topk_pair_gap_backward")(grad, x, hi.cpu(), lo.cpu(), "all", "linear")
    for kappa in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="kappa must be a positive finite number"):
            native("hessian_fd_norm")(x, x, kappa)
        with pytest.raises(ValueError, match="kappa must be a positive finite number"):
            native("hessian_fd_norm_backward")(grad, x, x, kappa)
    with pytest.raises(ValueError, match="a and b must be on the same device"):
        native("hessian_fd_norm")(x, x.cpu(), 1.0)
    with pytest.raises(ValueError, match="grad must be on the device"):
        native("hessian_fd_norm_backward")(grad.cpu(), x, x, 1.0)
