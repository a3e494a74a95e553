"""The fused MLP saliency (``ops.fused.fused_mlp_saliency``) and the fast path of detached
explanations it serves (``engine._fused_saliency``): the same maps as autograd on random MLPs,
native against twin, and the fast path declining wherever it does not apply."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import r2et_fast
from python_tests.engine.fused_cases import examples, mlp_cases
from r2et_fast.engine import fused_saliency
from r2et_fast.engine._fused_saliency import fused_input_saliency
from r2et_fast.engine._mlp_spec import recognize_mlp
from r2et_fast.explain import GradientXInput, Saliency, _score
from r2et_fast.ops.fused import fused_mlp_saliency
from r2et_fast.thickness import topk_thickness

hypothesis = pytest.importorskip("hypothesis")
st, given, settings = hypothesis.strategies, hypothesis.given, hypothesis.settings
BACKENDS = ("native", "reference") if r2et_fast.native_available() else ("reference",)


def _net_args(model: nn.Module, x: torch.Tensor):
    spec = recognize_mlp(model)
    assert not isinstance(spec, str)
    biases = [lin.bias.detach() if lin.bias is not None else x.new_empty((0,)) for lin in spec.linears]
    return [lin.weight.detach() for lin in spec.linears], biases, list(spec.kinds), list(spec.params)


def _autograd_map(model, x, target, score):
    """ds/dx by autograd with the fast path switched off."""
    z = x.detach().clone().requires_grad_(True)
    out = model(z)
    if target is None:
        target = _score.predicted_class(out)
    (grad,) = torch.autograd.grad(_score.select_score(out, target, score).sum(), z)
    return out.detach(), grad, target


@settings(max_examples=examples(60), deadline=None)
@given(net=mlp_cases(), score=st.sampled_from(["logit", "prob", "loss"]), predict=st.booleans(),
       backend=st.sampled_from(BACKENDS))
def test_matches_autograd_float64(net, score, predict, backend):
    model, x, y = net
    target = None if predict else y
    logits, grad, explained = fused_mlp_saliency(x.flatten(1), target, *_net_args(model, x), score,
                                                 backend=backend)
    out, want, want_target = _autograd_map(model, x, target, score)
    torch.testing.assert_close(logits, out.flatten(1), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad.view_as(want), want, rtol=1e-9, atol=1e-12)
    assert torch.equal(explained, want_target)


@settings(max_examples=examples(30), deadline=None)
@given(net=mlp_cases(dtype=torch.float32, max_width=64), score=st.sampled_from(["logit", "loss"]))
def test_native_matches_twin_float32(net, score):
    model, x, y = net
    args = (x.flatten(1), y, *_net_args(model, x), score)
    results = [fused_mlp_saliency(*args, backend=b) for b in BACKENDS]
    for got in results[1:]:
        torch.testing.assert_close(got[1], results[0][1], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(got[0], results[0][0], rtol=1e-4, atol=1e-5)


def _mlp(act: nn.Module, classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 9), act, nn.Linear(9, classes)).double()


@pytest.mark.parametrize("act", [nn.ReLU(), nn.Softplus(beta=2.0), nn.Tanh(), nn.LeakyReLU(0.2)])
@pytest.mark.parametrize("explainer", [Saliency, GradientXInput])
def test_explainers_take_the_fast_path_with_the_same_maps(monkeypatch, act, explainer):
    model = _mlp(act)
    x = torch.randn(11, 6, dtype=torch.float64)
    calls = []
    real = _score._FAST_GRADIENTS[:]
    monkeypatch.setattr(_score, "_FAST_GRADIENTS", [lambda *a: calls.append(1) or real[0](*a)])
    fast = explainer(model, score="loss").attribute(x)
    assert calls, "the detached explanation did not ask the fast path"
    monkeypatch.setattr(_score, "_FAST_GRADIENTS", [])
    slow = explainer(model, score="loss").attribute(x)
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)
    # with a graph (training, and the attacks unless they opt in) the maps never come from it
    calls.clear()
    monkeypatch.setattr(_score, "_FAST_GRADIENTS", [lambda *a: calls.append(1) or real[0](*a)])
    explainer(model).attribute(x.clone().requires_grad_(True), create_graph=True)
    assert not calls
    assert _score._FAST_INPUT_GRADIENTS == []  # the attacks' path is opt-in


def test_thickness_is_unchanged_by_the_fast_path(monkeypatch):
    model = _mlp(nn.Softplus(beta=3.0))
    x = torch.randn(5, 6, dtype=torch.float64)
    kwargs = dict(eps=0.3, n_samples=3, n_path=4, seed=1)
    fast = topk_thickness(Saliency(model), x, 2, **kwargs)
    monkeypatch.setattr(_score, "_FAST_GRADIENTS", [])
    slow = topk_thickness(Saliency(model), x, 2, **kwargs)
    torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-12)


def test_the_fast_path_declines_what_it_cannot_run():
    x = torch.randn(4, 6, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 0])
    assert fused_saliency(_mlp(nn.ReLU()), x, target, "logit") is not None
    hooked = _mlp(nn.ReLU())
    hooked[0].register_forward_hook(lambda m, a, out: out * 2)
    dropout = nn.Sequential(nn.Linear(6, 9), nn.Dropout(0.5), nn.Linear(9, 3)).double().train()
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3)).double()
    assert fused_saliency(hooked, x, target, "logit") is None
    assert fused_saliency(dropout, x, target, "logit") is None
    assert fused_saliency(cnn, torch.randn(4, 1, 4, 4, dtype=torch.float64), target, "logit") is None
    assert fused_saliency(_mlp(nn.ReLU()), x, target.int(), "logit") is None  # the slow path checks it
    assert fused_saliency(_mlp(nn.ReLU()), x.float(), target, "logit") is None  # dtype mismatch
    assert fused_saliency(lambda z: z, x, target, "logit") is None  # not a module
    # the hooked model's maps are the hook's: autograd computes them
    torch.testing.assert_close(Saliency(hooked, abs=False).attribute(x, target=target),
                               2 * Saliency(_mlp(nn.ReLU()), abs=False).attribute(x, target=target))


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_names_the_argument(backend):
    model = _mlp(nn.ReLU())
    x = torch.randn(3, 6, dtype=torch.float64)
    args = _net_args(model, x)
    with pytest.raises(ValueError, match="x contains NaN"):
        fused_mlp_saliency(x * float("nan"), None, *args, backend=backend)
    with pytest.raises(ValueError, match=r"target must lie in \[0, 3\)"):
        fused_mlp_saliency(x, torch.tensor([0, 3, 1]), *args, backend=backend)
    with pytest.raises(ValueError, match="target must be an int64 tensor"):
        fused_mlp_saliency(x, torch.tensor([0, 1, 1], dtype=torch.int32), *args, backend=backend)
    with pytest.raises(ValueError, match="score must be one of"):
        fused_mlp_saliency(x, None, *args, "margin", backend=backend)
    with pytest.raises(ValueError, match="weights"):
        fused_mlp_saliency(x[:, :5], None, *args, backend=backend)
    # through an explainer, the messages are the explainers' own
    with pytest.raises(ValueError, match="NaN"):
        Saliency(model).attribute(x * float("nan"))


# ---- the attacks' differentiable path: d <grad, g> / dx by the op's adjoint -------------------------

@pytest.mark.parametrize("act", [nn.ReLU(), nn.Softplus(beta=2.0), nn.Tanh(), nn.LeakyReLU(0.2)])
@pytest.mark.parametrize("score", ["logit", "prob", "loss"])
def test_input_gradient_of_a_map_objective_is_double_backprops(monkeypatch, act, score):
    model = nn.Sequential(nn.Linear(6, 9), act, nn.Linear(9, 7), nn.Tanh(), nn.Linear(7, 3)).double()
    x = torch.randn(11, 6, dtype=torch.float64)
    weight = torch.randn(11, 6, dtype=torch.float64)

    def objective_grad():
        z = x.clone().requires_grad_(True)
        with _score.input_gradients_only():
            maps = GradientXInput(model, score=score, abs=True).attribute(z, create_graph=True)
        return torch.autograd.grad((maps * weight).sum(), z)[0]

    calls = []
    monkeypatch.setattr(_score, "_FAST_INPUT_GRADIENTS",
                        [lambda *a: calls.append(1) or fused_input_saliency(*a)])
    fast = objective_grad()
    assert calls
    monkeypatch.setattr(_score, "_FAST_INPUT_GRADIENTS", [])
    torch.testing.assert_close(fast, objective_grad(), rtol=1e-9, atol=1e-12)


def test_outside_the_attacks_a_graph_reaches_the_parameters():
    model = _mlp(nn.Softplus())
    z = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    maps = Saliency(model).attribute(z, create_graph=True)
    weights = [model[0].weight, model[0].bias, model[2].weight]  # the output bias does not move g
    grads = torch.autograd.grad(maps.sum(), weights)
    assert all(bool(g.abs().sum() > 0) for g in grads)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_er_attack_iterates_are_the_generic_loops(monkeypatch, norm):
    from r2et_fast.attacks import ERAttack

    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(10, 16), nn.Softplus(beta=2.0), nn.Linear(16, 2)).double()
    x = torch.randn(24, 10, dtype=torch.float64)
    y = model(x).argmax(1)
    kw = dict(k=3, eps=0.4, alpha=0.05, steps=20, norm=norm, step_norm="l2", random_start=True)
    monkeypatch.setattr(_score, "_FAST_INPUT_GRADIENTS", [fused_input_saliency])  # opt in
    fast = ERAttack(model, **kw)(x, y)
    monkeypatch.setattr(_score, "_FAST_GRADIENTS", [])
    monkeypatch.setattr(_score, "_FAST_INPUT_GRADIENTS", [])
    slow = ERAttack(model, **kw)(x, y)
    torch.testing.assert_close(fast.x_adv, slow.x_adv, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(fast.precision_at_k, slow.precision_at_k, rtol=0, atol=0)


def test_autograd_gradients_switches_every_fast_path_off(monkeypatch):
    model, x = _mlp(nn.ReLU()), torch.randn(4, 6, dtype=torch.float64)
    calls = []
    monkeypatch.setattr(_score, "_FAST_GRADIENTS", [lambda *a: calls.append(1)])
    monkeypatch.setattr(_score, "_FAST_INPUT_GRADIENTS", [lambda *a: calls.append(2)])
    with _score.autograd_gradients():
        Saliency(model).attribute(x)
        with _score.input_gradients_only():
            Saliency(model).attribute(x.clone().requires_grad_(True), create_graph=True)
    assert calls == []
    Saliency(model).attribute(x)
    assert calls == [1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_vjp_bad_input_names_the_argument(backend):
    from r2et_fast.ops.fused import fused_mlp_saliency_vjp

    model = _mlp(nn.ReLU())
    x = torch.randn(3, 6, dtype=torch.float64)
    target, grad = torch.tensor([0, 2, 1]), torch.randn(3, 6, dtype=torch.float64)
    args = _net_args(model, x)
    fused_mlp_saliency_vjp(x, target, grad, *args, backend=backend)  # the unchanged arguments run
    with pytest.raises(ValueError, match="x contains NaN"):
        fused_mlp_saliency_vjp(x * float("nan"), target, grad, *args, backend=backend)
    with pytest.raises(ValueError, match="grad contains NaN"):
        fused_mlp_saliency_vjp(x, target, grad * float("inf"), *args, backend=backend)
    with pytest.raises(ValueError, match=r"target must lie in \[0, 3\)"):
        fused_mlp_saliency_vjp(x, torch.tensor([0, 3, 1]), grad, *args, backend=backend)
    with pytest.raises(ValueError, match="target must be an int64 tensor"):
        fused_mlp_saliency_vjp(x, target.float(), grad, *args, backend=backend)
    with pytest.raises(ValueError, match="grad must have the shape, dtype and device of x"):
        fused_mlp_saliency_vjp(x, target, grad[:, :5], *args, backend=backend)
    with pytest.raises(ValueError, match="grad must have the shape, dtype and device of x"):
        fused_mlp_saliency_vjp(x, target, grad.float(), *args, backend=backend)
