"""The fused projected step: native vs reference, ball and box always respected, bad input; the
kernel of every device against the reference (on CPU copies) and the CPU kernel."""

from __future__ import annotations

import pytest
import torch

import r2et_fast
from python_tests.ops.kernel_cases import DTYPES
from r2et_fast._validation import NORMS


def case(shape=(6, 3, 4, 4), seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(shape, generator=g, dtype=dtype)
    x = (x0 + 0.05 * torch.randn(shape, generator=g, dtype=dtype)).clamp(0, 1)
    grad = torch.randn(shape, generator=g, dtype=dtype)
    return x, grad, x0


def within(out, x0, eps, norm, lower, upper, tol=1e-12):
    delta = (out - x0).flatten(1)
    size = delta.norm(dim=1) if norm == "l2" else delta.abs().amax(dim=1)
    return bool((size <= eps * (1 + tol) + tol).all() and (out >= lower).all() and (out <= upper).all())


@pytest.mark.parametrize("step_norm", NORMS)
@pytest.mark.parametrize("norm", NORMS)
def test_matches_hand_computation(backend, step_norm, norm):
    x, grad, x0 = case()
    out = r2et_fast.projected_step(x, grad, x0, 0.03, 0.08, step_norm=step_norm, norm=norm,
                                   lower=0.0, upper=1.0, backend=backend)
    g = grad.flatten(1)
    d = g / g.norm(dim=1, keepdim=True) if step_norm == "l2" else g.sign()
    delta = x.flatten(1) - 0.03 * d - x0.flatten(1)
    if norm == "l2":
        delta = delta * (0.08 / delta.norm(dim=1, keepdim=True)).clamp(max=1)
    else:
        delta = delta.clamp(-0.08, 0.08)
    want = (x0.flatten(1) + delta).clamp(0, 1).view_as(x)
    torch.testing.assert_close(out, want)
    assert within(out, x0, 0.08, norm, 0.0, 1.0)


def test_zero_gradient_stays_put(backend):
    x, grad, x0 = case()
    out = r2et_fast.projected_step(x, torch.zeros_like(grad), x0, 0.1, 1.0, backend=backend)
    torch.testing.assert_close(out, x)


def test_per_feature_box(backend):
    x, grad, x0 = case((4, 5))
    lower = torch.tensor([0.0, 0.1, 0.2, 0.0, 0.0], dtype=torch.float64)
    x0 = torch.maximum(x0, lower)
    x = torch.maximum(x, lower)
    out = r2et_fast.projected_step(x, grad, x0, 0.5, 0.5, norm="linf", lower=lower, upper=1.0,
                                   backend=backend)
    assert bool((out >= lower).all() and (out <= 1).all())


def test_bad_input(backend):
    x, grad, x0 = case()
    step = lambda *a, **kw: r2et_fast.projected_step(*a, backend=backend, **kw)  # noqa: E731
    with pytest.raises(ValueError, match="norm must be one of"):
        step(x, grad, x0, 0.1, 0.1, norm="l1")
    with pytest.raises(ValueError, match="step_norm must be one of"):
        step(x, grad, x0, 0.1, 0.1, step_norm="l3")
    with pytest.raises(ValueError, match="eps must be a finite number"):
        step(x, grad, x0, 0.1, -1.0)
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        step(x, grad, x0, float("nan"), 1.0)
    with pytest.raises(ValueError, match="same shape"):
        step(x, grad[:2], x0, 0.1, 0.1)
    with pytest.raises(ValueError, match="lower must broadcast"):
        step(x, grad, x0, 0.1, 0.1, lower=torch.zeros(7))
    bad = grad.clone()
    bad[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="grad contains NaN or Inf"):
        step(x, bad, x0, 0.1, 0.1)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        step(x.half(), grad, x0, 0.1, 0.1)


def test_cpp_layer_rejects(device):
    x, grad, x0 = (t.flatten(1).to(device) for t in case())
    op = torch.ops.r2et_fast.projected_step
    with pytest.raises(ValueError, match="norm must be 'l2' or 'linf'"):
        op(x, grad, x0, 0.1, 0.1, "l2", "l1", None, None)
    with pytest.raises(ValueError, match="lower must be a 1-D tensor"):
        op(x, grad, x0, 0.1, 0.1, "l2", "l2", torch.zeros(3, dtype=x.dtype, device=device), None)
    with pytest.raises(ValueError, match="eps must be a finite number"):
        op(x, grad, x0, 0.1, float("inf"), "l2", "l2", None, None)


def test_mixed_devices_raise(cuda_device):
    x, grad, x0 = (t.flatten(1) for t in case((3, 8), dtype=torch.float32))
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


# ---- the kernel of every device against the reference and the CPU kernel ------------------------

# B = 1 with one feature and with more features than threads per block (256), small rows, image
# batches (flattened by the wrapper) and a batch of many blocks.
SHAPES = ((1, 1), (1, 784), (7, 3), (5, 3, 8, 8), (64, 300))
# (alpha, eps): ball active, ball inactive (large eps), long step, no step, radius 0.
STEPS = ((0.03, 0.08), (0.01, 10.0), (0.5, 0.05), (0.0, 0.02), (0.1, 0.0))
BOXES = ("none", "scalar", "per_feature")


def tolerance(dtype: torch.dtype) -> float:
    return 1e-5 if dtype == torch.float32 else 1e-12


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


def run_both(device, x, grad, x0, alpha, eps, **kw):
    """The native op on ``device`` copies (returned on the CPU) and the reference on the CPU."""
    moved = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in kw.items()}
    got = r2et_fast.projected_step(x.to(device), grad.to(device), x0.to(device), alpha, eps,
                                   backend="native", **moved)
    assert got.device.type == device and got.dtype == x.dtype and got.shape == x.shape
    want = r2et_fast.projected_step(x, grad, x0, alpha, eps, backend="reference", **kw)
    return got.cpu(), want


