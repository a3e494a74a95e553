"""R2ET regularisers on a model: the batched (native) and two-pass (reference) Hessian norms agree
in value and in parameter gradients, approximate ||H v||, and vanish for a linear model."""

from __future__ import annotations

import math

import pytest
import torch

from python_tests.conftest import requires_native
from r2et_fast import regularizers as R


def smooth_model(n=10, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(n, 16), torch.nn.Softplus(beta=5),
                               torch.nn.Linear(16, 3)).double()


def batch(n=10, size=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(size, n, generator=g, dtype=torch.float64), torch.randint(0, 3, (size,), generator=g)


@requires_native
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("score", ["loss", "logit", "prob"])
def test_batched_and_two_pass_paths_agree(score, batched):
    """Native (one 2B pass when batched, else two passes with fused kernels) equals the reference."""
    model, (x, y) = smooth_model(), batch()
    results = {}
    for backend in ("native", "reference"):
        h, g = R.hessian_norm(model, x, y, score=score, kappa=1e-3, backend=backend, batched=batched)
        loss = h.sum() - R.pair_gap(g.abs(), 4, backend=backend).sum()
        results[backend] = (h, g, torch.autograd.grad(loss, list(model.parameters())[:3]))
    nat, ref = results["native"], results["reference"]
    torch.testing.assert_close(nat[0], ref[0], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(nat[1], ref[1])
    for a, b in zip(nat[2], ref[2]):
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


def test_linear_model_has_zero_logit_hessian(backend):
    model = torch.nn.Linear(5, 2).double()
    x, _ = batch(5, 4)
    h, g = R.hessian_norm(model, x, torch.zeros(4, dtype=torch.long), score="logit", backend=backend)
    torch.testing.assert_close(h, torch.zeros(4, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(g, model.weight[0].detach().expand(4, 5))


def test_images_are_flattened_per_sample(backend):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Softplus(), torch.nn.Flatten(),
                                torch.nn.Linear(2 * 4 * 4, 2)).double()
    x = torch.rand(3, 1, 6, 6, dtype=torch.float64)
    h, g = R.hessian_norm(model, x, torch.tensor([0, 1, 0]), backend=backend)
    assert h.shape == (3,) and g.shape == x.shape and torch.all(h > 0)
    assert R.pair_gap(g.abs(), 5, backend=backend).shape == (3,)


def test_target_none_uses_the_prediction_at_x(backend):
    model, (x, _) = smooth_model(), batch()
    pred = model(x).argmax(1)
    h_none, _ = R.hessian_norm(model, x, None, backend=backend)
    h_pred, _ = R.hessian_norm(model, x, pred, backend=backend)
    torch.testing.assert_close(h_none, h_pred)


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


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("backend", ["native", "reference"])
def test_logits_returned_with_the_hessian_norm_are_the_models_output(backend, batched):
    """The native path reuses its pass's logits at x for the task loss; both paths must
    return the model's output at x, with a graph to the parameters."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Softplus(), torch.nn.Linear(8, 3)).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 1, 0])
    h, g, logits = R.hessian_norm(model, x, y, backend=backend, return_logits=True, batched=batched)
    assert torch.allclose(logits, model(x), atol=1e-12)
    (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(logits, y), [model[0].weight])
    assert grad.abs().sum() > 0
    h2, g2 = R.hessian_norm(model, x, y, backend=backend)
    assert torch.allclose(h, h2) and torch.allclose(g, g2)
