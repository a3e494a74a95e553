"""What every attack call promises, as torchattacks does: the model in eval mode for the whole call
and every submodule's own mode restored after (also on an exception), no buffer changed, labels of
any integer kind, and any differentiable attribution as the explainer."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from python_tests.conftest import NO_GPU
from r2et_fast.attacks import ATTACKS, ERAttack
from r2et_fast.explain import Saliency

FAST = dict(k=2, eps=0.3, alpha=0.05, steps=3, norm="linf")


def small_kwargs(name):
    return {**FAST, "restarts": 2} if name == "pgd" else dict(FAST)


@pytest.fixture
def bn_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.Softplus(beta=3), nn.Dropout(0.3),
                          nn.Linear(16, 3)).double()
    with torch.no_grad():  # running statistics away from their (0, 1) start
        model(2 * torch.randn(64, 6, dtype=torch.float64) + 1)
    model.train()
    model[3].eval()  # a submodule set to eval by hand must stay so
    return model


@pytest.fixture(scope="module")
def smooth():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 16), nn.Softplus(beta=3), nn.Linear(16, 3)).double()
    x = torch.rand(8, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    return model, x, model(x).argmax(1)


def flags(model):
    return [m.training for m in model.modules()]


def buffers(model):
    return {name: b.clone() for name, b in model.named_buffers()}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_eval_mode_for_the_call_buffers_untouched_mode_restored(bn_model, name):
    x = torch.randn(8, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    y = torch.zeros(8, dtype=torch.int64)
    before_flags, before_buffers = flags(bn_model), buffers(bn_model)
    result = ATTACKS[name](bn_model, **small_kwargs(name))(x, y)
    assert flags(bn_model) == before_flags
    after = buffers(bn_model)
    assert set(after) == set(before_buffers)
    for key, value in before_buffers.items():
        assert torch.equal(after[key], value), key  # bit-identical, num_batches_tracked included
    # the whole call ran in eval mode: it is the attack of the same model put in eval mode
    frozen = copy.deepcopy(bn_model).eval()
    twin = ATTACKS[name](frozen, **small_kwargs(name))(x, y)
    assert torch.equal(result.x_adv, twin.x_adv)
    assert torch.equal(result.adv_maps, twin.adv_maps)


def test_every_explanation_sees_eval_mode_and_modes_come_back_on_error(bn_model):
    seen, calls = [], []
    saliency = Saliency(bn_model, score="loss")

    def explainer(x, t):
        seen.append(flags(bn_model))
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return saliency.attribute(x, target=t, create_graph=True)

    before = flags(bn_model)
    x = torch.randn(4, 6, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="boom"):
        ERAttack(bn_model, explainer=explainer, **FAST)(x, torch.zeros(4, dtype=torch.int64))
    assert len(seen) == 3 and all(not any(f) for f in seen)
    assert flags(bn_model) == before


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.int8, torch.uint8])
def test_any_integer_dtype_is_a_label(smooth, dtype):
    model, x, y = smooth
    want = ERAttack(model, **FAST)(x, y)
    got = ERAttack(model, **FAST)(x, y.to(dtype))
    assert torch.equal(got.x_adv, want.x_adv)


def test_python_ints_lists_tuples_and_0d(smooth):
    model, x, _ = smooth
    attack = ERAttack(model, **FAST)
    want = attack(x, torch.full((8,), 1, dtype=torch.int64))
    for y in (1, [1] * 8, (1,) * 8, torch.tensor(1, dtype=torch.int32)):
        assert torch.equal(attack(x, y).x_adv, want.x_adv), y
    mixed = [0, 1, 2, 0, 1, 2, 0, 1]
    assert torch.equal(attack(x, mixed).x_adv, attack(x, torch.tensor(mixed)).x_adv)


@pytest.mark.parametrize("y,exc,match", [
    (torch.ones(8, dtype=torch.bool), TypeError, "y must be an integer tensor"),
    (torch.ones(8, dtype=torch.float64), TypeError, "y must be an integer tensor"),
    (True, TypeError, "y must be an integer tensor, a Python int"),
    (1.0, TypeError, "y must be an integer tensor, a Python int"),
    ("1", TypeError, "y must be an integer tensor, a Python int"),
    ([1] * 7 + [True], TypeError, "y must hold Python ints only, got bool"),
    ([1.0] * 8, TypeError, "y must hold Python ints only, got float"),
    ([1] * 7, ValueError, r"y must hold one label per sample of x \(8\), got 7"),
    (torch.ones(7, dtype=torch.int64), ValueError, r"y must have shape \(8,\)"),
    (torch.ones(8, 1, dtype=torch.int64), ValueError, r"y must have shape \(8,\)"),
    (torch.ones(8, dtype=torch.int64, device="meta"), ValueError, "y must be on the device of x"),
    (-1, ValueError, "y must hold non-negative class labels"),
    ([0] * 7 + [3], ValueError, r"y must lie in \[0, 3\)"),
])
def test_bad_labels_name_y(smooth, y, exc, match):
    model, x, _ = smooth
    for name in ("erattack", "erattack_mo"):
        with pytest.raises(exc, match=match):
            ATTACKS[name](model, **FAST)(x, y)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_a_plain_callable_explains_like_the_explainer(smooth, name):
    model, x, y = smooth
    saliency = Saliency(model, score="loss")
    kw = small_kwargs(name)
    want = ATTACKS[name](model, explainer=saliency, **kw)(x, y)
    got = ATTACKS[name](model, explainer=lambda z, t: saliency.attribute(z, target=t, create_graph=True),
                        **kw)(x, y)
    torch.testing.assert_close(got.x_adv, want.x_adv, rtol=0, atol=1e-12)
    torch.testing.assert_close(got.precision_at_k, want.precision_at_k, rtol=0, atol=0)
    assert not torch.equal(want.x_adv, x)  # the attack moved, so the comparison says something


def test_bad_explainers_are_named(smooth):
    model, x, y = smooth
    with pytest.raises(TypeError, match="explainer must be an Explainer"):
        ERAttack(model, explainer=3)
    detached = Saliency(model, score="loss")
    with pytest.raises(ValueError, match="explainer returned maps that do not depend on x"):
        ERAttack(model, explainer=lambda z, t: detached.attribute(z, target=t), **FAST)(x, y)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
def test_labels_and_modes_on_the_gpu(smooth, bn_model):
    model, x, y = smooth
    want = ERAttack(model, **FAST)(x, y)
    gpu = copy.deepcopy(model).cuda()
    got = ERAttack(gpu, **FAST)(x.cuda(), y.to(torch.int32).cuda())
    torch.testing.assert_close(got.x_adv.cpu(), want.x_adv, rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="y must be on the device of x"):
        ERAttack(gpu, **FAST)(x.cuda(), y)
    bn_gpu = bn_model.cuda()
    before_flags, before_buffers = flags(bn_gpu), buffers(bn_gpu)
    ERAttack(bn_gpu, **FAST)(torch.randn(8, 6, dtype=torch.float64, device="cuda"), 0)
    assert flags(bn_gpu) == before_flags
    assert all(torch.equal(b, before_buffers[n]) for n, b in bn_gpu.named_buffers())
