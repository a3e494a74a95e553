"""The CUDA kernel of the fused projected step against the plain-PyTorch reference (run on CPU
copies) and the CPU kernel.

Needs a CUDA GPU and an extension built with CUDA: skipped without a GPU; with a GPU but no CUDA
kernel compiled, the tests fail rather than skip, since that is a broken build.
"""

from __future__ import annotations

import pytest
import torch

import r2et_fast
from r2et_fast._ops import has_kernel

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="needs a CUDA GPU (torch.cuda.is_available() is False)"),
]

NORMS = ("l2", "linf")
DTYPES = (torch.float32, torch.float64)
# B = 1 with one feature and with more features than threads per block (256), small rows, image
# batches (flattened by the wrapper) and a batch of many blocks.
SHAPES = ((1, 1), (1, 784), (7, 3), (5, 3, 8, 8), (64, 300))
# (alpha, eps): ball active, ball inactive (large eps), long step, no step, radius 0.
STEPS = ((0.03, 0.08), (0.01, 10.0), (0.5, 0.05), (0.0, 0.02), (0.1, 0.0))
BOXES = ("none", "scalar", "per_feature")


@pytest.fixture(scope="module", autouse=True)
def cuda_kernel():
    assert r2et_fast.native_available(), "the r2et_fast extension is not loaded"
    assert has_kernel("projected_step", "cuda"), \
        "the extension was built without a CUDA kernel for projected_step"


def tolerance(dtype: torch.dtype) -> float:
    return 1e-5 if dtype == torch.float32 else 1e-12


