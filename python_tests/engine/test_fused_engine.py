"""The ``fused`` engine in the registry: it names what it cannot run, ``auto`` does not pick it yet,
its Gradients are autograd's, and the call the training methods are to make (``integrated``
below, the snippet for r2et_fast/train/_methods.py) reproduces every R2ET method and Est-H."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from python_tests.engine.fused_cases import close
from r2et_fast import engine as E
from r2et_fast.datasets import make_tabular
from r2et_fast.engine import fused_objective
from r2et_fast.models import TabularMLP
from r2et_fast.train import TrainConfig, get_method, train
from r2et_fast.train._methods import EstimatedHessian


def integrated(method, model, x, y):
    """What _R2ETFamily.__call__ / EstimatedHessian.__call__ return when the engine resolves to
    "fused" (the integration snippet, verbatim apart from `self` -> `method`)."""
    if isinstance(method, EstimatedHessian):
        return fused_objective(model, x, y, score=method.score, kappa=method.kappa,
                               lambda_hess=method.lambda_hess, with_gap=False, with_hessian=True,
                               adaptive=method.adaptive, backend=method.backend)
    return fused_objective(model, x, y, score=method.score, k=method.k, pairs=method.pairs,
                           transform=method.transform, n_pairs=method.n_pairs, kappa=method.kappa,
                           lambda_gap=method.lambda_gap, lambda_hess=method.lambda_hess,
                           with_gap=True, with_hessian=method.with_hessian, adaptive=method.adaptive,
                           backend=method.backend)


def _data():
    torch.manual_seed(0)
    model = TabularMLP(10, 3, hidden=12, activation="softplus", beta=3.0).double()
    g = torch.Generator().manual_seed(2)
    return model, torch.randn(8, 10, generator=g, dtype=torch.float64), torch.randint(0, 3, (8,), generator=g)


def test_registered_and_preferred_by_auto():
    assert "fused" in E.engine_names()
    engine = E.get_engine("fused")
    assert isinstance(engine, E.FusedEngine)
    model, x, _ = _data()
    assert engine.unsupported(model, x) is None and engine.preferred(model, x) is True
    assert E.resolve_engine("auto", model, x) is engine
    assert E.resolve_engine("fused", model, x) is engine
    model.train()  # a plain MLP has no train-mode layer: still fused
    assert E.resolve_engine("auto", model, x) is engine
    dropout = nn.Sequential(nn.Linear(10, 4), nn.Dropout(0.2), nn.ReLU(), nn.Linear(4, 3)).double()
    assert E.resolve_engine("auto", dropout.train(), x).name == "autograd"  # random masks: not fused
    assert E.resolve_engine("auto", dropout.eval(), x) is engine


def test_refusals_name_the_layer():
    model = nn.Sequential(nn.Linear(4, 3), nn.SiLU(), nn.Linear(3, 2))
    with pytest.raises(ValueError, match=r"engine 'fused' cannot run this model: layer model\[1\] \(SiLU\)"):
        E.resolve_engine("fused", model, torch.randn(2, 4))
    with pytest.raises(ValueError, match="first Linear takes 4"):
        E.resolve_engine("fused", model[:1], torch.randn(2, 5))
    assert E.resolve_engine("auto", model, torch.randn(2, 4)).name == "autograd"  # falls back


@pytest.mark.parametrize("kappa", [None, 1e-3])
def test_gradients_are_autograds(kappa):
    model, x, y = _data()
    a = E.compute_gradients(model, x, y, score="loss", kappa=kappa, engine="fused")
    b = E.compute_gradients(model, x, y, score="loss", kappa=kappa, engine="autograd")
    assert torch.equal(a.g_x, b.g_x) and torch.equal(a.logits, b.logits)
    assert (a.g_shift is None) == (kappa is None) and (kappa is None or torch.equal(a.g_shift, b.g_shift))


@pytest.mark.parametrize("name", ["r2et", "r2et_noh", "r2et_mm", "r2et_mm_noh", "est_h"])
@pytest.mark.parametrize("adaptive", [False, True])
def test_the_integration_call_reproduces_every_method(name, adaptive):
    model, x, y = _data()
    cfg = TrainConfig(method=name, k=3, n_pairs=2 if "mm" in name else None, transform="exp",
                      adaptive=adaptive, engine="autograd")
    method = get_method(cfg)
    results = []
    for run in (method, lambda m, a, b: integrated(method, m, a, b)):
        model.zero_grad(set_to_none=True)
        loss, parts = run(model, x, y)
        loss.backward()
        results.append((loss.detach(), parts, [p.grad.clone() for p in model.parameters()]))
    (la, pa, ga), (lb, pb, gb) = results
    assert close(lb, la, 1e-9) and list(pb) == list(pa)
    assert all(close(pb[key], pa[key], 1e-9) for key in pa)
    assert all(close(b, a, 1e-9) for a, b in zip(ga, gb))


def test_training_accepts_the_engine():
    data = make_tabular(n_samples=120, n_features=6, seed=0)
    result = train(data, TrainConfig(method="r2et", epochs=1, k=2, engine="fused"), progress=False)
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
