"""The fused projected step: native vs reference, ball and box always respected, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import r2et_fast
from python_tests.conftest import requires_native

NORMS = ["l2", "linf"]


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


@requires_native
@settings(max_examples=60, deadline=None)
@given(batch=st.integers(1, 5), n=st.integers(1, 40), dtype=st.sampled_from([torch.float32, torch.float64]),
       step_norm=st.sampled_from(NORMS), norm=st.sampled_from(NORMS), alpha=st.floats(0, 1),
       eps=st.floats(0, 1), seed=st.integers(0, 2**31 - 1), box=st.booleans())
def test_native_matches_reference_and_stays_inside(batch, n, dtype, step_norm, norm, alpha, eps, seed, box):
    x, grad, x0 = case((batch, n), seed, dtype)
    kw = dict(step_norm=step_norm, norm=norm, lower=0.0 if box else None, upper=1.0 if box else None)
    out = r2et_fast.projected_step(x, grad, x0, alpha, eps, backend="native", **kw)
    ref = r2et_fast.projected_step(x, grad, x0, alpha, eps, backend="reference", **kw)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out, ref, atol=tol, rtol=tol)
    assert within(out.double(), x0.double(), eps, norm, -float("inf") if not box else 0.0,
                  float("inf") if not box else 1.0, tol=1e-6 if dtype == torch.float32 else 1e-12)


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


@requires_native
def test_cpp_layer_rejects():
    x, grad, x0 = (t.flatten(1) for t in case())
    op = torch.ops.r2et_fast.projected_step
    with pytest.raises(ValueError, match="norm must be 'l2' or 'linf'"):
        op(x, grad, x0, 0.1, 0.1, "l2", "l1", None, None)
    with pytest.raises(ValueError, match="lower must be a 1-D tensor"):
        op(x, grad, x0, 0.1, 0.1, "l2", "l2", torch.zeros(3, dtype=x.dtype), None)
    with pytest.raises(ValueError, match="eps must be a finite number"):
        op(x, grad, x0, 0.1, float("inf"), "l2", "l2", None, None)
