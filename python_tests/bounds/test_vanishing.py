"""certify() on models whose attribution Jacobian vanishes (the logit saliency of a ReLU network):
a VanishingJacobianWarning saying why and what to do, never a silent "perfectly robust"."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from r2et_fast.bounds import VanishingJacobianWarning, certify
from r2et_fast.bounds._vanishing import piecewise_linear_modules

from . import SoftplusMLP

F64 = torch.float64


def relu_mlp(d: int = 8, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(),
                         nn.Linear(12, 3)).double().eval()


class FunctionalRelu(nn.Module):
    """ReLU called in forward: invisible to a scan of the modules."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.fc1, self.fc2 = nn.Linear(8, 12).double(), nn.Linear(12, 3).double()
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


@pytest.fixture(scope="module")
def xs():
    return torch.randn(6, 8, generator=torch.Generator().manual_seed(0), dtype=F64)


def _no_vanishing_warning(model, xs, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", VanishingJacobianWarning)
        return certify(model, xs, 0.5, k=2, **kwargs)


def test_relu_logit_saliency_warns_and_says_why(xs):
    with pytest.warns(VanishingJacobianWarning) as record:
        cert = certify(relu_mlp(), xs, 0.5, k=2)
    assert len(record) == 1 and record[0].filename == __file__  # points at the caller
    message = str(record[0].message)
    assert "xi_max = 0 for 6 of 6 samples" in message
    assert "modules are all piecewise linear" in message and "not evidence of robustness" in message
    assert "it still changed at x +- eps v_max" in message  # the jumps, measured
    assert "Softplus" in message and "score='loss'" in message
    assert bool((cert.xi_max == 0).all()) and bool(torch.isinf(cert.topk_radius).all())
    # T'_e is the measured deviation, never inf * 0 = NaN
    assert bool(torch.isfinite(cert.t_e_generalized).all())
    moved = torch.isinf(cert.c)
    assert bool((cert.t_e_generalized[moved] > 0).all()) and bool((cert.t_e_generalized[~moved] == 0).all())


def test_functional_relu_is_caught_by_the_exact_zero(xs):
    with pytest.warns(VanishingJacobianWarning, match="piecewise constant; at ") as record:
        certify(FunctionalRelu(), xs, 0.5, k=2)
    assert "modules are all" not in str(record[0].message)


def test_affine_model_warns_that_the_zero_is_exact_only_there(xs):
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 3)).double().eval()
    with pytest.warns(VanishingJacobianWarning, match="did not change .* exact only for an affine model"):
        cert = certify(model, xs, 0.5, k=2)
    assert bool((cert.c == 1).all()) and bool((cert.t_e_generalized == 0).all())


@pytest.mark.parametrize("kwargs", [{"score": "loss"}, {"score": "prob"}, {"method": "gradxinput"},
                                    {"method": "ig", "explainer_kwargs": {"n_steps": 4}}])
def test_relu_with_curvature_does_not_warn(xs, kwargs):
    cert = _no_vanishing_warning(relu_mlp(), xs, **kwargs)
    assert bool((cert.xi_max > 0).all())


def test_smooth_model_does_not_warn(xs):
    cert = _no_vanishing_warning(SoftplusMLP(d=8, seed=3), xs)
    assert bool((cert.xi_max > 0).all())


def test_the_warning_can_be_made_an_error(xs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", VanishingJacobianWarning)
        with pytest.raises(VanishingJacobianWarning):
            certify(relu_mlp(), xs, 0.5, k=2)
    assert issubclass(VanishingJacobianWarning, UserWarning)


def test_piecewise_linear_modules():
    assert piecewise_linear_modules(relu_mlp())
    assert piecewise_linear_modules(nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Flatten()))
    assert not piecewise_linear_modules(nn.Sequential(nn.Linear(2, 2), nn.Dropout()))  # affine
    assert not piecewise_linear_modules(SoftplusMLP())
    assert not piecewise_linear_modules(FunctionalRelu())  # why the module scan only words the message
    assert not piecewise_linear_modules(lambda x: x)
