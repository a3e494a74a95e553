"""The native op r2et_fast::fused_mlp_objective against its twin (r2et_fast.reference.fused) on
random MLPs and objectives (Hypothesis; R2ET_FAST_FUZZ_EXAMPLES raises the count), on every
device of the ops table; the backend switch; the kernel's own argument checks."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from python_tests.conftest import requires_native
from python_tests.engine.fused_cases import (
    Case,
    assert_agree,
    assert_agree_float32,
    assert_agree_within_noise,
    close,
    examples,
    hypothesis,
    mlp_cases,
    objective_cases,
    permuted,
    run_autograd,
    run_fused,
    well_posed,
)
from r2et_fast.engine._fused_mlp import fused_objective
from r2et_fast.ops import fused as fused_ops

st, given, settings, assume = (hypothesis.strategies, hypothesis.given, hypothesis.settings,
                               hypothesis.assume)
HEALTH = [hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.filter_too_much,
          hypothesis.HealthCheck.data_too_large]

pytestmark = requires_native


@settings(max_examples=examples(30), deadline=None, suppress_health_check=HEALTH)
@given(data=st.data(), net=mlp_cases())
def test_native_matches_twin_float64(data, net):
    model, x, y = net
    case = data.draw(objective_cases(x.shape[1]))
    assume(well_posed(model, x, y, case, 1e-9, hess_rel=1e-4, saturation=1e-6))
    other, back = permuted(model)
    loss, parts, grads = run_fused(other, x, y, case, "reference")
    native, twin = run_fused(model, x, y, case, "native"), run_fused(model, x, y, case, "reference")
    assert_agree_within_noise(native, twin, (loss, parts, back(grads)), 1e-9, str(case))


@settings(max_examples=examples(20), deadline=None, suppress_health_check=HEALTH)
@given(data=st.data(), net=mlp_cases(dtype=torch.float32, max_width=64))
def test_native_matches_twin_float32(data, net):
    """Where float32 keeps the digits (the guards of test_fused_matches_autograd_float32)."""
    model, x, y = net
    case = data.draw(objective_cases(x.shape[1], kappas=(0.1, 0.3, 1.0)))
    wide = copy.deepcopy(model).double()
    assume(well_posed(wide, x.double(), y, case, 1e-5, hess_rel=1e-2, gap_rel=1e-2, saturation=1e-2))
    assert_agree_float32(run_fused(model, x, y, case, "native"), run_fused(model, x, y, case, "reference"),
                         run_fused(wide, x.double(), y, case, "reference"), str(case))


def _net(device: str, classes: int = 3, dtype=torch.float64):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(9, 7), nn.Softplus(beta=2.0), nn.Linear(7, 5, bias=False), nn.Tanh(),
                          nn.Linear(5, classes)).to(device, dtype)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 9, generator=g, dtype=dtype).to(device)
    y = torch.randint(0, max(classes, 2), (6,), generator=g).to(device)
    return model, x, y


@pytest.mark.parametrize("classes", [1, 4])
@pytest.mark.parametrize("case", [Case(k=3), Case(k=2, pairs="anchor", transform="exp", adaptive=True),
                                  Case(k=4, pairs="mm", score="prob", with_hessian=False),
                                  Case(with_gap=False, score="logit", adaptive=True)])
def test_every_device_against_the_twin_and_autograd(device, case, classes):
    model, x, y = _net(device, classes)
    native = run_fused(model, x, y, case, "native")
    assert_agree(native, run_fused(model, x, y, case, "reference"), 1e-9, f"{device} twin")
    assert_agree(native, run_autograd(model, x, y, case), 1e-9, f"{device} autograd")


def test_input_gradient_and_direct_call(device):
    model, x, y = _net(device)
    lins = [model[0], model[2], model[4]]
    args = (x, y, [m.weight.detach() for m in lins],
            [m.bias.detach() if m.bias is not None else x.new_empty(0) for m in lins],
            [0, 3, 0, 4, 0], [0.0, 0.0, 2.0, 20.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    options = dict(score="loss", k=3, pairs="mm", transform="linear", n_pairs=2, pair_count=2.0,
                   kappa=1e-2, lambda_gap=0.5, lambda_hess=0.2, with_gap=True, with_hessian=True,
                   adaptive=True, input_grad=True)
    got = fused_ops.fused_mlp_objective(*args, **options, backend="native")
    want = fused_ops.fused_mlp_objective(*args, **options, backend="reference")
    flat = [got[0], got[1], *got[2], *got[3], got[4]], [want[0], want[1], *want[2], *want[3], want[4]]
    assert [t.shape for t in flat[0]] == [t.shape for t in flat[1]]
    assert got[3][1].shape == (0,) and got[4].shape == x.shape
    for a, b in zip(*flat):
        assert a.device == x.device and close(a, b, 1e-9)


def test_the_backend_switch_picks_the_kernel(monkeypatch):
    model, x, y = _net("cpu")

    def refuse(*args, **kwargs):
        raise AssertionError("the twin ran")

    monkeypatch.setattr(fused_ops._twin, "fused_mlp_objective", refuse)
    fused_objective(model, x, y, k=3, backend="native")[0].backward()
    with pytest.raises(AssertionError, match="the twin ran"):
        fused_objective(model, x, y, k=3, backend="reference")


@pytest.mark.parametrize("change, message", [
    (lambda a: {**a, "weights": [a["weights"][0], a["weights"][0]]},
     r"weights\[1\] must have shape \(out, 4\)"),
    (lambda a: {**a, "biases": [a["biases"][0][:2], a["biases"][1]]}, r"biases\[0\] must be empty or have"),
    (lambda a: {**a, "layers": [0, 7, 0]}, "unknown layer code 7"),
    (lambda a: {**a, "layer_params": [0.0] * 4}, "2 numbers per layer"),
    (lambda a: {**a, "y": a["y"] + 3}, r"y must lie in \[0, 3\)"),
    (lambda a: {**a, "y": a["y"].int()}, "y must be int64"),
    (lambda a: {**a, "x": a["x"] * float("nan")}, "x contains NaN"),
    (lambda a: {**a, "score": "margin"}, "score must be one of"),
    (lambda a: {**a, "k": 6}, "k must satisfy"),
    (lambda a: {**a, "kappa": 0.0}, "kappa must be a positive"),
    (lambda a: {**a, "weights": [a["weights"][0].float(), a["weights"][1]]}, "dtype and device of x"),
])
def test_the_kernel_checks_its_arguments(change, message):
    g = torch.Generator().manual_seed(0)
    args = dict(x=torch.randn(3, 6, generator=g, dtype=torch.float64), y=torch.tensor([0, 2, 1]),
                weights=[torch.randn(4, 6, generator=g, dtype=torch.float64),
                         torch.randn(3, 4, generator=g, dtype=torch.float64)],
                biases=[torch.zeros(4, dtype=torch.float64), torch.empty(0, dtype=torch.float64)],
                layers=[0, 1, 0], layer_params=[0.0] * 6, score="loss", k=2, pairs="all",
                transform="linear", n_pairs=0, pair_count=8.0, kappa=1e-3, lambda_gap=0.3,
                lambda_hess=0.1, with_gap=True, with_hessian=True, adaptive=False, input_grad=False)
    op = torch.ops.r2et_fast.fused_mlp_objective
    op(**args)  # the unchanged arguments run
    with pytest.raises((ValueError, TypeError), match=message):
        op(**change(args))
