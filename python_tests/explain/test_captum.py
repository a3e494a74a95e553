"""from_captum: Captum's gradient methods as second-order attributions, equal to r2et_fast's own
explainers (maps and the input gradient of a scalar of the maps), and clear refusals."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

captum_attr = pytest.importorskip("captum.attr")

from r2et_fast.explain import (  # noqa: E402 - after the importorskip
    CAPTUM_SUPPORTED,
    CaptumAttribution,
    GradientXInput,
    IntegratedGradients,
    Saliency,
    from_captum,
)
from r2et_fast.explain._attribution import as_attribution, attribution_model, rebind  # noqa: E402

F64 = torch.float64
TARGET = torch.tensor([0, 2, 1, 1, 0])

# (Captum method class, attribute kwargs, our explainer class, its kwargs): the same map. IG: Captum
# rounds its quadrature weights to float32, so riemann_right with n_steps = 8 (weights 1/8, nodes
# k/8, exact in both) is where the two must agree to rounding.
PAIRS = {
    "saliency-abs": (captum_attr.Saliency, {}, Saliency, {}),
    "saliency-signed": (captum_attr.Saliency, {"abs": False}, Saliency, {"abs": False}),
    "inputxgradient": (captum_attr.InputXGradient, {}, GradientXInput, {}),
    "ig-scalar-baseline": (captum_attr.IntegratedGradients,
                           {"n_steps": 8, "method": "riemann_right", "baselines": 0.3},
                           IntegratedGradients, {"n_steps": 8, "method": "riemann_right", "baseline": 0.3}),
    "ig-row-baseline": (captum_attr.IntegratedGradients,
                        {"n_steps": 8, "method": "riemann_middle",
                         "baselines": torch.tensor([[0.1, -0.2, 0.3, 0.0]], dtype=F64)},
                        IntegratedGradients, {"n_steps": 8, "method": "riemann_middle",
                                              "baseline": torch.tensor([[0.1, -0.2, 0.3, 0.0]], dtype=F64)}),
}


def _pair(name, model):
    cap_cls, cap_kwargs, ours_cls, ours_kwargs = PAIRS[name]
    return from_captum(cap_cls(model), **cap_kwargs), ours_cls(model, **ours_kwargs)


def _maps_and_grads(explain, x, weights, model):
    """maps(x) and d/dx, d/dparams of sum(maps * weights), through a second-order graph."""
    xr = x.clone().requires_grad_(True)
    maps = explain(xr)
    # (the output bias does not enter an input gradient: its gradient is zero)
    grads = torch.autograd.grad((maps * weights).sum(), [xr, *model.parameters()], materialize_grads=True)
    return maps.detach(), grads


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_maps_and_their_gradients_equal_our_explainers(name, mlp, x, gen):
    adapter, ours = _pair(name, mlp)
    weights = torch.randn(x.shape, generator=gen, dtype=F64)
    got, got_grads = _maps_and_grads(lambda z: adapter(z, TARGET), x, weights, mlp)
    want, want_grads = _maps_and_grads(lambda z: ours.attribute(z, TARGET, create_graph=True), x, weights,
                                       mlp)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    assert float(want_grads[0].abs().max()) > 1e-3  # a second-order term that matters
    for g, w in zip(got_grads, want_grads):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-8)


def test_captum_alone_is_first_order(mlp, x):
    # Why the adapter exists: Captum's own maps carry no graph back to x.
    xr = x.clone().requires_grad_(True)
    maps = captum_attr.Saliency(mlp).attribute(xr, target=TARGET)
    assert not maps.requires_grad
    attack_fn = as_attribution(lambda z, t: captum_attr.Saliency(mlp).attribute(z, target=t), "explainer")
    with pytest.raises(ValueError, match="explainer returned maps that do not depend on x"):
        attack_fn(xr, TARGET, True)
    assert from_captum(captum_attr.Saliency(mlp))(xr, TARGET).requires_grad


def test_through_as_attribution(mlp, x):
    adapter, ours = _pair("ig-scalar-baseline", mlp)
    fn = as_attribution(adapter, "explainer")
    xr = x.clone().requires_grad_(True)
    detached = fn(xr, TARGET, False)
    assert not detached.requires_grad
    torch.testing.assert_close(detached, ours.attribute(x, TARGET), rtol=0, atol=1e-12)
    assert fn(xr, TARGET, True).requires_grad
    assert attribution_model(adapter) is mlp and attribution_model(ours) is mlp
    assert attribution_model(lambda z, t: z) is None


def test_target_none_is_the_prediction_and_ints_broadcast(mlp, x):
    adapter = from_captum(captum_attr.Saliency(mlp), abs=False)
    pred = mlp(x).argmax(dim=1)
    torch.testing.assert_close(adapter.attribute(x), adapter.attribute(x, pred), rtol=0, atol=0)
    torch.testing.assert_close(adapter.attribute(x, 2), adapter.attribute(x, torch.full((5,), 2)),
                               rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"target must lie in \[0, 3\)"):
        adapter(x, 3)


def test_single_output_model_explains_its_one_logit(linear, x):
    def one_logit(z):
        return linear(z)[:, :1]

    adapter = from_captum(captum_attr.Saliency(one_logit), abs=False)
    labels = torch.tensor([0, 1, 1, 0, 1])
    want = Saliency(one_logit, abs=False).attribute(x, labels)
    torch.testing.assert_close(adapter(x, labels).detach(), want, rtol=0, atol=1e-12)
    torch.testing.assert_close(adapter.attribute(x), want, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"target must lie in \[0, 2\) for a model with 1 output"):
        adapter(x, 2)


def test_with_model_keeps_the_method_and_kwargs(mlp, make_mlp, x):
    other = make_mlp(4, 6, 3, seed=5)
    adapter, _ = _pair("ig-scalar-baseline", mlp)
    moved = rebind(adapter, other, "explainer")
    assert isinstance(moved, CaptumAttribution) and type(moved.method) is captum_attr.IntegratedGradients
    assert moved.model is other and adapter.model is mlp
    assert moved.attribute_kwargs == adapter.attribute_kwargs
    _, ours_other = _pair("ig-scalar-baseline", other)
    torch.testing.assert_close(moved.attribute(x, TARGET), ours_other.attribute(x, TARGET), rtol=0,
                               atol=1e-12)
    _, ours = _pair("ig-scalar-baseline", mlp)
    torch.testing.assert_close(adapter.attribute(x, TARGET), ours.attribute(x, TARGET), rtol=0, atol=1e-12)
    with pytest.raises(TypeError, match="model must be callable"):
        adapter.with_model("not a model")


def test_leaves_the_caller_and_captum_method_untouched(mlp, x):
    method = captum_attr.Saliency(mlp)
    original = method.gradient_func
    adapter = from_captum(method)
    adapter(x, TARGET)
    adapter.attribute(x, TARGET)
    assert not x.requires_grad and x.grad is None
    assert method.gradient_func is original
    assert not method.attribute(x.clone().requires_grad_(True), target=TARGET).requires_grad


@pytest.mark.parametrize("build, match", [
    (lambda m: captum_attr.NoiseTunnel(captum_attr.Saliency(m)), "NoiseTunnel: .*SmoothGrad"),
    (lambda m: captum_attr.GradientShap(m), "GradientShap: .*global RNG"),
    (lambda m: captum_attr.DeepLift(m), "DeepLift: .*backward rule"),
    (lambda m: captum_attr.GuidedBackprop(m), "GuidedBackprop: .*ReLU gradients"),
    (lambda m: captum_attr.Occlusion(m), "Occlusion: .*torch.no_grad"),
    (lambda m: captum_attr.FeatureAblation(m), "FeatureAblation: .*no gradient"),
    (lambda m: captum_attr.ShapleyValueSampling(m), "ShapleyValueSampling: .*no gradient"),
    (lambda m: captum_attr.LayerIntegratedGradients(m, m.fc1), "LayerIntegratedGradients: .*hidden layer"),
])
def test_unsupported_methods_are_refused_by_name(mlp, build, match):
    with pytest.raises(TypeError, match=f"cannot adapt {match}"):
        from_captum(build(mlp))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"target": 1}, TypeError, "given per call"),
    ({"inputs": 1}, TypeError, "given per call"),
    ({"n_step": 8}, TypeError, "unexpected keyword argument 'n_step' for IntegratedGradients"),
    ({"internal_batch_size": 4}, ValueError, "internal_batch_size=4: .*detaches"),
    ({"return_convergence_delta": True}, ValueError, "return_convergence_delta"),
    ({"additional_forward_args": (1,)}, ValueError, "additional_forward_args"),
])
def test_bad_attribute_kwargs(mlp, kwargs, error, match):
    with pytest.raises(error, match=match):
        from_captum(captum_attr.IntegratedGradients(mlp), **kwargs)


def test_not_a_captum_method(mlp):
    with pytest.raises(TypeError, match=r"an instance, e.g. Saliency\(model\)"):
        from_captum(captum_attr.Saliency)
    with pytest.raises(TypeError, match="captum_method must be a Captum attribution method"):
        from_captum(Saliency(mlp))
    assert CAPTUM_SUPPORTED == ("Saliency", "InputXGradient", "IntegratedGradients")


def test_missing_captum_is_a_clear_error(monkeypatch, mlp):
    method = captum_attr.Saliency(mlp)
    monkeypatch.setitem(sys.modules, "captum.attr", None)  # import captum.attr now raises
    with pytest.raises(ImportError, match="from_captum needs Captum: pip install captum"):
        from_captum(method)


def test_importing_r2et_fast_does_not_import_captum():
    code = "import sys, r2et_fast, r2et_fast.explain, r2et_fast.thickness; print('captum' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"OMP_NUM_THREADS": "1", "PATH": ""})
    assert out.stdout.strip() == "False"
