"""The R2ET pair-gap op G_k against a brute-force loop over pairs, native vs reference, gradients
(gradcheck, gradgradcheck, double backprop through a model) and bad input; the forward and
backward kernels of every device against their twins and the CPU kernels."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import r2et_fast
from python_tests.conftest import np_order, requires_native
from python_tests.ops.kernel_cases import (
    DTYPES,
    assert_close_to,
    assert_matches,
    assert_same_rows_as_sets,
    k_values,
    maps,
    native,
    non_contiguous,
)
from r2et_fast import reference
from r2et_fast.reference import regularizers as twins

PAIRS = ["all", "anchor", "mm"]
TRANSFORMS = ["linear", "exp"]


def brute_force(maps: np.ndarray, k: int, pairs: str, transform: str, n_pairs: int | None) -> np.ndarray:
    """Spelled-out pairs, one row at a time (the way the spec states G_k)."""
    out = []
    n = maps.shape[1]
    for row in maps:
        order = np_order(row)
        if pairs == "all":
            chosen = list(itertools.product(order[:k], order[k:]))
        elif pairs == "anchor":
            N = k if n_pairs is None else n_pairs
            anchor = order[k - 1]
            chosen = [(order[r], anchor) for r in range(max(0, k - 1 - N), k - 1)]
            chosen += [(anchor, order[r]) for r in range(k, min(n, k + N))]
        else:
            kp = min(k, n - k) if n_pairs is None else n_pairs
            chosen = [(order[k - 1 - m], order[k + m]) for m in range(kp)]
        h = np.array([row[i] - row[j] for i, j in chosen])
        out.append(h.sum() if transform == "linear" else -np.exp(-h).sum())
    return np.array(out)


def maps_batch(batch, n, ties=False, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(batch, n, generator=g, dtype=torch.float64)
    return ((m * 2).round() / 2 if ties else m).to(dtype)


@pytest.mark.parametrize("pairs", PAIRS)
@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("n,k,n_pairs,ties", [(2, 1, None, False), (9, 1, None, True), (9, 8, None, False),
                                              (12, 4, None, True), (30, 8, 3, False), (30, 15, None, True)])
def test_matches_brute_force(backend, pairs, transform, n, k, n_pairs, ties):
    maps = maps_batch(3, n, ties)
    got = r2et_fast.topk_pair_gap(maps, k, pairs, transform, n_pairs if pairs != "all" else None,
                                  backend=backend)
    want = brute_force(maps.numpy(), k, pairs, transform, n_pairs if pairs != "all" else None)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("pairs", PAIRS)
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_gradcheck_and_gradgradcheck(backend, pairs, transform):
    maps = maps_batch(3, 10, seed=2).requires_grad_()
    fn = lambda m: r2et_fast.topk_pair_gap(m, 4, pairs, transform, backend=backend)  # noqa: E731
    assert gradcheck(fn, (maps,))
    assert gradgradcheck(fn, (maps,))


def test_exp_all_pairs_does_not_overflow(backend):
    """e^{-I_i} e^{I_j} overflows for large maps; the log-space form stays finite."""
    maps = torch.tensor([[1000.0, 999.5, 999.0, 998.0]], dtype=torch.float64)
    got = r2et_fast.topk_pair_gap(maps, 2, "all", "exp", backend=backend)
    want = brute_force(maps.numpy(), 2, "all", "exp", None)
    assert torch.isfinite(got).all()
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


@requires_native
@pytest.mark.parametrize("pairs", PAIRS)
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_double_backprop_through_a_model_matches_reference(pairs, transform):
    """The R2ET use: d G_k(saliency(x; w)) / d w, which differentiates the explanation again."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.Softplus(beta=5),
                                torch.nn.Linear(16, 2)).double()
    x = torch.randn(5, 12, dtype=torch.float64, requires_grad=True)
    grads = {}
    for backend in ("native", "reference"):
        logit = model(x)[:, 1].sum()
        (sal,) = torch.autograd.grad(logit, x, create_graph=True)
        gap = r2et_fast.topk_pair_gap(sal.abs(), 4, pairs, transform, backend=backend).sum()
        # the output bias does not move the saliency: it gets no gradient (None)
        grads[backend] = torch.autograd.grad(gap, list(model.parameters()), allow_unused=True)
    for a, b in zip(grads["native"], grads["reference"]):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b)
    assert any(g is not None and g.abs().sum() > 0 for g in grads["native"])


