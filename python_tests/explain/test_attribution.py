"""as_attribution / rebind / attribution_model: the three kinds of attribution in one signature."""

from __future__ import annotations

import pytest
import torch

from r2et_fast.explain import Saliency
from r2et_fast.explain._attribution import as_attribution, attribution_model, rebind

TARGET = torch.tensor([0, 2, 1, 1, 0])


def _hand_saliency(model):
    """A plain f(x, target) that needs autograd itself (as a user's saliency would)."""
    def fn(x, target):
        z = x if x.requires_grad else x.detach().requires_grad_(True)
        score = model(z).gather(1, target.view(-1, 1)).sum()
        return torch.autograd.grad(score, z, create_graph=True)[0]
    return fn


def test_a_plain_callable_may_use_autograd_without_create_graph(mlp, x):
    fn = as_attribution(_hand_saliency(mlp), "explainer")
    want = Saliency(mlp, abs=False).attribute(x, TARGET)
    with torch.no_grad():  # a caller's no_grad does not reach the callable
        got = fn(x, TARGET, False)
    assert not got.requires_grad
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    xr = x.clone().requires_grad_(True)
    assert fn(xr, TARGET, True).requires_grad


def test_explainer_and_callable_agree_and_are_checked(mlp, x):
    explainer = as_attribution(Saliency(mlp, abs=False), "explainer")
    plain = as_attribution(_hand_saliency(mlp), "explainer")
    xr = x.clone().requires_grad_(True)
    torch.testing.assert_close(explainer(xr, TARGET, True), plain(xr, TARGET, True))
    with pytest.raises(TypeError, match="explainer must return a torch.Tensor"):
        as_attribution(lambda z, t: 1.0, "explainer")(x, TARGET, False)
    with pytest.raises(ValueError, match="one map per input row"):
        as_attribution(lambda z, t: z[:2], "explainer")(x, TARGET, False)
    with pytest.raises(TypeError, match="attack_explainer must be an Explainer, a from_captum adapter"):
        as_attribution(3, "attack_explainer")


def test_rebind_and_model(mlp, make_mlp, x):
    other = make_mlp(4, 6, 3, seed=7)
    explainer = Saliency(mlp)
    moved = rebind(explainer, other, "explainer")
    assert attribution_model(moved) is other and attribution_model(explainer) is mlp
    torch.testing.assert_close(moved.attribute(x, TARGET), Saliency(other).attribute(x, TARGET))
    assert attribution_model(_hand_saliency(mlp)) is None
    with pytest.raises(TypeError, match="explainer is a plain callable"):
        rebind(_hand_saliency(mlp), other, "explainer")
