"""The fused MLP objective (r2et_fast.engine._fused_mlp) against the training methods' autograd
path: recognition of MLPs, the loss, its parts and every parameter's .grad on random
architectures and objectives (Hypothesis; R2ET_FAST_FUZZ_EXAMPLES raises the count), explicit
edge cases, and gradcheck of the Function where the objective is smooth."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import r2et_fast
from python_tests.engine.fused_cases import (
    Case,
    assert_agree,
    assert_agree_float32,
    assert_agree_within_noise,
    close,
    examples,
    hypothesis,
    max_error,
    mlp_cases,
    objective_cases,
    permuted,
    run_autograd,
    run_fused,
    well_posed,
)
from r2et_fast.engine import compute_gradients
from r2et_fast.engine._fused_mlp import FusedMLPObjective, _Plan, fused_objective, mean_pair_count
from r2et_fast.engine._mlp_spec import LEAKY_RELU, LINEAR, RELU, SOFTPLUS, TANH, recognize_mlp
from r2et_fast.models import TabularMLP

NATIVE = r2et_fast.native_available()

st, given, settings, assume = (hypothesis.strategies, hypothesis.given, hypothesis.settings,
                               hypothesis.assume)
HEALTH = [hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.filter_too_much,
          hypothesis.HealthCheck.data_too_large]


def mlp(*widths, act=nn.Softplus, bias=True, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1], bias=bias))
        if i < len(widths) - 2:
            layers.append(act())
    return nn.Sequential(*layers).to(dtype)


def batch(b, n, classes, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, generator=g, dtype=dtype)
    return x, torch.randint(0, 2 if classes == 1 else classes, (b,), generator=g)


# ---- recognition ---------------------------------------------------------------------------------

def test_recognises_nested_sequentials_and_every_activation():
    model = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(4, 3), nn.LeakyReLU(0.2)), nn.Identity(),
                          nn.Linear(3, 3, bias=False), nn.Softplus(beta=2.0, threshold=5.0),
                          nn.Dropout(0.0), nn.Sequential(nn.Sequential(nn.Tanh())), nn.Linear(3, 2),
                          nn.ReLU())
    spec = recognize_mlp(model)
    assert not isinstance(spec, str)
    assert spec.kinds == (LINEAR, LEAKY_RELU, LINEAR, SOFTPLUS, TANH, LINEAR, RELU)
    assert spec.params[2:4] == (0.2, 0.0) and spec.params[6:8] == (2.0, 5.0)
    assert spec.flattens_input and spec.n_outputs == 2 and spec.smooth


def test_recognises_the_package_mlp_and_repeated_modules():
    spec = recognize_mlp(TabularMLP(5, 3, hidden=4, activation="softplus", beta=3.0))
    assert not isinstance(spec, str) and spec.kinds == (LINEAR, SOFTPLUS, LINEAR)
    lin, act = nn.Linear(3, 3), nn.Tanh()
    spec = recognize_mlp(nn.Sequential(lin, act, lin, act))  # the same modules twice: kept twice
    assert not isinstance(spec, str) and spec.kinds == (LINEAR, TANH, LINEAR, TANH)
    assert spec.linears == (lin, lin)


class _Scaled(nn.Linear):
    def forward(self, x):
        return 2 * super().forward(x)


@pytest.mark.parametrize("model, names", [
    (nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2)), ["model[1]", "BatchNorm1d"]),
    (nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.ReLU(), nn.GELU())), ["model[1][1]", "GELU"]),
    (nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5)), ["model[1]", "Dropout", "training"]),
    (nn.Sequential(nn.Flatten(0), nn.Linear(4, 3)), ["model[0]", "Flatten(start_dim=0"]),
    (nn.Sequential(_Scaled(4, 3)), ["model[0]", "_Scaled"]),
    (nn.Sequential(nn.Linear(4, 3), nn.Linear(2, 2)), ["model[1]", "does not take the 3"]),
    (nn.Sequential(nn.ReLU(), nn.Tanh()), ["no Linear"]),
    (nn.Conv1d(1, 1, 3), ["model (Conv1d)"]),
    (lambda x: x, ["not an nn.Module"]),
])
def test_unsupported_models_name_the_layer(model, names):
    reason = recognize_mlp(model)
    assert isinstance(reason, str)
    for name in names:
        assert name in reason
    if isinstance(model, nn.Module):
        x, y = batch(3, 4, 2, dtype=torch.float32)
        with pytest.raises(ValueError, match="fused MLP objective cannot run this model"):
            fused_objective(model, x, y, k=2)


def test_hooks_and_inputs_the_mlp_cannot_take():
    model = mlp(4, 3, 2)
    model[0].register_forward_pre_hook(lambda m, args: None)
    assert "model[0] (Linear)" in recognize_mlp(model)
    x, y = batch(3, 4, 2)
    with pytest.raises(ValueError, match="x has shape"):
        fused_objective(mlp(4, 3, 2), x.view(3, 2, 2), y, k=2)
    with pytest.raises(ValueError, match="first Linear takes 5"):
        fused_objective(mlp(5, 3, 2), x, y, k=2)
    with pytest.raises(ValueError, match="float32 on cpu, but x is torch.float64"):
        fused_objective(mlp(4, 3, 2, dtype=torch.float32), x, y, k=2)
    with pytest.raises(ValueError, match="k must satisfy"):
        fused_objective(mlp(4, 3, 2), x, y, k=4)
    for backend in (("native",) if NATIVE else ()) + ("reference",):  # the kernel says y, the twin target
        with pytest.raises(ValueError, match=r"(y|target) must lie in \[0, 2\)"):
            fused_objective(mlp(4, 3, 2), x, y + 5, k=2, backend=backend)


# ---- against the autograd path --------------------------------------------------------------------

@settings(max_examples=examples(40), deadline=None, suppress_health_check=HEALTH)
@given(data=st.data(), net=mlp_cases())
def test_fused_matches_autograd_float64(data, net):
    """Within 1e-9 (or the reference's own rounding noise, see assert_agree_within_noise), away
    from ties, kinks, a vanishing finite difference and probabilities within 1e-6 of 1 (where
    1 - p keeps fewer than 10 digits, in any path)."""
    model, x, y = net
    case = data.draw(objective_cases(x.shape[1]))
    assume(well_posed(model, x, y, case, 1e-9, hess_rel=1e-4, saturation=1e-6))
    other, back = permuted(model)
    loss, parts, grads = run_autograd(other, x, y, case)
    assert_agree_within_noise(run_fused(model, x, y, case), run_autograd(model, x, y, case),
                              (loss, parts, back(grads)), 1e-9, str(case))


@settings(max_examples=examples(25), deadline=None, suppress_health_check=HEALTH)
@given(data=st.data(), net=mlp_cases(dtype=torch.float32, max_width=64))
def test_fused_matches_autograd_float32(data, net):
    """Within 1e-4 of the float32 autograd path where the objective keeps that many digits: kappa
    >= 0.1, g(x + kappa v) - g(x) at least 1% of g(x) and a linear mean gap at least 1% of
    max |g|, and no probability within 1% of 1 (smaller differences cancel the digits that Ĥ,
    G_k, ds/dz and the adaptive weights need, in both paths alike: see the test below for
    kappa = 1e-3; float64 covers every case)."""
    model, x, y = net
    case = data.draw(objective_cases(x.shape[1], kappas=(0.1, 0.3, 1.0)))
    # the float64 copy is the same function (widening is exact): guard its ranking and patterns
    wide = copy.deepcopy(model).double()
    assume(well_posed(wide, x.double(), y, case, 1e-5, hess_rel=1e-2, gap_rel=1e-2, saturation=1e-2))
    assert_agree_float32(run_fused(model, x, y, case), run_autograd(model, x, y, case),
                         run_autograd(wide, x.double(), y, case), str(case))


@pytest.mark.parametrize("act", [nn.ReLU, nn.Softplus])
def test_float32_cancellation_in_the_hessian_term_is_no_worse_than_autograd(act):
    """kappa = 1e-3 in float32: Ĥ keeps ~3 digits in either path. Over fixed seeds, the fused
    path's errors against the float64 value (loss, Ĥ, every gradient) are of the autograd path's
    size: their mean is within a factor 2 (one example's ratio varies a lot either way)."""
    case = Case(k=2, kappa=1e-3, adaptive=True)
    totals = {"fused": 0.0, "auto": 0.0}
    for seed in range(24):
        model = mlp(12, 16, 8, 3, act=act, dtype=torch.float32, seed=seed)
        x, y = batch(4, 12, 3, seed=seed)
        x = x.float()
        wide = copy.deepcopy(model).double()
        if not well_posed(wide, x.double(), y, case, 1e-5):
            continue
        exact = run_autograd(wide, x.double(), y, case)
        for run, name in ((run_fused, "fused"), (run_autograd, "auto")):
            loss, parts, grads = run(model, x, y, case)
            errors = [max_error(loss, exact[0]) / abs(exact[0].item()),
                      max_error(parts["hess"], exact[1]["hess"]) / exact[1]["hess"].item()]
            errors += [max_error(g, w) / w.abs().max().item() for g, w in zip(grads, exact[2])]
            totals[name] += max(errors)
    assert 0 < totals["auto"] and totals["fused"] <= 2 * totals["auto"], totals


EDGES = [
    ("k=1", dict(k=1), (6, 5, 3)),
    ("k=n-1", dict(k=5, pairs="anchor"), (6, 5, 3)),
    ("k=n-1 mm", dict(k=5, pairs="mm", n_pairs=1, transform="exp"), (6, 5, 3)),
    ("width 1", dict(k=2, score="prob"), (6, 1, 1, 3)),
    ("batch 1", dict(k=3, adaptive=True, transform="exp"), (6, 4, 2)),
    ("one output logit", dict(k=2, score="logit"), (6, 4, 1)),
    ("one output prob", dict(k=2, score="prob", adaptive=True), (6, 4, 1)),
    ("one output loss", dict(k=2), (6, 4, 1)),
    ("one layer", dict(k=2, pairs="mm"), (6, 10)),
    ("R2ET\\H", dict(k=2, with_hessian=False), (6, 7, 10)),
    ("Est-H", dict(with_gap=False, adaptive=True), (6, 7, 2)),
]


@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh, nn.Softplus])
@pytest.mark.parametrize("label, options, widths", EDGES, ids=[e[0] for e in EDGES])
def test_edge_cases(label, options, widths, act):
    model = mlp(*widths, act=act)
    x, y = batch(1 if label == "batch 1" else 4, widths[0], widths[-1])
    case = Case(**options)
    assert well_posed(model, x, y, case, 1e-9, hess_rel=1e-6)
    assert_agree(run_fused(model, x, y, case), run_autograd(model, x, y, case), 1e-9, label)