def test_bad_input(backend):
    maps = maps_batch(2, 6)
    call = lambda *a, **kw: r2et_fast.topk_pair_gap(*a, backend=backend, **kw)  # noqa: E731
    with pytest.raises(ValueError, match="pairs must be one of"):
        call(maps, 2, "some")
    with pytest.raises(ValueError, match="transform must be one of"):
        call(maps, 2, "all", "log")
    with pytest.raises(ValueError, match="n_pairs must satisfy"):
        call(maps, 2, "mm", n_pairs=3)
    with pytest.raises(ValueError, match="n_pairs must be positive"):
        call(maps, 2, "anchor", n_pairs=0)
    with pytest.raises(ValueError, match="k must satisfy"):
        call(maps, 6)
    bad = maps.clone()
    bad[1, 1] = float("nan")
    with pytest.raises(ValueError, match="maps contains NaN or Inf"):
        call(bad, 2)
    with pytest.raises(TypeError, match="maps must be float32 or float64"):
        call(maps.half(), 2)
    with pytest.raises(ValueError, match="maps must be a 2-D"):
        call(maps[0], 2)


def test_cpp_layer_rejects_bad_options(device):
    op = torch.ops.r2et_fast.topk_pair_gap
    x = maps_batch(2, 6).to(device)
    with pytest.raises(ValueError, match="pairs must be one of"):
        op(x, 2, "some", "linear", 0)
    with pytest.raises(ValueError, match="transform must be"):
        op(x, 2, "all", "cubic", 0)
    with pytest.raises(ValueError, match="n_pairs must satisfy"):
        op(x, 2, "mm", "linear", 5)
    with pytest.raises(ValueError, match="n_pairs must be >= 1"):
        op(x, 2, "anchor", "linear", 0)
    for k in (0, 6):
        with pytest.raises(ValueError, match="k must satisfy"):
            op(x, k, "all", "linear", 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        op(x.half(), 2, "all", "linear", 0)
    for bad_value in (float("nan"), float("inf")):
        bad = x.clone()
        bad[1, 3] = bad_value
        with pytest.raises(ValueError, match="maps contains NaN or Inf"):
            op(bad, 2, "all", "exp", 0)
    _, hi, lo = op(x, 2, "all", "linear", 0)
    grad = torch.ones(2, dtype=torch.float64, device=device)
    backward = torch.ops.r2et_fast.topk_pair_gap_backward
    with pytest.raises(TypeError, match="grad must have the dtype of maps"):
        backward(grad.float(), x, hi, lo, "all", "linear")
    with pytest.raises(ValueError, match="grad must have shape"):
        backward(grad[:1], x, hi, lo, "all", "linear")


def test_cpp_layer_rejects_mixed_devices(cuda_device):
    x = maps_batch(2, 6).cuda()
    _, hi, lo = native("topk_pair_gap")(x, 2, "all", "linear", 0)
    grad = torch.ones(2, dtype=torch.float64, device="cuda")
    with pytest.raises(ValueError, match="same device"):
        native("topk_pair_gap_backward")(grad, x, hi.cpu(), lo.cpu(), "all", "linear")


# ---- the kernels of every device against the twins and the CPU kernels -------------------------

def n_pairs_values(pairs: str, k: int, n: int) -> list[int]:
    if pairs == "all":
        return [0]
    if pairs == "anchor":
        return sorted({1, 2, k, n})  # clipped to the ranks that exist
    return sorted({1, min(k, n - k)})


def check_backward(device, grad, x, view, hi, lo, pairs, transform, where):
    """The backward kernel at ``view`` (x on the device, in some layout) from the chosen indices,
    against its twin and the CPU kernel."""
    dtype = x.dtype
    got = native("topk_pair_gap_backward")(grad.to(device), view, hi, lo, pairs, transform)
    assert got.device.type == device and got.shape == x.shape, where
    want = twins.topk_pair_gap_backward(grad.double(), x.double(), hi.cpu(), lo.cpu(), pairs, transform)
    scale = float(want.abs().max()) * (hi.shape[1] + 1)
    assert_close_to(got, want, dtype, scale)
    cpu = native("topk_pair_gap_backward")(grad, x, hi.cpu(), lo.cpu(), pairs, transform)
    assert_close_to(got, cpu.double(), dtype, scale)


@pytest.mark.parametrize("ties", (False, True), ids=("distinct", "ties"))
@pytest.mark.parametrize("dtype", DTYPES, ids=("float32", "float64"))
@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("pairs", PAIRS)
def test_kernels_match_twin(device, pairs, transform, dtype, ties):
    for n in (2, 3, 50, 784):
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
                want_hi, want_lo = twins.pair_indices(x64, k, pairs, n_pairs)
                views = [x.to(device)]
                if n == 50:
                    views += [non_contiguous(x, 0, device), non_contiguous(x, 1, device)]
                for view in views:
                    gap, hi, lo = native("topk_pair_gap")(view, k, pairs, transform, n_pairs)
                    assert {t.device.type for t in (gap, hi, lo)} == {device}, where
                    assert_close_to(gap, want_gap, dtype, scale)
                    if pairs == "all":  # T_k; the CPU kernel returns it in any order
                        assert_same_rows_as_sets(hi, want_hi)
                        assert lo.shape == (7, 0) and lo.dtype == torch.int64, where
                    else:
                        assert_matches(hi, want_hi)
                        assert_matches(lo, want_lo)
                    check_backward(device, grad, x, view, hi, lo, pairs, transform, where)
                cpu_gap, cpu_hi, cpu_lo = native("topk_pair_gap")(x, k, pairs, transform, n_pairs)
                assert_close_to(gap, cpu_gap.double(), dtype, scale)
                if pairs == "all":
                    assert_same_rows_as_sets(hi, cpu_hi)
                else:
                    assert_matches(hi, cpu_hi)
                    assert_matches(lo, cpu_lo)


@pytest.mark.parametrize("dtype", DTYPES, ids=("float32", "float64"))
@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("pairs", PAIRS)
def test_gradients_on_device_match_reference_backend(device, pairs, transform, dtype):
    for n, k in ((2, 1), (50, 1), (50, 17), (50, 49), (784, 100)):
        x = maps(5, n, dtype, seed=22, ties=True).to(device)
        n_pairs = None if pairs == "all" else n_pairs_values(pairs, k, n)[-1]
        out, grads = [], []
        for backend in ("native", "reference"):
            leaf = x.clone().requires_grad_()
            gap = r2et_fast.topk_pair_gap(leaf, k, pairs, transform, n_pairs, backend=backend)
            assert gap.device.type == device
            upstream = torch.linspace(-1.0, 2.0, 5, dtype=dtype, device=device)
            out.append(gap)
            grads.append(torch.autograd.grad(gap, leaf, upstream)[0])
        tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(out[0], out[1], **tol)
        torch.testing.assert_close(grads[0], grads[1], **tol)


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("pairs", PAIRS)
def test_native_gradcheck_on_device(device, pairs, transform):
    x = maps(3, 10, torch.float64, seed=23, ties=False).to(device).requires_grad_()
    fn = lambda m: r2et_fast.topk_pair_gap(m, 4, pairs, transform, backend="native")  # noqa: E731
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


@pytest.mark.parametrize("dtype", DTYPES, ids=("float32", "float64"))
def test_exp_kernels_stay_finite(device, dtype):
    """e^{-I_i} e^{I_j} overflows for large maps; the log-space form stays finite."""
    x = torch.tensor([[1000.0, 999.5, 999.0, 998.0], [-80.0, -90.0, -100.0, -95.0]], dtype=dtype)
    gap, hi, lo = native("topk_pair_gap")(x.to(device), 2, "all", "exp", 0)
    assert torch.isfinite(gap).all()
    assert_close_to(gap, reference.topk_pair_gap(x.double(), 2, "all", "exp", 0), dtype)
    grad = torch.ones(2, dtype=dtype)
    got = native("topk_pair_gap_backward")(grad.to(device), x.to(device), hi, lo, "all", "exp")
    assert torch.isfinite(got).all()
    want = twins.topk_pair_gap_backward(grad.double(), x.double(), hi.cpu(), lo.cpu(), "all", "exp")
    assert_close_to(got, want, dtype)


def test_kernels_on_a_side_stream(cuda_device):
    x = maps(16, 100, torch.float64, seed=31, ties=True)
    grad = maps(16, 1, torch.float64, seed=33, ties=False)[:, 0]
    gx, gg = x.cuda(), grad.cuda()
    torch.cuda.synchronize()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        outs = {pairs: native("topk_pair_gap")(gx, 30, pairs, "exp", 5) for pairs in PAIRS}
        bws = {p: native("topk_pair_gap_backward")(gg, gx, o[1], o[2], p, "exp") for p, o in outs.items()}
    stream.synchronize()
    for pairs, (gap, hi, lo) in outs.items():
        assert_close_to(gap, reference.topk_pair_gap(x, 30, pairs, "exp", 5), torch.float64)
        want = twins.topk_pair_gap_backward(grad, x, hi.cpu(), lo.cpu(), pairs, "exp")
        assert_close_to(bws[pairs], want, torch.float64)
