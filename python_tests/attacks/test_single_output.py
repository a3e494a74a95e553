"""Single-output models (B, 1), the logit z of class 1: the prediction is 1[z > 0] everywhere in the
attacks (label check, early stop, restarts) and the constraints' probabilities are
[1 - sigmoid(z), sigmoid(z)], so every attack follows the 2-logit model [0, z] step for step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from r2et_fast.attacks import ATTACKS, ERAttack


class TwoLogit(nn.Module):
    """The 2-logit model [0, z] of a single-output model z: the same classifier."""

    def __init__(self, single: nn.Module) -> None:
        super().__init__()
        self.single = single

    def forward(self, x):
        z = self.single(x)
        return torch.cat([torch.zeros_like(z), z], dim=1)


@pytest.fixture(autouse=True)
def same_code_path(monkeypatch):
    """Both wrappings of the model explain through autograd: the fused saliency and attack loop
    take the plain single-output MLP only, and its maps differ from autograd's in the last bits,
    which the sign steps and top-k sets of an attack turn into different iterates (not a
    different classifier)."""
    from r2et_fast.explain import _score

    monkeypatch.setattr(_score, "_FAST_GRADIENTS", [])
    monkeypatch.setattr(_score, "_FAST_INPUT_GRADIENTS", [])
    with _score.autograd_gradients():  # and the fused attack loop declines
        yield


@pytest.fixture(scope="module")
def binary():
    torch.manual_seed(0)
    single = nn.Sequential(nn.Linear(8, 16), nn.Softplus(beta=3), nn.Linear(16, 1)).double()
    x = torch.randn(32, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # centre the logits so that half the samples lie on each side
        single[2].bias -= single(x)[:, 0].median() + 1e-3
        y = (single(x)[:, 0] > 0).long()
    assert 0 < int(y.sum()) < 32  # both classes present
    return single, TwoLogit(single), x, y


def prediction(single, x):
    with torch.no_grad():
        return single(x)[:, 0] > 0


BIG = dict(k=3, eps=1.5, alpha=0.3, steps=12, norm="linf")


def test_label_kept_sees_the_flips_of_one_output(binary):
    single, _, x, y = binary
    result = ERAttack(single, constraint="none", **BIG)(x, y)
    kept = prediction(single, result.x_adv) == prediction(single, x)
    assert not bool(kept.all())  # some predictions flipped, so the check is tested
    assert torch.equal(result.label_kept, kept)


def test_early_stop_fires_for_one_output(binary):
    single, _, x, y = binary
    result = ERAttack(single, constraint="early_stop", **BIG)(x, y)
    assert bool(result.label_kept.all())
    assert torch.equal(prediction(single, result.x_adv), prediction(single, x))
    assert bool((result.steps_run < BIG["steps"]).any())  # the stop fired for some samples


def assert_same_run(a, b):
    torch.testing.assert_close(a.x_adv, b.x_adv, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(a.adv_maps, b.adv_maps, rtol=1e-9, atol=1e-10)
    assert torch.equal(a.precision_at_k, b.precision_at_k)
    assert torch.equal(a.label_kept, b.label_kept)
    assert torch.equal(a.steps_run, b.steps_run)


@pytest.mark.parametrize("constraint,distance", [
    ("none", "prob_l2"), ("early_stop", "prob_l2"), ("gda", "prob_l2"), ("hedge", "kl"),
    ("qp", "margin"), ("fixed", "kl"), ("qp", "prob_l2")])
def test_one_output_follows_the_two_logit_model(binary, constraint, distance):
    single, double, x, y = binary
    kw = dict(BIG, constraint=constraint, distance=distance, tolerance=0.01)
    one, two = ERAttack(single, **kw)(x, y), ERAttack(double, **kw)(x, y)
    assert_same_run(one, two)
    assert not torch.equal(one.x_adv, x)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_attack_treats_one_output_as_two_logits(binary, name):
    single, double, x, y = binary
    kw = dict(k=3, eps=0.5, alpha=0.1, steps=5, norm="linf")
    if name == "pgd":
        kw["restarts"] = 2
    assert_same_run(ATTACKS[name](single, **kw)(x, y), ATTACKS[name](double, **kw)(x, y))


def test_one_output_labels_are_zero_or_one(binary):
    single, _, x, _ = binary
    with pytest.raises(ValueError, match=r"y must lie in \[0, 2\) for a model with 1 output"):
        ERAttack(single, k=3)(x, 2)
