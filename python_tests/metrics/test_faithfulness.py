"""Sensitivity and removal-based faithfulness (DFFOT, COMP, SUFF) on hand-checkable models."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from r2et_fast.metrics import COMP, DFFOT, SUFF, Sensitivity, dffot_grid, removal_ks

D = torch.float64


def linear(weight, bias=None) -> nn.Linear:
    """f(x) = W x (+ b) as an nn.Linear with the given weights."""
    weight = torch.as_tensor(weight, dtype=D)
    model = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None).to(D)
    with torch.no_grad():
        model.weight.copy_(weight)
        if bias is not None:
            model.bias.copy_(torch.as_tensor(bias, dtype=D))
    return model


class Feature0(nn.Module):
    """Class 0 iff x_0 > 0.5: removing (zeroing) feature 0 is the only thing that flips it."""

    def forward(self, x):
        z = x.flatten(1)[:, :1] - 0.5
        return torch.cat([z, torch.zeros_like(z)], dim=1)


# ---- COMP / SUFF on a linear model ------------------------------------------------------------

# class-0 logit = x . 1 (contributions = x), class-1 logit = 0; contributions 1, 4, 2, 3
X = torch.tensor([[1.0, 4.0, 2.0, 3.0]], dtype=D)
W = [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]


def test_comp_and_suff_hand_values_logit_and_prob():
    model, contrib = linear(W), X.clone()
    # top-k removed -> logit drops by 4, 7, 9, 10; top-k kept -> logit misses 6, 3, 1, 0
    torch.testing.assert_close(COMP(K="all", score="logit")(model, X, contrib), torch.tensor([7.5], dtype=D))
    torch.testing.assert_close(SUFF(K="all", score="logit")(model, X, contrib), torch.tensor([2.5], dtype=D))
    p = torch.sigmoid  # P(class 0) = sigmoid(logit_0 - 0)
    comp = sum(abs(p(torch.tensor(10.0)) - p(torch.tensor(10.0 - d))) for d in (4, 7, 9, 10)) / 4
    suff = sum(abs(p(torch.tensor(10.0)) - p(torch.tensor(10.0 - d))) for d in (6, 3, 1, 0)) / 4
    torch.testing.assert_close(COMP()(model, X, contrib), comp.to(D).view(1))
    torch.testing.assert_close(SUFF()(model, X, contrib), suff.to(D).view(1))
    # explicit K and target: class 1's logit is 0 whatever is removed
    torch.testing.assert_close(COMP(K=[2], score="logit")(model, X, contrib), torch.tensor([7.0], dtype=D))
    torch.testing.assert_close(COMP(score="logit")(model, X, contrib, target=1), torch.zeros(1, dtype=D))


def test_baseline_tensor_replaces_removed_features():
    model, contrib = linear(W), X.clone()
    baseline = torch.tensor([1.0, 1.0, 1.0, 1.0], dtype=D)  # removing feature i costs x_i - 1
    got = COMP(K=[1, 2], score="logit", baseline=baseline)(model, X, contrib)
    torch.testing.assert_close(got, torch.tensor([(3 + 5) / 2], dtype=D))
    got = COMP(K=[1], score="logit", baseline=0.5)(model, X, contrib)
    torch.testing.assert_close(got, torch.tensor([3.5], dtype=D))


def test_exact_ranking_is_at_least_as_comprehensive_as_reversed():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 12, generator=g, dtype=D) + 0.1
    w0 = torch.rand(12, generator=g, dtype=D) + 0.1
    model = linear(torch.stack([w0, torch.zeros(12, dtype=D)]))
    contrib = x * w0  # exact contributions to class 0, all positive
    for score in ("prob", "logit"):
        for K in ("all", "percent", [3]):
            good = COMP(K=K, score=score)(model, x, contrib)
            bad = COMP(K=K, score=score)(model, x, -contrib)
            assert bool((good >= bad - 1e-12).all())
            assert bool((good > bad).any())
            # and SUFF the other way round
            assert bool((SUFF(K=K, score=score)(model, x, contrib)
                         <= SUFF(K=K, score=score)(model, x, -contrib) + 1e-12).all())


def test_suff_keeping_everything_is_zero_and_comp_removing_everything_is_baseline_gap():
    g = torch.Generator().manual_seed(1)
    x, a = torch.randn(5, 7, generator=g, dtype=D), torch.randn(5, 7, generator=g, dtype=D)
    model = nn.Sequential(nn.Linear(7, 6), nn.Tanh(), nn.Linear(6, 3)).to(D)
    torch.testing.assert_close(SUFF(K=[7])(model, x, a), torch.zeros(5, dtype=D))
    with torch.no_grad():
        logits = model(x)
        c = logits.argmax(1)
        p = torch.softmax(logits, 1).gather(1, c[:, None])[:, 0]
        p0 = torch.softmax(model(torch.zeros_like(x)), 1)[:, c].diagonal()
    torch.testing.assert_close(COMP(K=[7])(model, x, a), (p - p0).abs())


def test_chunking_and_backend_do_not_change_results(backend):
    g = torch.Generator().manual_seed(2)
    x, a = torch.randn(5, 10, generator=g, dtype=D), torch.randn(5, 10, generator=g, dtype=D)
    model = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 4)).to(D)
    for cls in (COMP, SUFF):
        ref = cls(K="all")(model, x, a)
        for bs in (1, 3, 7, 64):
            torch.testing.assert_close(cls(K="all", batch_size=bs, backend=backend)(model, x, a), ref)
    ref = DFFOT().evaluate(model, x, a)
    for bs in (1, 3, 7, 64):
        got = DFFOT(batch_size=bs, backend=backend).evaluate(model, x, a)
        torch.testing.assert_close(got.fraction, ref.fraction)
        assert torch.equal(got.flipped, ref.flipped)


# ---- DFFOT ------------------------------------------------------------------------------------

def test_dffot_feature0_model():
    n = 6
    x = torch.ones(3, n, dtype=D)
    first = torch.tensor([[6.0, 5, 4, 3, 2, 1]], dtype=D).expand(3, n)
    res = DFFOT().evaluate(Feature0(), x, first)
    torch.testing.assert_close(res.fraction, torch.full((3,), 1 / n, dtype=D))
    assert bool(res.flipped.all())
    # feature 0 ranked last (ties broken by the lower index put it first, so break them explicitly)
    res = DFFOT().evaluate(Feature0(), x, first.flip(1))
    torch.testing.assert_close(res.fraction, torch.ones(3, dtype=D))
    assert bool(res.flipped.all())
    # all-equal attributions: ties -> lower index first -> feature 0 first
    torch.testing.assert_close(DFFOT()(Feature0(), x, torch.zeros(3, n, dtype=D)),
                               torch.full((3,), 1 / n, dtype=D))
    # feature 0 third
    a = torch.tensor([[1.0, 3, 2, 0, 0, 0]], dtype=D)
    torch.testing.assert_close(DFFOT()(Feature0(), x[:1], a), torch.tensor([3 / n], dtype=D))


def test_dffot_never_flips_gives_one_and_flag_false():
    model = linear([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], bias=[1.0, 0.0])
    res = DFFOT().evaluate(model, torch.randn(4, 3, dtype=D), torch.randn(4, 3, dtype=D))
    torch.testing.assert_close(res.fraction, torch.ones(4, dtype=D))
    assert not bool(res.flipped.any())


def test_dffot_grid_for_many_features_and_explicit_fractions():
    assert dffot_grid(5) == [1, 2, 3, 4, 5]
    assert dffot_grid(300) == [3 * j for j in range(1, 101)]
    assert dffot_grid(10, [0.05, 0.5, 1.0, 0.5]) == [1, 5, 10]
    n = 300
    x = torch.ones(2, n, dtype=D)
    a = -torch.arange(n, dtype=D).expand(2, n).clone()
    a[:, 0] = a[:, 10]  # tie with feature 10, broken towards the lower index: feature 0 is 11th
    a[0, 0] -= 0.5  # sample 0: feature 0 is 12th
    # the grid is 3, 6, 9, 12, ...: both flip at m = 12
    torch.testing.assert_close(DFFOT()(Feature0(), x, a), torch.full((2,), 12 / n, dtype=D))
    got = DFFOT(fractions=[0.01, 0.5])(Feature0(), x, a)  # m = 3, 150
    torch.testing.assert_close(got, torch.full((2,), 0.5, dtype=D))


# ---- images -------------------------------------------------------------------------------------

def test_image_per_pixel_maps_remove_all_channels():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(3, 2, 4, 4, generator=g, dtype=D) + 0.5
    model = nn.Sequential(nn.Flatten(), nn.Linear(32, 3)).to(D)
    pixel = torch.rand(3, 4, 4, generator=g, dtype=D)
    # by hand: zero the top pixel (both channels)
    top = pixel.flatten(1).argmax(1)
    x_rm = x.clone().flatten(2)
    x_rm[torch.arange(3), :, top] = 0.0
    with torch.no_grad():
        lo, lr = model(x), model(x_rm.view_as(x))
    c = lo.argmax(1)
    want = (lo.gather(1, c[:, None]) - lr.gather(1, c[:, None]))[:, 0].abs()
    metric = COMP(K=[1], score="logit")
    torch.testing.assert_close(metric(model, x, pixel), want)
    torch.testing.assert_close(metric(model, x, pixel.flatten(1)), want)  # flattened per position
    full = pixel.unsqueeze(1).expand_as(x).contiguous()  # same shape as x: entries, ties -> channel 0
    torch.testing.assert_close(metric(model, x, full.flatten(1)), metric(model, x, full))
    # K="auto" on images is the percent grid: n = 16 -> k in {1, 2, 3, 8}
    assert removal_ks("auto", 16, tabular=False) == [1, 2, 3, 8]
    manual = torch.stack([COMP(K=[k])(model, x, pixel) for k in (1, 2, 3, 8)]).mean(0)
    torch.testing.assert_close(COMP()(model, x, pixel), manual)
    assert DFFOT()(model, x, pixel).shape == (3,)
    torch.testing.assert_close(SUFF(K=[16])(model, x, pixel), torch.zeros(3, dtype=D))


# ---- sensitivity --------------------------------------------------------------------------------

class PairHeads(nn.Module):
    """Three classifications, each the sign of one input coordinate."""

    def forward(self, x):
        return tuple(torch.stack([-x[:, i], x[:, i]], dim=1) for i in range(3))


def test_sensitivity_single_and_pair_models():
    x = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], dtype=D)
    x_adv = torch.tensor([[2.0, 0.5, 3.0], [1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]], dtype=D)
    metric = Sensitivity()
    assert metric(PairHeads(), x, x_adv).tolist() == [False, True, True]
    assert metric.share(PairHeads(), x, x_adv) == pytest.approx(2 / 3)
    assert Sensitivity(batch_size=1)(PairHeads(), x, x_adv).tolist() == [False, True, True]
    first_only = linear([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    assert metric(first_only, x, x_adv).tolist() == [False, False, True]
    one_logit = lambda t: t[:, :1]  # noqa: E731  class 1 iff x_0 > 0
    assert metric(one_logit, x, x_adv).tolist() == [False, False, True]
    assert metric(lambda t: [t[:, :2]], x, x_adv).dtype == torch.bool


def test_model_mode_and_parameters_are_restored():
    model = nn.Sequential(nn.Linear(5, 8), nn.Dropout(0.5), nn.Linear(8, 2)).to(D)
    model.train()
    model[1].eval()  # a submodule in its own mode
    before = [p.clone() for p in model.parameters()]
    x, a = torch.randn(4, 5, dtype=D), torch.randn(4, 5, dtype=D)
    r1 = COMP()(model, x, a)
    torch.testing.assert_close(COMP()(model, x, a), r1)  # deterministic: dropout was off
    Sensitivity()(model, x, x + 0.1)
    DFFOT()(model, x, a)
    assert model.training and model[0].training and not model[1].training
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    assert all(p.grad is None for p in model.parameters())


# ---- bad inputs ---------------------------------------------------------------------------------

def test_bad_inputs_name_the_argument():
    model = linear(W)
    x, a = X.expand(2, 4).clone(), X.expand(2, 4).clone()
    with pytest.raises(ValueError, match="attributions must have the shape of x"):
        COMP()(model, x, a[:, :3])
    with pytest.raises(ValueError, match="attributions must be a batch of 2"):
        COMP()(model, x, a[:1])
    with pytest.raises(ValueError, match="attributions contains NaN"):
        COMP()(model, x, a.clone().fill_(math.nan))
    with pytest.raises(TypeError, match="attributions must be float32 or float64"):
        SUFF()(model, x, a.long())
    with pytest.raises(ValueError, match="x contains NaN"):
        DFFOT()(model, x.clone().fill_(math.nan), a)
    with pytest.raises(ValueError, match="x must be a non-empty batch"):
        DFFOT()(model, x[:0], a[:0])
    with pytest.raises(ValueError, match=r"K must lie in 1\.\.n_features"):
        COMP(K=[2, 5])(model, x, a)
    with pytest.raises(ValueError, match="K must hold feature counts >= 1"):
        COMP(K=[0])
    with pytest.raises(ValueError, match="K must be one of"):
        SUFF(K="some")
    with pytest.raises(TypeError, match="K must hold ints"):
        SUFF(K=[1.5])
    with pytest.raises(ValueError, match="score must be one of"):
        COMP(score="margin")
    with pytest.raises(ValueError, match="fractions must lie in"):
        DFFOT(fractions=[0.0])
    with pytest.raises(ValueError, match="target must lie in"):
        COMP()(model, x, a, target=2)
    with pytest.raises(ValueError, match="target must have shape"):
        COMP()(model, x, a, target=torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="baseline must broadcast"):
        COMP(baseline=torch.zeros(3, dtype=D))(model, x, a)
    with pytest.raises(TypeError, match="baseline must be a number"):
        COMP(baseline="zero")
    with pytest.raises(ValueError, match="batch_size must be positive"):
        DFFOT(batch_size=0)
    with pytest.raises(TypeError, match="model output must be a floating-point"):
        COMP()(PairHeads(), torch.ones(2, 3, dtype=D), torch.ones(2, 3, dtype=D))
    with pytest.raises(ValueError, match="x_adv must have the shape of x"):
        Sensitivity()(model, x, x[:, :3])
    with pytest.raises(TypeError, match="model must be callable"):
        Sensitivity()(None, x, x)
    img = torch.rand(2, 3, 4, 4, dtype=D)
    with pytest.raises(ValueError, match=r"or \(2, 4, 4\) \(per position\)"):
        COMP()(lambda t: t.flatten(1)[:, :2], img, torch.rand(2, 3, 4, dtype=D))
