"""The fused finite-difference Hessian-norm op: values, gradients (twice), zero difference, bad input;
the forward and backward kernels of every device against their twins and the CPU kernel."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import r2et_fast
from python_tests.conftest import requires_native
from python_tests.ops.kernel_cases import DTYPES, assert_close_to, maps, native, non_contiguous
from r2et_fast import reference
from r2et_fast.reference import regularizers as twins


def pair(batch=4, n=9, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, n, generator=g, dtype=dtype).requires_grad_(),
            torch.randn(batch, n, generator=g, dtype=dtype).requires_grad_())


def test_value(backend):
    a, b = pair()
    got = r2et_fast.hessian_fd_norm(a, b, 0.01, backend=backend)
    torch.testing.assert_close(got, (b - a).norm(dim=1) / 0.01)


@pytest.mark.parametrize("kappa", [1e-3, 0.5])
def test_gradcheck_and_gradgradcheck(backend, kappa):
    a, b = pair(3, 5)
    fn = lambda x, y: r2et_fast.hessian_fd_norm(x, y, kappa, backend=backend)  # noqa: E731
    assert gradcheck(fn, (a, b))
    assert gradgradcheck(fn, (a, b))


def test_identical_rows_give_zero_and_zero_gradient(backend):
    a, _ = pair()
    b = a.detach().clone().requires_grad_()
    out = r2et_fast.hessian_fd_norm(a, b, 1e-3, backend=backend)
    assert torch.equal(out, torch.zeros_like(out))
    ga, gb = torch.autograd.grad(out.sum(), (a, b))
    assert torch.equal(ga, torch.zeros_like(ga)) and torch.equal(gb, torch.zeros_like(gb))


@requires_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_native_matches_reference_with_strides(dtype):
    a, b = pair(5, 40, seed=3, dtype=dtype)
    a_t = a.detach().t().contiguous().t().requires_grad_()  # column-major storage
    outs = [r2et_fast.hessian_fd_norm(a_t, b, 1e-3, backend=be) for be in ("native", "reference")]
    torch.testing.assert_close(outs[0], outs[1])
    grads = [torch.autograd.grad(o.sum(), (a_t, b)) for o in outs]
    for x, y in zip(*grads):
        torch.testing.assert_close(x, y)


def test_bad_input(backend):
    a, b = pair()
    with pytest.raises(ValueError, match="kappa must be a positive"):
        r2et_fast.hessian_fd_norm(a, b, 0.0, backend=backend)
    with pytest.raises(ValueError, match="kappa must be a positive"):
        r2et_fast.hessian_fd_norm(a, b, float("inf"), backend=backend)
    with pytest.raises(ValueError, match="same shape"):
        r2et_fast.hessian_fd_norm(a, b[:, :3], backend=backend)
    with pytest.raises(TypeError, match="grad_x must be a torch.Tensor"):
        r2et_fast.hessian_fd_norm(None, b, backend=backend)
    nan = a.detach().clone()
    nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="contains NaN or Inf"):
        r2et_fast.hessian_fd_norm(nan, b, backend=backend)


def test_cpp_layer_rejects(device):
    x = maps(2, 10, torch.float64, seed=34, ties=False).to(device)
    grad = torch.ones(2, dtype=torch.float64, device=device)
    for kappa in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="kappa must be a positive finite number"):
            native("hessian_fd_norm")(x, x, kappa)
        with pytest.raises(ValueError, match="kappa must be a positive finite number"):
            native("hessian_fd_norm_backward")(grad, x, x, kappa)
    for bad_value in (float("nan"), float("inf")):
        bad = x.clone()
        bad[1, 3] = bad_value
        with pytest.raises(ValueError, match="a contains NaN or Inf"):
            native("hessian_fd_norm")(bad, x, 1.0)


def test_cpp_layer_rejects_mixed_devices(cuda_device):
    x = maps(2, 10, torch.float64, seed=34, ties=False).cuda()
    grad = torch.ones(2, dtype=torch.float64, device="cuda")
    with pytest.raises(ValueError, match="a and b must be on the same device"):
        native("hessian_fd_norm")(x, x.cpu(), 1.0)
    with pytest.raises(ValueError, match="grad must be on the device"):
        native("hessian_fd_norm_backward")(grad.cpu(), x, x, 1.0)


# ---- the kernels of every device against the twins and the CPU kernel --------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=("float32", "float64"))
def test_kernels_match_twin(device, dtype):
    for batch in (1, 7, 64):
        for n in (1, 2, 50, 784, 5000):
            gx = maps(batch, n, dtype, seed=24, ties=False)
            gxv = gx + 1e-2 * maps(batch, n, dtype, seed=25, ties=False)
            gxv[0] = gx[0]  # coinciding rows: H = 0 and a zero gradient
            grad = maps(batch, 1, dtype, seed=26, ties=False)[:, 0]
            for kappa in (1e-3, 0.7):
                want = reference.hessian_fd_norm(gx.double(), gxv.double(), kappa)
                want_bw = twins.hessian_fd_norm_backward(grad.double(), gx.double(), gxv.double(), kappa)
                for how in (None, 0, 1):
                    a = gx.to(device) if how is None else non_contiguous(gx, how, device)
                    b = gxv.to(device) if how is None else non_contiguous(gxv, 1 - how, device)
                    got = native("hessian_fd_norm")(a, b, kappa)
                    assert got.device.type == device
                    assert_close_to(got, want, dtype)
                    assert float(got[0]) == 0.0
                    d_x, d_xv = native("hessian_fd_norm_backward")(grad.to(device), a, b, kappa)
                    assert d_x.device.type == device and d_xv.device.type == device
                    assert_close_to(d_x, want_bw[0], dtype)
                    assert_close_to(d_xv, want_bw[1], dtype)
                    assert (d_x[0] == 0).all() and (d_xv[0] == 0).all()
                cpu = native("hessian_fd_norm")(gx, gxv, kappa)
                assert_close_to(got, cpu.double(), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=("float32", "float64"))
def test_gradients_on_device_match_reference_backend(device, dtype):
    gx = maps(6, 300, dtype, seed=27, ties=False).to(device)
    gxv = gx + 0.1 * maps(6, 300, dtype, seed=28, ties=False).to(device)
    gxv[2] = gx[2]
    upstream = torch.linspace(-1.0, 2.0, 6, dtype=dtype, device=device)
    results = []
    for backend in ("native", "reference"):
        a, b = gx.clone().requires_grad_(), gxv.clone().requires_grad_()
        h = r2et_fast.hessian_fd_norm(a, b, 0.05, backend=backend)
        assert h.device.type == device
        results.append((h, *torch.autograd.grad(h, (a, b), upstream)))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    for native_t, reference_t in zip(*results):
        torch.testing.assert_close(native_t, reference_t, **tol)


def test_native_gradcheck_on_device(device):
    gx = maps(3, 8, torch.float64, seed=29, ties=False).to(device).requires_grad_()
    gxv = (gx.detach() + maps(3, 8, torch.float64, seed=30, ties=False).to(device)).requires_grad_()
    fn = lambda a, b: r2et_fast.hessian_fd_norm(a, b, 0.3, backend="native")  # noqa: E731
    assert gradcheck(fn, (gx, gxv))
    assert gradgradcheck(fn, (gx, gxv))


def test_kernels_on_a_side_stream(cuda_device):
    x = maps(16, 100, torch.float64, seed=31, ties=True)
    y = x + maps(16, 100, torch.float64, seed=32, ties=False)
    grad = maps(16, 1, torch.float64, seed=33, ties=False)[:, 0]
    gx, gy, gg = x.cuda(), y.cuda(), grad.cuda()
    torch.cuda.synchronize()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        h = native("hessian_fd_norm")(gx, gy, 0.1)
        h_bw = native("hessian_fd_norm_backward")(gg, gx, gy, 0.1)
    stream.synchronize()
    assert_close_to(h, reference.hessian_fd_norm(x, y, 0.1), torch.float64)
    for got, want in zip(h_bw, twins.hessian_fd_norm_backward(grad, x, y, 0.1)):
        assert_close_to(got, want, torch.float64)
