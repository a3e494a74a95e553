"""ERAttack end to end on small models: it lowers P@k, respects ball, box and label, records the
path, and agrees across backends."""

from __future__ import annotations

import pytest
import torch

from python_tests.conftest import requires_native
from r2et_fast.attacks import ERAttack
from r2et_fast.explain._score import autograd_gradients
from r2et_fast.models import TabularMLP


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 12, generator=g, dtype=torch.float64)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).long()
    model = TabularMLP(12).double()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(200):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, x[:64], y[:64]


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("pairs", ["all", "anchor"])
def test_attack_moves_explanations_within_budget(backend, trained, norm, pairs):
    model, x, y = trained
    attack = ERAttack(model, k=4, eps=0.5, alpha=0.05, steps=20, norm=norm, pairs=pairs,
                      lower=-5.0, upper=5.0, backend=backend)
    result = attack(x, y)
    delta = (result.x_adv - x).flatten(1)
    size = delta.norm(dim=1) if norm == "l2" else delta.abs().amax(dim=1)
    assert bool((size <= 0.5 + 1e-9).all())
    assert bool((result.x_adv >= -5).all() and (result.x_adv <= 5).all())
    assert result.precision_at_k.shape == (21, 64)
    assert torch.equal(result.precision_at_k[0], torch.ones(64, dtype=torch.float64))
    assert result.final_precision_at_k.mean() < 0.95  # the attack works
    assert bool(result.label_kept.all())  # early stop keeps every label
    epochs = result.manipulation_epoch
    assert bool(((epochs >= 0) & (epochs <= 21)).all())
    manipulated = result.final_precision_at_k < 1
    assert bool((epochs[manipulated] <= 20).all())


def test_random_start_is_seeded_and_inside(backend, trained):
    model, x, y = trained
    kw = dict(k=4, eps=0.3, alpha=0.05, steps=3, norm="l2", random_start=True, backend=backend)
    a = ERAttack(model, seed=1, **kw)(x, y)
    b = ERAttack(model, seed=1, **kw)(x, y)
    c = ERAttack(model, seed=2, **kw)(x, y)
    assert torch.equal(a.x_adv, b.x_adv) and not torch.equal(a.x_adv, c.x_adv)
    assert bool(((a.x_adv - x).flatten(1).norm(dim=1) <= 0.3 + 1e-9).all())


def test_constraint_none_may_flip_labels_but_early_stop_never(backend, trained):
    model, x, y = trained
    kw = dict(k=4, eps=3.0, alpha=0.3, steps=15, norm="linf", backend=backend)
    free = ERAttack(model, constraint="none", **kw)(x, y)
    kept = ERAttack(model, constraint="early_stop", **kw)(x, y)
    assert bool(kept.label_kept.all())
    assert bool((kept.steps_run <= free.steps_run).all())


def test_zero_steps_returns_the_input(backend, trained):
    model, x, y = trained
    result = ERAttack(model, k=4, steps=0, backend=backend)(x, y)
    assert torch.equal(result.x_adv, x)
    assert torch.equal(result.manipulation_epoch, torch.ones(64, dtype=torch.int64))


@requires_native
def test_backends_agree(trained):
    model, x, y = trained
    kw = dict(k=4, eps=0.5, alpha=0.05, steps=10, norm="l2", pairs="all")
    with autograd_gradients():  # the generic loop on either backend (the fused one: engine tests)
        a = ERAttack(model, backend="native", **kw)(x, y)
    b = ERAttack(model, backend="reference", **kw)(x, y)
    torch.testing.assert_close(a.x_adv, b.x_adv)
    torch.testing.assert_close(a.precision_at_k, b.precision_at_k)


def test_bad_arguments(trained):
    model, x, y = trained
    with pytest.raises(ValueError, match="eps must be a finite number"):
        ERAttack(model, eps=-1)
    with pytest.raises(ValueError, match="steps must be an int"):
        ERAttack(model, steps=2.5)
    with pytest.raises(ValueError, match="norm must be one of"):
        ERAttack(model, norm="l1")
    with pytest.raises(ValueError, match="constraint must be one of"):
        ERAttack(model, constraint="gda-typo")
    with pytest.raises(ValueError, match="k must satisfy"):
        ERAttack(model, k=12)(x, y)
    with pytest.raises(ValueError, match=r"y must have shape \(64,\)"):
        ERAttack(model)(x, y[:3])
    with pytest.raises(ValueError, match="x contains NaN"):
        ERAttack(model)(x * float("nan"), y)
    with pytest.raises(ValueError, match="outside the box"):
        ERAttack(model, lower=0.0)(x, y)


@pytest.mark.parametrize("constraint", ["gda", "hedge", "qp", "fixed"])
@pytest.mark.parametrize("distance", ["prob_l2", "kl", "margin"])
def test_lagrangian_constraints_run_and_stay_inside(backend, trained, constraint, distance):
    model, x, y = trained
    result = ERAttack(model, k=4, eps=0.5, alpha=0.05, steps=10, norm="linf", constraint=constraint,
                      distance=distance, lower=-5.0, upper=5.0, backend=backend)(x, y)
    assert bool(((result.x_adv - x).abs().amax(dim=1) <= 0.5 + 1e-9).all())
    assert result.final_precision_at_k.mean() < 1.0
    assert result.label_kept.dtype == torch.bool


def test_constraint_weight_keeps_more_labels(trained):
    """Weighting the prediction constraint keeps at least as many labels as ignoring it."""
    model, x, y = trained
    kw = dict(k=4, eps=3.0, alpha=0.3, steps=15, norm="linf")
    free = ERAttack(model, constraint="none", **kw)(x, y)
    kept = ERAttack(model, constraint="qp", **kw)(x, y)
    assert kept.label_kept.float().mean() >= free.label_kept.float().mean()


def test_constraint_options_are_checked(trained):
    model, _, _ = trained
    with pytest.raises(ValueError, match="distance must be one of"):
        ERAttack(model, distance="js")
    with pytest.raises(ValueError, match="tolerance must be a finite number"):
        ERAttack(model, tolerance=-1)


def test_margin_constraint_is_inactive_until_the_prediction_flips(trained):
    """With distance="margin" and tolerance 0 the handlers equal the free attack while nothing flips."""
    model, x, y = trained
    kw = dict(k=4, eps=0.05, alpha=0.01, steps=5, norm="linf", distance="margin")
    free = ERAttack(model, constraint="none", **kw)(x, y)
    assert bool(free.label_kept.all())
    for constraint in ("gda", "hedge", "qp"):
        same = ERAttack(model, constraint=constraint, **kw)(x, y)
        assert torch.allclose(same.x_adv, free.x_adv)
    attack = ERAttack(model, constraint="gda", distance="margin", tolerance=0.0)
    with torch.no_grad():
        p0 = torch.softmax(model(x), dim=1)
    assert bool((attack._violation(x, p0) == 0).all())
