"""ReLU models are not silently "robust": with the logit saliency of a piecewise-linear model every
attack warns that its gradient vanished, and ``surrogate_beta`` attacks through a softplus copy
while every reported quantity stays that of the real model."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from python_tests.conftest import NO_GPU
from r2et_fast.attacks import ATTACKS, ERAttack, VanishingGradientWarning
from r2et_fast.attacks._surrogate import SoftLeakyReLU, softplus_surrogate
from r2et_fast.explain import Saliency

K = 3


def relu_mlp(act=nn.ReLU):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 32), act(), nn.Linear(32, 32), act(), nn.Linear(32, 3)).double()


@pytest.fixture(scope="module")
def relu():
    model = relu_mlp()
    x = torch.rand(16, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    return model, x, model(x).argmax(1)


def run(attack, x, y):
    """The result and the VanishingGradientWarnings the call raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = attack(x, y)
    return result, [w for w in caught if issubclass(w.category, VanishingGradientWarning)]


def p_at_k(a, b, k=K):
    """P@k by hand: the share of the top-k of ``a`` still in the top-k of ``b``, per row."""
    top_a, top_b = a.topk(k, dim=1).indices, b.topk(k, dim=1).indices
    return (top_a[:, :, None] == top_b[:, None, :]).any(dim=2).sum(dim=1).double() / k


def kwargs(name, steps=8):
    return dict(k=K, eps=0.2, alpha=0.2 if name == "erattack_mo" else 0.02, steps=steps)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_logit_saliency_of_a_relu_model_warns_once(relu, name):
    model, x, y = relu
    attack = ATTACKS[name](model, explainer=Saliency(model, score="logit"), **kwargs(name))
    result, caught = run(attack, x, y)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "16 of 16 samples" in message and "piecewise-linear" in message and "surrogate_beta" in message
    assert caught[0].filename == __file__  # points at the caller's line
    if not getattr(attack, "random_start", False):  # nothing moved and P@k is a flat, meaningless 1
        assert torch.equal(result.x_adv, x)
        assert bool((result.precision_at_k == 1).all())


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_smooth_scores_and_surrogates_do_not_warn(relu, name):
    model, x, y = relu
    for attack in (ATTACKS[name](model, **kwargs(name)),  # the default explains the loss
                   ATTACKS[name](model, explainer=Saliency(model, score="logit"), surrogate_beta=10,
                                 **kwargs(name))):
        result, caught = run(attack, x, y)
        assert caught == []
        assert not torch.equal(result.x_adv, x)


def test_surrogate_moves_the_real_explanation_and_reports_the_real_model(relu):
    model, x, y = relu
    saliency = Saliency(model, score="logit")
    weights = [p.clone() for p in model.parameters()]
    long = ERAttack(model, explainer=saliency, surrogate_beta=10, **kwargs("erattack"))(x, y)
    clean = saliency.attribute(x, target=y).flatten(1)
    adv = saliency.attribute(long.x_adv, target=y).flatten(1)
    assert torch.equal(long.clean_maps, clean)
    assert torch.equal(long.adv_maps, adv)
    assert torch.equal(long.final_precision_at_k, p_at_k(clean, adv))
    assert bool((long.final_precision_at_k < 1).any())  # the real explanation did move
    assert torch.equal(long.precision_at_k[0], torch.ones(16, dtype=torch.float64))
    # every row t is the real P@k at iterate t: the run of t steps stops exactly there
    for t in (1, 4):
        short = ERAttack(model, explainer=saliency, surrogate_beta=10, **kwargs("erattack", t))(x, y)
        real = p_at_k(clean, saliency.attribute(short.x_adv, target=y).flatten(1))
        assert torch.equal(long.precision_at_k[t], real)
    with torch.no_grad():
        assert torch.equal(long.label_kept, model(long.x_adv).argmax(1) == model(x).argmax(1))
    # the real model is untouched: same activations, same weights
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 2
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))


def test_leaky_relu_models_warn_and_their_surrogate_works():
    model = relu_mlp(lambda: nn.LeakyReLU(0.2))
    x = torch.rand(8, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    y = model(x).argmax(1)
    saliency = Saliency(model, score="logit")
    _, caught = run(ERAttack(model, explainer=saliency, **kwargs("erattack")), x, y)
    assert len(caught) == 1 and "8 of 8 samples" in str(caught[0].message)
    result, caught = run(ERAttack(model, explainer=saliency, surrogate_beta=10, **kwargs("erattack")), x, y)
    assert caught == [] and bool((result.final_precision_at_k < 1).any())


def test_the_surrogate_replaces_activation_modules_and_tends_to_the_model():
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 8), nn.LeakyReLU(0.1),
                          nn.Linear(8, 2)).double()
    soft = softplus_surrogate(model, 10.0)
    assert isinstance(soft[1], nn.Softplus) and soft[1].beta == 10.0
    assert isinstance(soft[3], SoftLeakyReLU) and soft[3].negative_slope == pytest.approx(0.1)
    assert isinstance(model[1], nn.ReLU) and isinstance(model[3], nn.LeakyReLU)  # a copy
    x = torch.randn(32, 5, dtype=torch.float64)
    sharp = softplus_surrogate(model, 1e6)
    torch.testing.assert_close(sharp(x), model(x), rtol=0, atol=1e-5)
    assert not torch.allclose(soft(x), model(x), rtol=0, atol=1e-5)
    z = torch.linspace(-3, 3, 13, dtype=torch.float64)
    torch.testing.assert_close(SoftLeakyReLU(0.0, 2.0)(z), nn.Softplus(beta=2.0)(z))


class FunctionalReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 2)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def test_surrogate_arguments_are_checked(relu):
    model, _, _ = relu
    saliency = Saliency(model, score="logit")
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="surrogate_beta must be a finite number > 0"):
            ERAttack(model, explainer=saliency, surrogate_beta=bad)
    with pytest.raises(TypeError, match="surrogate_beta must be a real number"):
        ERAttack(model, explainer=saliency, surrogate_beta=True)
    with pytest.raises(TypeError, match="explainer is a plain callable"):
        ERAttack(model, explainer=lambda z, t: saliency.attribute(z, target=t, create_graph=True),
                 surrogate_beta=10)
    with pytest.raises(ValueError, match="surrogate_beta: model has no nn.ReLU or nn.LeakyReLU"):
        ERAttack(FunctionalReLU().double(), surrogate_beta=10)
    with pytest.raises(TypeError, match="surrogate_beta needs model to be an nn.Module"):
        ERAttack(lambda z: model(z), explainer=saliency, surrogate_beta=10)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
def test_warning_and_surrogate_on_the_gpu(relu):
    model, x, y = relu
    gpu, xg, yg = copy.deepcopy(model).cuda(), x.cuda(), y.cuda()
    saliency = Saliency(gpu, score="logit")
    result, caught = run(ERAttack(gpu, explainer=saliency, **kwargs("erattack")), xg, yg)
    assert len(caught) == 1 and torch.equal(result.x_adv, xg)
    result, caught = run(ERAttack(gpu, explainer=saliency, surrogate_beta=10, **kwargs("erattack")), xg, yg)
    assert caught == [] and bool((result.final_precision_at_k < 1).any())
    adv = saliency.attribute(result.x_adv, target=yg).flatten(1)
    assert torch.equal(result.adv_maps, adv)
