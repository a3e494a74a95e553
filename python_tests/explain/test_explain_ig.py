"""Integrated Gradients: exactness on linear models, completeness, quadrature and chunking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from r2et_fast.explain import IntegratedGradients, integrated_gradients
from r2et_fast.explain._integrated_gradients import QUADRATURES, quadrature


@pytest.mark.parametrize("method", QUADRATURES)
@pytest.mark.parametrize("n_steps", [2, 7])
@pytest.mark.parametrize("kind", ["none", "scalar", "row", "full"])
def test_linear_model_is_exact(linear, x, method, n_steps, kind):
    baseline = {
        "none": None,
        "scalar": 0.7,
        "row": torch.tensor([0.1, -0.2, 0.3, 0.0], dtype=torch.float64),  # broadcast (D,)
        "full": torch.linspace(-1, 1, 20, dtype=torch.float64).view(5, 4),
    }[kind]
    x0 = torch.zeros(()) if baseline is None else torch.as_tensor(baseline, dtype=x.dtype)
    target = torch.tensor([0, 1, 2, 0, 1])
    got = integrated_gradients(linear, x, target, n_steps=n_steps, method=method, baseline=baseline)
    want = (x - x0) * linear.weight.detach()[target]
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_single_step_methods(linear, x):
    for method in ("riemann_left", "riemann_right", "riemann_middle", "gausslegendre"):
        got = integrated_gradients(linear, x, 1, n_steps=1, method=method)
        torch.testing.assert_close(got, x * linear.weight.detach()[1])


@pytest.mark.parametrize("score", ["logit", "prob", "loss"])
def test_completeness_gauss_legendre(mlp, x, score):
    baseline = torch.full_like(x, -0.3)
    target = torch.tensor([1, 0, 2, 2, 1])
    attr = integrated_gradients(
        mlp, x, target, score=score, n_steps=40, method="gausslegendre", baseline=baseline
    )

    def s(inp):
        out = mlp(inp).detach()
        if score == "logit":
            return out.gather(1, target.view(-1, 1))[:, 0]
        if score == "prob":
            return torch.softmax(out, 1).gather(1, target.view(-1, 1))[:, 0]
        return torch.nn.functional.cross_entropy(out, target, reduction="none")

    torch.testing.assert_close(attr.sum(1), s(x) - s(baseline), rtol=1e-10, atol=1e-10)


def test_riemann_rules_converge_to_gauss_legendre(mlp, x):
    ref = integrated_gradients(mlp, x, 0, n_steps=40, method="gausslegendre")
    for method in ("riemann_trapezoid", "riemann_middle"):
        got = integrated_gradients(mlp, x, 0, n_steps=400, method=method)
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", QUADRATURES)
def test_quadrature_integrates_polynomials(method):
    nodes, weights = quadrature(method, 9)
    assert nodes.min() >= 0 and nodes.max() <= 1
    assert np.isclose(weights.sum(), 1.0)
    if method not in ("riemann_left", "riemann_right"):  # exact for int_0^1 a da = 1/2
        assert np.isclose((weights * nodes).sum(), 0.5)
    if method == "gausslegendre":  # exact up to degree 2n - 1
        assert np.isclose((weights * nodes**17).sum(), 1 / 18)


def test_chunking_does_not_change_result(mlp, x):
    ref = integrated_gradients(mlp, x, 2, n_steps=10)
    for kw in (
        {"chunk_size": 1},
        {"chunk_size": 3},
        {"chunk_size": 10},
        {"internal_batch_size": 7},
    ):
        torch.testing.assert_close(
            integrated_gradients(mlp, x, 2, n_steps=10, **kw), ref, rtol=1e-12, atol=1e-12
        )


def test_forward_batch_bounded_by_chunk(mlp, x):
    rows = []

    def spy(inp):
        rows.append(inp.shape[0])
        return mlp(inp)

    IntegratedGradients(spy, n_steps=10, chunk_size=4).attribute(x, 0)
    assert rows == [20, 20, 10]
    rows.clear()
    IntegratedGradients(spy, n_steps=10, internal_batch_size=16).attribute(x, 0)
    assert max(rows) == 15


def test_baseline_requiring_grad_stays_in_graph(mlp, x):
    baseline = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    out = integrated_gradients(mlp, x, 0, create_graph=True, n_steps=5, baseline=baseline)
    (g,) = torch.autograd.grad(out.sum(), baseline)
    assert g.abs().sum() > 0
    plain = integrated_gradients(mlp, x, 0, n_steps=5, baseline=baseline)
    assert plain.grad_fn is None


def test_per_call_overrides(mlp, x):
    ig = IntegratedGradients(mlp, n_steps=5)
    torch.testing.assert_close(
        ig.attribute(x, 1, method="gausslegendre", n_steps=12),
        integrated_gradients(mlp, x, 1, method="gausslegendre", n_steps=12),
    )
    assert ig.n_steps == 5 and ig.method == "riemann_trapezoid"