def test_package_mlp_tied_weights_no_bias_and_a_flattened_input():
    x, y = batch(4, 6, 3)
    case = Case(k=2, pairs="anchor", adaptive=True)
    model = TabularMLP(6, 3, hidden=5, activation="leaky_relu").double()
    assert_agree(run_fused(model, x, y, case), run_autograd(model, x, y, case), 1e-9, "TabularMLP")
    lin = nn.Linear(6, 6, bias=False)
    tied = nn.Sequential(nn.Flatten(), lin, nn.Tanh(), lin, nn.Softplus(), nn.Linear(6, 3)).double()
    images = x.view(4, 2, 3)
    assert_agree(run_fused(tied, images, y, case), run_autograd(tied, images, y, case), 1e-9, "tied")


def test_the_objective_is_the_methods_and_the_pair_count_their_convention():
    model, (x, y) = mlp(8, 6, 3), batch(5, 8, 3)
    assert mean_pair_count("all", 3, 8, 2) == 15 and mean_pair_count("mm", 3, 8, 2) == 2
    assert mean_pair_count("anchor", 3, 8, 1) == 3  # min(k, n - k): N is ignored, as mean_pair_gap
    for case in (Case(k=3, pairs="anchor", n_pairs=1), Case(k=3, pairs="mm", n_pairs=2)):
        assert_agree(run_fused(model, x, y, case), run_autograd(model, x, y, case), 1e-9)
    # a wrong objective fails the comparison: the test can fail
    fused = run_fused(model, x, y, Case(k=3, lambda_gap=0.31))
    with pytest.raises(AssertionError):
        assert_agree(fused, run_autograd(model, x, y, Case(k=3)), 1e-9)


