"""The fused finite-difference Hessian-norm op: values, gradients (twice), zero difference, bad input."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import r2et_fast
from python_tests.conftest import requires_native


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


@requires_native
def test_cpp_layer_rejects_bad_kappa():
    a, b = (t.detach() for t in pair())
    with pytest.raises(ValueError, match="kappa must be a positive finite"):
        torch.ops.r2et_fast.hessian_fd_norm(a, b, -1.0)