@pytest.mark.parametrize("dtype", DTYPES, ids=("float32", "float64"))
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("step_norm", NORMS)
@pytest.mark.parametrize("shape", SHAPES)
def test_kernel_matches_reference_and_stays_inside(device, shape, step_norm, norm, dtype):
    tol = tolerance(dtype)
    for box_kind in BOXES:
        for seed, (alpha, eps) in enumerate(STEPS):
            x, grad, x0 = case(shape, seed, dtype)
            lower, upper = box(box_kind, shape, dtype, seed)
            x0 = clamp_x0(x0, lower, upper)
            got, want = run_both(device, x, grad, x0, alpha, eps, step_norm=step_norm, norm=norm,
                                 lower=lower, upper=upper)
            torch.testing.assert_close(got, want, rtol=tol, atol=tol, msg=f"box {box_kind}")
            inside(got, x0, eps, norm, lower, upper, tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=("float32", "float64"))
@pytest.mark.parametrize("shape,zero_rows", [((1, 5), (0,)), ((1, 784), (0,)), ((6, 40), (0, 3, 5)),
                                             ((4, 3, 8, 8), (1,))])
def test_kernel_on_zero_gradient_rows(device, shape, zero_rows, dtype):
    x, grad, x0 = case(shape, 7, dtype)
    grad[list(zero_rows)] = 0
    tol = tolerance(dtype)
    for step_norm in NORMS:
        for norm in NORMS:
            for eps in (10.0, 0.01):
                got, want = run_both(device, x, grad, x0, 0.2, eps, step_norm=step_norm, norm=norm,
                                     lower=0.0, upper=1.0)
                torch.testing.assert_close(got, want, rtol=tol, atol=tol)
                inside(got, x0, eps, norm, 0.0, 1.0, tol)
                if eps == 10.0:  # well inside the ball and the box: a zero gradient stays in place
                    rows = list(zero_rows)
                    torch.testing.assert_close(got[rows], x[rows], rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=("float32", "float64"))
def test_cuda_kernel_matches_cpu_kernel(cuda_device, dtype):
    """Same arithmetic as the CPU kernel: only the order of the norms' additions differs."""
    x, grad, x0 = (t.flatten(1) for t in case((9, 3, 10, 10), 3, dtype))
    grad[4] = 0
    lower = torch.full((300,), 0.1, dtype=dtype)
    upper = torch.full((300,), 0.9, dtype=dtype)
    op = torch.ops.r2et_fast.projected_step
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    for step_norm in NORMS:
        for norm in NORMS:
            for alpha, eps in STEPS:
                want = op(x, grad, x0, alpha, eps, step_norm, norm, lower, upper)
                got = op(x.cuda(), grad.cuda(), x0.cuda(), alpha, eps, step_norm, norm, lower.cuda(),
                         upper.cuda())
                torch.testing.assert_close(got.cpu(), want, rtol=tol, atol=tol)


def test_kernel_on_non_contiguous_inputs(device):
    x, grad, x0 = (t.flatten(1) for t in case((6, 50), 11, torch.float64))
    views = [t.t().contiguous().to(device).t() for t in (x, grad, x0)]
    assert not views[0].is_contiguous()
    got = torch.ops.r2et_fast.projected_step(*views, 0.05, 0.1, "l2", "linf", None, None)
    want = r2et_fast.projected_step(x, grad, x0, 0.05, 0.1, step_norm="l2", norm="linf",
                                    backend="reference")
    torch.testing.assert_close(got.cpu(), want, rtol=1e-12, atol=1e-12)
