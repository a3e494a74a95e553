"""R2ET regularisers on a model: every engine and both ops backends agree in value and in parameter
gradients, Ĥ approximates ||H v||, and it vanishes for a linear model."""

from __future__ import annotations

import math

import pytest
import torch

from python_tests.conftest import requires_native
from r2et_fast import regularizers as R

ENGINES = ["autograd", "batched"]


def smooth_model(n=10, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(n, 16), torch.nn.Softplus(beta=5),
                               torch.nn.Linear(16, 3)).double()


def batch(n=10, size=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(size, n, generator=g, dtype=torch.float64), torch.randint(0, 3, (size,), generator=g)


def objective_and_grads(model, x, y, score, engine, backend):
    h, grads = R.hessian_norm(model, x, y, score=score, kappa=1e-3, engine=engine, backend=backend)
    loss = (h.sum() - R.pair_gap(grads.g_x.abs(), 4, backend=backend).sum()
            + torch.nn.functional.cross_entropy(grads.logits, y))
    return h, grads.g_x, torch.autograd.grad(loss, list(model.parameters()))


@requires_native
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("score", ["loss", "logit", "prob"])
def test_engines_and_backends_agree(score, engine):
    """Every (engine, backend) pair gives the values and parameter gradients of (autograd, reference)."""
    model, (x, y) = smooth_model(), batch()
    want = objective_and_grads(model, x, y, score, "autograd", "reference")
    for backend in ("native", "reference"):
        got = objective_and_grads(model, x, y, score, engine, backend)
        torch.testing.assert_close(got[0], want[0], rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(got[1], want[1])
        for a, b in zip(got[2], want[2]):
            torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-8)


def test_approximates_hessian_vector_product(backend):
    model, (x, y) = smooth_model(), batch()
    h, _ = R.hessian_norm(model, x, y, kappa=1e-5, backend=backend)
    xr = x.clone().requires_grad_()
    g = torch.autograd.grad(torch.nn.functional.cross_entropy(model(xr), y, reduction="sum"), xr,
                            create_graph=True)[0]
    v = torch.sign(g.detach()) / math.sqrt(x.shape[1])
    hv = torch.autograd.grad(g, xr, v)[0]  # rows are independent: per-sample H v
    torch.testing.assert_close(h, hv.norm(dim=1), rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("engine", ENGINES)
def test_linear_model_has_zero_logit_hessian(backend, engine):
    model = torch.nn.Linear(5, 2).double()
    x, _ = batch(5, 4)
    h, grads = R.hessian_norm(model, x, torch.zeros(4, dtype=torch.long), score="logit", backend=backend,
                              engine=engine)
    torch.testing.assert_close(h, torch.zeros(4, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(grads.g_x, model.weight[0].detach().expand(4, 5))


@pytest.mark.parametrize("engine", ENGINES)
def test_images_are_flattened_per_sample(backend, engine):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Softplus(), torch.nn.Flatten(),
                                torch.nn.Linear(2 * 4 * 4, 2)).double()
    x = torch.rand(3, 1, 6, 6, dtype=torch.float64)
    h, grads = R.hessian_norm(model, x, torch.tensor([0, 1, 0]), backend=backend, engine=engine)
    assert h.shape == (3,) and grads.g_x.shape == x.shape and torch.all(h > 0)
    assert R.pair_gap(grads.g_x.abs(), 5, backend=backend).shape == (3,)


@pytest.mark.parametrize("engine", ENGINES)
def test_target_none_uses_the_prediction_at_x(backend, engine):
    model, (x, _) = smooth_model(), batch()
    pred = model(x).argmax(1)
    h_none, grads = R.hessian_norm(model, x, None, backend=backend, engine=engine)
    h_pred, _ = R.hessian_norm(model, x, pred, backend=backend, engine=engine)
    torch.testing.assert_close(h_none, h_pred)
    assert torch.equal(grads.target, pred)


def test_bad_input(backend):
    model, (x, y) = smooth_model(), batch()
    with pytest.raises(ValueError, match="kappa must be a positive"):
        R.hessian_norm(model, x, y, kappa=0, backend=backend)
    with pytest.raises(ValueError, match="score must be one of"):
        R.hessian_norm(model, x, y, score="margin", backend=backend)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        R.hessian_norm(model, x.long(), y, backend=backend)
    with pytest.raises(ValueError, match="x contains NaN"):
        R.hessian_norm(model, x * float("nan"), y, backend=backend)
    with pytest.raises(TypeError, match="model must be callable"):
        R.hessian_norm(None, x, y, backend=backend)
    with pytest.raises(ValueError, match="engine must be one of"):
        R.hessian_norm(model, x, y, engine="fast")


@pytest.mark.parametrize("engine", ENGINES)
def test_logits_are_the_models_output_with_a_graph(engine):
    """The engines reuse a pass's logits at x for the task loss: they must be the model's output at
    x, with a graph to the parameters."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Softplus(), torch.nn.Linear(8, 3)).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 1, 0])
    _, grads = R.hessian_norm(model, x, y, engine=engine)
    assert torch.allclose(grads.logits, model(x), atol=1e-12)
    (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(grads.logits, y), [model[0].weight])
    assert grad.abs().sum() > 0


def test_mean_pair_gap_divides_by_the_number_of_pairs():
    s = torch.rand(4, 10, dtype=torch.float64)
    for pairs, count in (("all", 3 * 7), ("anchor", 3), ("mm", 2)):
        n_pairs = 2 if pairs == "mm" else None
        want = R.pair_gap(s, 3, pairs, n_pairs=n_pairs).mean() / count
        torch.testing.assert_close(R.mean_pair_gap(s, 3, pairs, n_pairs=n_pairs), want)
