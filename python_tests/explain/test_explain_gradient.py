"""Saliency and gradient x input against hand-computed gradients; shared call semantics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from r2et_fast.explain import (
    GradientXInput,
    Saliency,
    get_explainer,
    gradient_x_input,
    integrated_gradients,
    saliency,
    smoothgrad,
)

SCORES = ("logit", "prob", "loss")
EXPLAINER_NAMES = ("saliency", "gradxinput", "smoothgrad", "ig")
FAST = {"smoothgrad": {"n_samples": 4, "seed": 0}, "ig": {"n_steps": 8}}


def explainer(name: str, model, **kw):
    return get_explainer(name, model, **{**FAST.get(name, {}), **kw})


def linear_jacobian(model: nn.Linear, batch: int) -> torch.Tensor:
    return model.weight.detach().expand(batch, -1, -1)


@pytest.mark.parametrize("score", SCORES)
def test_saliency_linear_matches_hand_formula(linear, x, score, hand_score_grads):
    target = torch.tensor([0, 1, 2, 1, 0])
    want = hand_score_grads(linear_jacobian(linear, 5), linear(x).detach(), target)
    got = saliency(linear, x, target, score=score, abs=False)
    torch.testing.assert_close(got, want[score], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(saliency(linear, x, target, score=score), want[score].abs())


@pytest.mark.parametrize("score", SCORES)
def test_saliency_mlp_matches_hand_formula(mlp, x, score, hand_score_grads):
    target = torch.tensor([2, 0, 1, 1, 2])
    want = hand_score_grads(mlp.jacobian(x), mlp(x).detach(), target)[score]
    got = Saliency(mlp, score=score, abs=False).attribute(x, target=target)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("score", SCORES)
def test_gradient_x_input_matches_hand_formula(mlp, x, score, hand_score_grads):
    want = hand_score_grads(mlp.jacobian(x), mlp(x).detach(), torch.full((5,), 1))
    got = gradient_x_input(mlp, x, 1, score=score)
    torch.testing.assert_close(got, want[score] * x, rtol=1e-10, atol=1e-12)
    got_abs = GradientXInput(mlp, score=score, abs=True).attribute(x, 1)
    torch.testing.assert_close(got_abs, (want[score] * x).abs(), rtol=1e-10, atol=1e-12)


def test_target_none_is_argmax_and_int_equals_tensor(mlp, x):
    pred = mlp(x).argmax(1)
    torch.testing.assert_close(saliency(mlp, x), saliency(mlp, x, pred))
    for name in EXPLAINER_NAMES:
        e = explainer(name, mlp)
        torch.testing.assert_close(e.attribute(x), e.attribute(x, pred))
        by_int = e.attribute(x, 2)
        torch.testing.assert_close(by_int, e.attribute(x, torch.full((5,), 2)))
        torch.testing.assert_close(by_int, e.attribute(x, torch.tensor(2)))


def test_images_reduce_channels_and_normalize(conv, images):
    target = torch.tensor([1, 3])
    xg = images.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(conv(xg).gather(1, target.view(-1, 1)).sum(), xg)
    full = saliency(conv, images, target)
    assert full.shape == images.shape
    torch.testing.assert_close(full, grad.abs())
    summed = saliency(conv, images, target, reduce_channels="sum")
    assert summed.shape == (2, 8, 8)
    torch.testing.assert_close(summed, grad.abs().sum(1))
    torch.testing.assert_close(
        saliency(conv, images, target, reduce_channels="max"), grad.abs().amax(1)
    )
    normed = saliency(conv, images, target, reduce_channels="sum", normalize=True)
    torch.testing.assert_close(normed.sum((1, 2)), torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(normed, summed / summed.sum((1, 2), keepdim=True))
    for name in EXPLAINER_NAMES:
        out = explainer(name, conv, reduce_channels="sum", normalize=True, abs=True)
        attr = out.attribute(images, target)
        assert attr.shape == (2, 8, 8)
        torch.testing.assert_close(attr.sum((1, 2)), torch.ones(2, dtype=torch.float64))


def test_normalize_zero_map_stays_zero(x):
    model = nn.Linear(4, 3).double()
    nn.init.zeros_(model.weight)
    out = saliency(model, x, 0, normalize=True)
    assert torch.equal(out, torch.zeros_like(x))


def test_model_ignoring_input_gives_zeros(x):
    bias = nn.Parameter(torch.zeros(3, dtype=torch.float64))

    def constant(inp):
        return bias.expand(inp.shape[0], 3)

    assert torch.equal(saliency(constant, x, 0), torch.zeros_like(x))

    def detached(inp):
        return torch.zeros(inp.shape[0], 3, dtype=inp.dtype)

    assert torch.equal(gradient_x_input(detached, x, 0), torch.zeros_like(x))


@pytest.mark.parametrize("name", EXPLAINER_NAMES)
@pytest.mark.parametrize("training", [True, False])
def test_caller_state_is_untouched(mlp, x, name, training):
    mlp.train(training)
    rng = torch.get_rng_state()
    out = explainer(name, mlp).attribute(x, 0)
    assert not x.requires_grad and x.grad is None
    assert mlp.training is training
    assert all(p.grad is None for p in mlp.parameters())
    assert not out.requires_grad and out.grad_fn is None
    assert torch.equal(torch.get_rng_state(), rng)


@pytest.mark.parametrize("name", EXPLAINER_NAMES)
def test_no_graph_when_create_graph_false_even_if_input_requires_grad(mlp, x, name):
    xr = x.clone().requires_grad_(True)
    out = explainer(name, mlp).attribute(xr, 1)
    assert out.grad_fn is None and not out.requires_grad
    assert xr.grad is None


@pytest.mark.parametrize("name", EXPLAINER_NAMES)
@pytest.mark.parametrize("score", SCORES)
def test_second_derivative_wrt_parameters(mlp, x, name, score):
    out = explainer(name, mlp, score=score).attribute(x, 1, create_graph=True)
    assert out.requires_grad
    grads = torch.autograd.grad(out.sum(), list(mlp.parameters()), allow_unused=True)
    # fc1 enters the input gradient through softplus'' != 0, so its gradient is nonzero.
    assert grads[0] is not None and grads[0].abs().sum() > 0
    assert all(g is not None for g in grads[:3])


@pytest.mark.parametrize("name", EXPLAINER_NAMES)
def test_create_graph_under_no_grad_and_wrt_input(mlp, x, name):
    xr = x.clone().requires_grad_(True)
    with torch.no_grad():
        out = explainer(name, mlp).attribute(xr, 1, create_graph=True)
    (gx,) = torch.autograd.grad(out.sum(), xr)
    assert gx.abs().sum() > 0


def test_create_graph_matches_plain_value(mlp, x):
    for name in EXPLAINER_NAMES:
        e = explainer(name, mlp)
        torch.testing.assert_close(e.attribute(x, 1, create_graph=True).detach(), e.attribute(x, 1))


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, z: saliency(m, z, 1, True, abs=False),
        lambda m, z: saliency(m, z, 1, True, abs=False, score="prob"),
        lambda m, z: gradient_x_input(m, z, 1, True),
        lambda m, z: integrated_gradients(m, z, 1, True, n_steps=4, method="gausslegendre"),
        lambda m, z: integrated_gradients(m, z, 1, True, n_steps=3, baseline=0.5),
        lambda m, z: smoothgrad(m, z, 1, True, n_samples=3, seed=7, abs=False),
    ],
    ids=["saliency", "saliency-prob", "gradxinput", "ig-gl", "ig-trapezoid", "smoothgrad"],
)
def test_gradcheck_and_gradgradcheck(fn, make_mlp):
    model = make_mlp(3, 4, 3, seed=3)
    gen = torch.Generator().manual_seed(4)
    z = torch.randn(2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: fn(model, t), (z,))
    assert torch.autograd.gradgradcheck(lambda t: fn(model, t), (z,))


def test_float32_kept(mlp, x):
    model32 = mlp.float()
    for name in EXPLAINER_NAMES:
        out = explainer(name, model32).attribute(x.float(), 0)
        assert out.dtype == torch.float32 and out.shape == x.shape


@pytest.mark.parametrize("score", SCORES)
def test_single_output_model(score, x):
    model = nn.Linear(4, 1).double()
    w = model.weight.detach()[0]
    zs = model(x).detach()[:, 0]
    sig = torch.sigmoid(zs)
    target = torch.tensor([0, 1, 1, 0, 1])
    want = {
        "logit": w.expand(5, 4),
        "prob": (sig * (1 - sig)).unsqueeze(1) * w,
        "loss": (sig - target).unsqueeze(1) * w,  # d BCE / dz = sigmoid(z) - t
    }[score]
    got = saliency(model, x, target, score=score, abs=False)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # target=None predicts 1[z > 0]
    pred = (zs > 0).long()
    torch.testing.assert_close(
        saliency(model, x, score=score), saliency(model, x, pred, score=score)
    )
    for name in EXPLAINER_NAMES:
        out = explainer(name, model, score=score).attribute(x, target, create_graph=True)
        assert out.shape == x.shape and torch.isfinite(out).all()
