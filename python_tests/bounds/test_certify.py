"""certify(): the per-sample record, its JSON forms, and clear errors for bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch

from r2et_fast.bounds import (
    abs_sum_p,
    attribution_jacobian,
    certified_topk_radius,
    certify,
    linf_bound,
    lp_bound,
    top_singular,
)

from . import SoftplusMLP

F64 = torch.float64


@pytest.fixture(scope="module")
def mlp():
    return SoftplusMLP(d=8, hidden=10, classes=3, seed=2)


@pytest.fixture(scope="module")
def xs():
    return torch.rand(5, 8, generator=torch.Generator().manual_seed(0), dtype=F64)


@pytest.mark.parametrize("method", ["saliency", "gradxinput", "ig"])
def test_record_is_consistent(mlp, xs, method):
    ekw = {"n_steps": 6} if method == "ig" else None
    eps = 0.05
    cert = certify(mlp, xs, eps, "l2", method, k=3, explainer_kwargs=ekw)
    spec = top_singular(mlp, xs, method, explainer_kwargs=ekw)
    torch.testing.assert_close(cert.xi_max, spec.xi_max)
    torch.testing.assert_close(cert.t_e, spec.xi_max * eps)
    torch.testing.assert_close(cert.g_norm, spec.attribution.norm(dim=1))
    assert bool((cert.c >= 1).all())
    torch.testing.assert_close(cert.t_e_generalized, cert.c * cert.t_e)
    ratio = (cert.t_e / cert.g_norm).clamp(max=1)
    app = cert.cosine_applicable
    torch.testing.assert_close(cert.t_c_rad[app], torch.asin(ratio)[app])
    torch.testing.assert_close(cert.t_c_deg, torch.rad2deg(cert.t_c_rad))
    torch.testing.assert_close(cert.topk_radius, certified_topk_radius(spec.attribution, 3, spec.xi_max))
    assert torch.equal(cert.topk_certified, eps < cert.topk_radius)
    assert cert.v_max.shape == xs.shape and cert.abs_sum_p is None
    for name in ("g_norm", "xi_max", "t_e", "c", "t_c", "t_c_deg", "topk_radius"):
        assert getattr(cert, name).shape == (5,) and getattr(cert, name).dtype == F64
    record = json.loads(json.dumps(cert.to_dict()))
    assert record["norm"] == "l2" and record["p"] == 2.0 and len(record["t_e"]) == 5
    assert "v_max" not in record and record["abs_sum_p"] is None
    summary = json.loads(json.dumps(cert.summary()))
    assert summary["mean_t_e"] == pytest.approx(float(cert.t_e.mean()))
    assert summary["n_samples"] == 5 and summary["all_converged"] is True


def test_other_norms(mlp, xs):
    eps = 0.02
    l2 = certify(mlp, xs, eps, "l2", "gradxinput", k=2)
    lp = certify(mlp, xs, eps, 4, "gradxinput", k=2)
    assert lp.norm == "lp" and lp.p == 4.0
    torch.testing.assert_close(lp.t_e, lp_bound(l2.xi_max, eps, 4, 8))
    linf = certify(mlp, xs, eps, "linf", "gradxinput", k=2)
    assert linf.norm == "linf" and math.isinf(linf.p)
    jac = attribution_jacobian(mlp, xs, "gradxinput")
    want = (jac.transpose(1, 2) @ jac).abs().sum(dim=(1, 2))
    torch.testing.assert_close(linf.abs_sum_p, want)
    torch.testing.assert_close(linf.t_e, linf_bound(want, eps))
    # the certificate uses the norm's own rate, T_e / eps
    torch.testing.assert_close(linf.topk_radius * want.sqrt(), l2.topk_radius * l2.xi_max)
    assert certify(mlp, xs, eps, float("inf"), "gradxinput", k=2).norm == "linf"
    assert certify(mlp, xs, eps, 2, "gradxinput", k=2).norm == "l2"
    assert json.loads(json.dumps(linf.to_dict()))["p"] is None


def test_explicit_target_and_score(mlp, xs):
    a = certify(mlp, xs, 0.1, k=3, target=2, score="prob")
    assert a.target.tolist() == [2] * 5
    b = certify(mlp, xs, 0.1, k=3, target=torch.full((5,), 2), score="prob")
    torch.testing.assert_close(a.t_e, b.t_e)


BAD = [
    ({"x": "nan"}, ValueError, "x contains NaN"),
    ({"x": "1d"}, ValueError, "x must be a non-empty batch"),
    ({"x": "int"}, TypeError, "x must be float"),
    ({"x": "list"}, TypeError, "x must be a torch.Tensor"),
    ({"eps": 0.0}, ValueError, "eps must be a finite number > 0"),
    ({"eps": -0.1}, ValueError, "eps must be a finite number > 0"),
    ({"eps": float("inf")}, ValueError, "eps"),
    ({"eps": "0.1"}, TypeError, "eps must be a real number"),
    ({"norm": "l1"}, ValueError, "norm must be"),
    ({"norm": 1.5}, ValueError, "norm must be"),
    ({"norm": None}, TypeError, "norm must be"),
    ({"method": "smoothgrad"}, ValueError, "method must be one of"),
    ({"method": "lrp"}, ValueError, "method must be one of"),
    ({"k": 0}, ValueError, "k must satisfy"),
    ({"k": 8}, ValueError, "k must satisfy"),
    ({"k": 2.5}, TypeError, "k must be an int"),
    ({"target": 7}, ValueError, "target must lie in"),
    ({"target": torch.zeros(3, dtype=torch.long)}, ValueError, "target must have shape"),
    ({"solver": "arnoldi"}, ValueError, "solver must be one of"),
    ({"max_iter": 0}, ValueError, "max_iter must be positive"),
    ({"tol": 0.0}, ValueError, "tol must be"),
    ({"explainer_kwargs": {"score": "prob"}}, ValueError, "pass score= directly"),
    ({"explainer_kwargs": {"n_stepz": 3}}, TypeError, "n_stepz"),
    ({"explainer_kwargs": [1]}, TypeError, "explainer_kwargs must be a dict"),
    ({"score": "margin"}, ValueError, "score must be one of"),
]


@pytest.mark.parametrize(("change", "error", "match"), BAD)
def test_bad_arguments_raise_clearly(mlp, xs, change, error, match):
    args = {"x": xs, "eps": 0.1, "norm": "l2", "method": "saliency", "k": 2}
    args.update(change)
    x = {"nan": xs.clone().fill_(math.nan), "1d": xs[0], "int": xs.long(), "list": [[1.0]]}.get(
        args["x"] if isinstance(args["x"], str) else "", args["x"])
    args["x"] = x
    with pytest.raises(error, match=match):
        certify(mlp, **args)


def test_linf_refuses_too_many_features(mlp):
    model = SoftplusMLP(d=30, hidden=4, classes=2, seed=0)
    x = torch.rand(2, 30, dtype=F64)
    with pytest.raises(ValueError, match="max_features=20"):
        certify(model, x, 0.1, "linf", k=2, max_features=20)
    with pytest.raises(ValueError, match="max_features"):
        abs_sum_p(model, x, max_features=20)
    with pytest.raises(ValueError, match="max_features"):
        top_singular(model, x, solver="exact", max_features=20)
    # the matrix-free l2 route does not need J and is not limited
    assert certify(model, x, 0.1, "l2", k=2, max_features=20).t_e.shape == (2,)


def test_model_must_be_in_eval_mode(xs):
    model = SoftplusMLP(d=8).train()
    with pytest.raises(ValueError, match="eval mode"):
        certify(model, xs, 0.1, k=2)
    with pytest.raises(TypeError, match="model must be callable"):
        certify("model", xs, 0.1)