def test_input_gradient_is_the_autograd_engines():
    """dJ/dx through the point x only: the autograd engine builds x + kappa v from x.detach()."""
    model, (x, y) = mlp(6, 5, 3, act=nn.Tanh), batch(4, 6, 3)
    grads = []
    for fused in (True, False):
        leaf = x.clone().requires_grad_()
        if fused:
            loss, _ = fused_objective(model, leaf, y, k=2)
        else:
            from python_tests.engine.fused_cases import oracle_method

            loss, _ = oracle_method(Case(k=2))(model, leaf, y)
        grads.append(torch.autograd.grad(loss, leaf)[0])
    assert close(grads[0], grads[1], 1e-9)


def test_backward_scales_with_the_incoming_gradient_and_refuses_a_second_order():
    model, (x, y) = mlp(6, 5, 3), batch(4, 6, 3)
    loss, parts = fused_objective(model, x, y, k=2)
    assert all(not p.requires_grad for p in parts.values())
    (g1,) = torch.autograd.grad(loss, model[0].weight, retain_graph=True)
    (g3,) = torch.autograd.grad(3 * loss, model[0].weight, retain_graph=True)
    assert close(g3, 3 * g1, 1e-12)
    (g,) = torch.autograd.grad(loss, model[0].weight, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(g.sum(), model[0].weight)


@pytest.mark.parametrize("case", [Case(k=2), Case(k=2, pairs="anchor", transform="exp", score="prob"),
                                  Case(k=3, pairs="mm", score="logit"), Case(with_gap=False)])
@pytest.mark.parametrize("act", [nn.Softplus, nn.Tanh])
def test_gradcheck_where_the_objective_is_smooth(case, act):
    model, (x, y) = mlp(5, 4, 3, 3, act=act), batch(3, 5, 3)
    spec = recognize_mlp(model)
    assert not isinstance(spec, str)
    count = mean_pair_count(case.pairs, case.k, 5, case.n_pairs)
    options = dict(score=case.score, k=case.k, pairs=case.pairs, transform=case.transform,
                   n_pairs=case.n_pairs, pair_count=count, kappa=case.kappa, lambda_gap=case.lambda_gap,
                   lambda_hess=case.lambda_hess, with_gap=case.with_gap, with_hessian=case.with_hessian,
                   adaptive=False)
    plan = _Plan(spec.kinds, spec.params, (True,) * 3, options, "reference")
    params = [p.detach().clone().requires_grad_() for lin in spec.linears for p in (lin.weight,)]
    params += [lin.bias.detach().clone().requires_grad_() for lin in spec.linears]
    assert torch.autograd.gradcheck(lambda *ps: FusedMLPObjective.apply(plan, x, y, *ps)[0], params)
    if not case.with_hessian or not case.with_gap:
        return
    # dJ/dx too, without Ĥ (its shifted point is built from x.detach(), as the autograd engine does)
    plan = _Plan(spec.kinds, spec.params, (True,) * 3, {**options, "with_hessian": False}, "reference")
    leaf = x.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda z: FusedMLPObjective.apply(plan, z, y, *params)[0], [leaf])