def case(shape, dtype, seed, zero_rows=()):
    """CPU tensors (x, grad, x0) with x0 in [0, 1], x near x0 and a random gradient; the gradient
    rows listed in ``zero_rows`` are all zeros."""
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.rand(shape, generator=gen, dtype=torch.float64)
    x = (x0 + 0.05 * torch.randn(shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    grad = torch.randn(shape, generator=gen, dtype=torch.float64)
    for r in zero_rows:
        grad[r] = 0
    return x.to(dtype), grad.to(dtype), x0.to(dtype)


def box(kind, shape, dtype, seed):
    """(lower, upper) as the wrapper takes them, CPU tensors or numbers, each containing [0, 1]'s
    x0 after ``clamp_x0``; (None, None) for no box."""
    if kind == "none":
        return None, None
    if kind == "scalar":
        return 0.0, 1.0
    gen = torch.Generator().manual_seed(seed + 1)
    lower = (0.3 * torch.rand(shape[1:], generator=gen, dtype=torch.float64)).to(dtype)
    upper = (0.7 + 0.3 * torch.rand(shape[1:], generator=gen, dtype=torch.float64)).to(dtype)
    return lower, upper


def to_cuda(v):
    return v.cuda() if isinstance(v, torch.Tensor) else v


def clamp_x0(x0, lower, upper):
    """x0 moved into the box, so that clamping to the box cannot leave the ball around x0."""
    if lower is None:
        return x0
    return torch.minimum(torch.maximum(x0, torch.as_tensor(lower, dtype=x0.dtype)),
                         torch.as_tensor(upper, dtype=x0.dtype))


def inside(out, x0, eps, norm, lower, upper, tol) -> None:
    """out lies in the eps-ball around x0 (to rounding) and exactly in the box."""
    out, x0 = out.double(), x0.double()
    delta = (out - x0).flatten(1)
    size = delta.norm(dim=1) if norm == "l2" else delta.abs().amax(dim=1)
    assert bool((size <= eps * (1 + tol) + tol).all()), f"left the {norm} ball: {size.max().item()}"
    if lower is not None:
        assert bool((out >= torch.as_tensor(lower, dtype=torch.float64)).all())
        assert bool((out <= torch.as_tensor(upper, dtype=torch.float64)).all())


def run_both(x, grad, x0, alpha, eps, **kw):
    """The native op on CUDA copies (returned on the CPU) and the reference on the CPU tensors."""
    cuda_kw = {k: to_cuda(v) for k, v in kw.items()}
    got = r2et_fast.projected_step(x.cuda(), grad.cuda(), x0.cuda(), alpha, eps, backend="native",
                                   **cuda_kw)
    assert got.is_cuda and got.dtype == x.dtype and got.shape == x.shape
    want = r2et_fast.projected_step(x, grad, x0, alpha, eps, backend="reference", **kw)
    return got.cpu(), want


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("box_kind", BOXES)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("step_norm", NORMS)
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_reference_and_stays_inside(shape, step_norm, norm, box_kind, dtype):
    for seed, (alpha, eps) in enumerate(STEPS):
        x, grad, x0 = case(shape, dtype, seed)
        lower, upper = box(box_kind, shape, dtype, seed)
        x0 = clamp_x0(x0, lower, upper)
        got, want = run_both(x, grad, x0, alpha, eps, step_norm=step_norm, norm=norm,
                             lower=lower, upper=upper)
        tol = tolerance(dtype)
        torch.testing.assert_close(got, want, rtol=tol, atol=tol)
        inside(got, x0, eps, norm, lower, upper, tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("step_norm", NORMS)
@pytest.mark.parametrize("shape,zero_rows", [((1, 5), (0,)), ((1, 784), (0,)), ((6, 40), (0, 3, 5)),
                                             ((4, 3, 8, 8), (1,))])
def test_zero_gradient_rows(shape, zero_rows, step_norm, norm, dtype):
    x, grad, x0 = case(shape, dtype, 7, zero_rows)
    tol = tolerance(dtype)
    for eps in (10.0, 0.01):
        got, want = run_both(x, grad, x0, 0.2, eps, step_norm=step_norm, norm=norm, lower=0.0,
                             upper=1.0)
        torch.testing.assert_close(got, want, rtol=tol, atol=tol)
        inside(got, x0, eps, norm, 0.0, 1.0, tol)
        if eps == 10.0:  # x is well inside the ball and the box: a zero gradient leaves it in place
            rows = list(zero_rows)
            torch.testing.assert_close(got[rows], x[rows], rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("step_norm", NORMS)
def test_matches_cpu_kernel(step_norm, norm, dtype):
    """Same arithmetic as the CPU kernel: only the order of the norms' additions differs."""
    if not has_kernel("projected_step", "cpu"):
        pytest.skip("no CPU kernel compiled")
    x, grad, x0 = (t.flatten(1) for t in case((9, 3, 10, 10), dtype, 3, zero_rows=(4,)))
    lower = torch.full((300,), 0.1, dtype=dtype)
    upper = torch.full((300,), 0.9, dtype=dtype)
    op = torch.ops.r2et_fast.projected_step
    for alpha, eps in STEPS:
        want = op(x, grad, x0, alpha, eps, step_norm, norm, lower, upper)
        got = op(x.cuda(), grad.cuda(), x0.cuda(), alpha, eps, step_norm, norm, lower.cuda(),
                 upper.cuda())
        tol = 1e-6 if dtype == torch.float32 else 1e-13
        torch.testing.assert_close(got.cpu(), want, rtol=tol, atol=tol)


def test_non_contiguous_inputs():
    x, grad, x0 = (t.flatten(1) for t in case((6, 50), torch.float64, 11))
    views = [t.t().contiguous().cuda().t() for t in (x, grad, x0)]
    assert not views[0].is_contiguous()
    got = torch.ops.r2et_fast.projected_step(*views, 0.05, 0.1, "l2", "linf", None, None)
    want = r2et_fast.projected_step(x, grad, x0, 0.05, 0.1, step_norm="l2", norm="linf",
                                    backend="reference")
    torch.testing.assert_close(got.cpu(), want, rtol=1e-12, atol=1e-12)


def test_mixed_devices_raise():
    x, grad, x0 = (t.flatten(1) for t in case((3, 8), torch.float32, 5))
    xc, gc, x0c = x.cuda(), grad.cuda(), x0.cuda()
    with pytest.raises(ValueError, match="same device"):
        r2et_fast.projected_step(xc, grad, x0c, 0.1, 0.1, backend="native")
    with pytest.raises(ValueError, match="same device"):
        r2et_fast.projected_step(xc, gc, x0, 0.1, 0.1, backend="native")
    with pytest.raises(ValueError, match="on the device of x"):
        r2et_fast.projected_step(xc, gc, x0c, 0.1, 0.1, lower=torch.zeros(8), backend="native")
    op = torch.ops.r2et_fast.projected_step
    with pytest.raises(ValueError, match="same device"):
        op(xc, grad, x0c, 0.1, 0.1, "l2", "l2", None, None)
    with pytest.raises(ValueError, match="same device"):
        op(x, gc, x0, 0.1, 0.1, "l2", "l2", None, None)
    with pytest.raises(ValueError, match="lower must be on the device of x"):
        op(xc, gc, x0c, 0.1, 0.1, "l2", "l2", torch.zeros(8), None)
