"""Gradients of the value-based similarity ops: native backward formulas vs autograd through the
reference, gradcheck and gradgradcheck in float64; ranking ops carry no gradient."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import r2et_fast
from python_tests.conftest import requires_native

DIFFERENTIABLE = ["pearson", "mse", "cosine"]


def inputs(batch=3, n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(batch, n, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(batch, n, generator=g, dtype=torch.float64, requires_grad=True)
    return a, b


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_gradcheck_and_gradgradcheck(backend, name):
    fn = getattr(r2et_fast, name)
    a, b = inputs()
    assert gradcheck(lambda x, y: fn(x, y, backend=backend), (a, b))
    assert gradgradcheck(lambda x, y: fn(x, y, backend=backend), (a, b))


@requires_native
@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_native_gradient_matches_reference(name):
    fn = getattr(r2et_fast, name)
    a, b = inputs(batch=5, n=40, seed=1)
    w = torch.randn(5, dtype=torch.float64)
    grads = [torch.autograd.grad((fn(a, b, backend=be) * w).sum(), (a, b)) for be in ("native", "reference")]
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want)


@requires_native
def test_float32_backward():
    a, b = (t.float().detach().requires_grad_() for t in inputs())
    r2et_fast.cosine(a, b, backend="native").sum().backward()
    assert a.grad.dtype == torch.float32 and torch.isfinite(a.grad).all()


@requires_native
@pytest.mark.parametrize("name", ["kendall_tau", "spearman"])
def test_ranking_metrics_are_not_differentiable(name):
    a, b = inputs()
    out = getattr(r2et_fast, name)(a, b, backend="native")
    assert not out.requires_grad