def test_a_hidden_unit_permutation_is_the_same_function():
    """The noise estimate of assert_agree_within_noise is sound: the permuted copy computes the
    same objective, and its gradients map back onto the original's (to rounding)."""
    model, (x, y) = mlp(6, 9, 5, 3, act=nn.Tanh), batch(4, 6, 3)
    other, back = permuted(model, seed=3)
    assert not torch.equal(other[0].weight, model[0].weight)
    case = Case(k=2, adaptive=True)
    want, (loss, parts, grads) = run_autograd(model, x, y, case), run_autograd(other, x, y, case)
    assert_agree((loss, parts, back(grads)), want, 1e-12)
    with pytest.raises(AssertionError):  # without the map back the gradients differ
        assert_agree((loss, parts, grads), want, 1e-12)


def test_guards_reject_a_tie_and_a_kink():
    model, (x, y) = mlp(4, 3, 2, act=nn.ReLU), batch(2, 4, 2)
    assert well_posed(model, x, y, Case(k=2), 1e-9)
    with torch.no_grad():  # make the first hidden unit sit exactly on its kink for sample 0
        model[0].bias[0] -= model[0](x)[0, 0]
    assert not well_posed(model, x, y, Case(k=2), 1e-9)
    g = compute_gradients(model, x, y, score="loss").g_x
    assert g.shape == x.shape


def test_codes_match_the_ops_table_of_layer_kinds():
    from r2et_fast.reference import _fused_math

    assert (LINEAR, RELU, LEAKY_RELU, SOFTPLUS, TANH) == (_fused_math.LINEAR, _fused_math.RELU,
                                                          _fused_math.LEAKY_RELU, _fused_math.SOFTPLUS,
                                                          _fused_math.TANH)
