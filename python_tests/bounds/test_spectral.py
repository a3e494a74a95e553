"""The spectral core: Lanczos xi_max / v_max, the exact route and sum |P_ij| against oracles."""

from __future__ import annotations

import pytest
import torch

from r2et_fast.bounds import abs_sum_p, attribution, attribution_jacobian, top_singular
from r2et_fast.explain._score import predict

from . import SoftplusMLP, TinyCNN, oracle_jacobian

CASES = [
    ("saliency", {}),
    ("gradxinput", {}),
    ("ig", {"n_steps": 6}),
    ("ig", {"n_steps": 5, "method": "gausslegendre", "baseline": 0.5}),
    ("saliency", {"abs": True}),  # no longer symmetric: the general J^T J route
    ("saliency", {"score": "prob"}),
]


def _split(kwargs):
    kwargs = dict(kwargs)
    return kwargs.pop("score", "logit"), kwargs


@pytest.fixture(scope="module")
def mlp():
    return SoftplusMLP(d=16, hidden=12, classes=3)


@pytest.fixture(scope="module")
def xs():
    return torch.randn(4, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


@pytest.mark.parametrize(("method", "kwargs"), CASES)
def test_lanczos_matches_svd_of_the_oracle_jacobian(mlp, xs, method, kwargs):
    score, ekw = _split(kwargs)
    res = top_singular(mlp, xs, method, score=score, explainer_kwargs=ekw)
    jac = oracle_jacobian(mlp, xs, method, res.target, score=score, **ekw)
    _, sv, vh = torch.linalg.svd(jac)
    torch.testing.assert_close(res.xi_max, sv[:, 0], rtol=1e-6, atol=0)
    assert bool(res.converged.all()) and bool((res.iterations <= xs.shape[1]).all())
    # v_max is a unit right singular vector (up to sign), and J v_max has norm xi_max
    align = (res.v_max * vh[:, 0]).sum(dim=1).abs()
    assert bool((align > 1 - 1e-6).all()), align
    torch.testing.assert_close(res.v_max.norm(dim=1), torch.ones(4, dtype=torch.float64))
    jv = (jac @ res.v_max[:, :, None])[:, :, 0]
    torch.testing.assert_close(jv.norm(dim=1), sv[:, 0], rtol=1e-6, atol=0)
    # the exact route agrees with the oracle too
    ex = top_singular(mlp, xs, method, score=score, explainer_kwargs=ekw, solver="exact")
    torch.testing.assert_close(ex.xi_max, sv[:, 0], rtol=1e-10, atol=0)


@pytest.mark.parametrize(("method", "kwargs"), CASES[:3])
def test_attribution_jacobian_matches_autograd_functional(mlp, xs, method, kwargs):
    target = predict(mlp, xs)
    jac = attribution_jacobian(mlp, xs, method, target, explainer_kwargs=kwargs, chunk_size=5)
    torch.testing.assert_close(jac, oracle_jacobian(mlp, xs, method, target, **kwargs))


def test_saliency_jacobian_is_the_input_hessian(mlp, xs):
    target = predict(mlp, xs)
    jac = attribution_jacobian(mlp, xs, "saliency")
    for i in range(xs.shape[0]):
        hess = torch.autograd.functional.hessian(lambda v, i=i: mlp(v[None])[0, target[i]], xs[i])
        torch.testing.assert_close(jac[i], hess)


@pytest.mark.parametrize(("method", "kwargs"), CASES[:3])
def test_abs_sum_p_matches_explicit_p(mlp, xs, method, kwargs):
    target = predict(mlp, xs)
    jac = oracle_jacobian(mlp, xs, method, target, **kwargs)
    p = jac.transpose(1, 2) @ jac  # the paper's P = H H^T with H = J^T: n x n over inputs
    want = p.abs().sum(dim=(1, 2))
    got = abs_sum_p(mlp, xs, method, explainer_kwargs=kwargs)
    torch.testing.assert_close(got, want)
    # tiny budgets: one sample per group and a few columns of P per block
    tiny = abs_sum_p(mlp, xs, method, explainer_kwargs=kwargs, max_elements=40, chunk_size=3)
    torch.testing.assert_close(tiny, want)


def test_larger_n_converges_before_n_iterations():
    model = SoftplusMLP(d=40, hidden=6, classes=3, seed=3)
    x = torch.randn(3, 40, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    res = top_singular(model, x, "saliency")
    ex = top_singular(model, x, "saliency", solver="exact")
    torch.testing.assert_close(res.xi_max, ex.xi_max, rtol=1e-6, atol=0)
    assert bool(res.converged.all()) and int(res.iterations.max()) < 40


def test_image_inputs_keep_their_shape():
    model = TinyCNN()
    x = torch.rand(3, 1, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for method in ("saliency", "gradxinput"):
        res = top_singular(model, x, method)
        assert res.v_max.shape == x.shape and res.attribution.shape == (3, 25)
        torch.testing.assert_close(res.xi_max, top_singular(model, x, method, solver="exact").xi_max,
                                   rtol=1e-6, atol=0)


def test_float32_default_tolerance():
    model = TinyCNN()
    x = torch.rand(3, 1, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = top_singular(model, x, "saliency", solver="exact").xi_max
    res = top_singular(model.float(), x.float(), "saliency")
    model.double()
    assert res.xi_max.dtype == torch.float32
    torch.testing.assert_close(res.xi_max.double(), exact, rtol=1e-3, atol=0)


def test_zero_curvature_gives_zero():
    model = torch.nn.Linear(5, 3).double().eval()
    x = torch.randn(2, 5, dtype=torch.float64)
    res = top_singular(model, x, "saliency")
    assert bool((res.xi_max == 0).all()) and bool(res.converged.all())
    assert bool(torch.isfinite(res.v_max).all())
    # gradient x input of a linear model: J = diag(w_c), exactly
    res = top_singular(model, x, "gradxinput", target=1)
    torch.testing.assert_close(res.xi_max, model.weight[1].abs().max().detach().expand(2))


def test_iteration_cap_reports_not_converged(mlp, xs):
    res = top_singular(mlp, xs, "gradxinput", max_iter=2)
    assert bool((res.iterations == 2).all()) and not bool(res.converged.any())
    assert bool((res.xi_max > 0).all())  # the Ritz value so far: a lower bound
    assert bool((res.xi_max <= top_singular(mlp, xs, "gradxinput").xi_max * (1 + 1e-12)).all())


def test_target_and_inputs(mlp, xs):
    pred = predict(mlp, xs)
    a = top_singular(mlp, xs, "saliency")
    b = top_singular(mlp, xs, "saliency", target=pred)
    torch.testing.assert_close(a.xi_max, b.xi_max)
    assert torch.equal(a.target, pred)
    other = top_singular(mlp, xs, "saliency", target=(pred + 1) % 3)
    assert not torch.allclose(other.xi_max, a.xi_max)
    x = xs.clone().requires_grad_(True)
    top_singular(mlp, x, "ig", explainer_kwargs={"n_steps": 4})
    assert x.grad is None and torch.equal(x.detach(), xs)
    torch.testing.assert_close(attribution(mlp, xs, "saliency"), a.attribution)
