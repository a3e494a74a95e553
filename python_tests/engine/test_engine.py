"""Gradient engines: the registry, how ``auto`` picks, clear refusals, and agreement between the
engines inside training."""

from __future__ import annotations

import pytest
import torch

from r2et_fast import engine as E
from r2et_fast.datasets import make_tabular
from r2et_fast.engine import _base
from r2et_fast.train import TrainConfig, train


def model_and_batch():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Softplus(), torch.nn.Linear(8, 2)).double()
    return model, torch.randn(5, 6, dtype=torch.float64), torch.tensor([0, 1, 1, 0, 1])


def test_names_and_lookup():
    assert E.ENGINES[0] == "auto" and {"autograd", "batched"} <= set(E.ENGINES)
    assert isinstance(E.get_engine("autograd"), E.AutogradEngine)
    with pytest.raises(ValueError, match="engine must be one of"):
        E.get_engine("fused-ish")
    with pytest.raises(ValueError, match="resolve_engine"):
        E.get_engine("auto")
    with pytest.raises(ValueError, match="engine must be one of"):
        TrainConfig(engine="gpu")


def test_auto_picks_fused_for_mlps_and_autograd_otherwise_on_cpu():
    model, x, _ = model_and_batch()
    assert E.resolve_engine("auto", model, x).name == "fused"
    assert E.resolve_engine("batched", model, x).name == "batched"
    cnn = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(8, 2))
    assert E.resolve_engine("auto", cnn, torch.randn(2, 1, 4, 4)).name == "autograd"


class _OnlySoftplus(E.GradientEngine):
    """A stand-in for a specialised engine: it runs only models with a Softplus."""

    name = "only_softplus"
    calls = 0

    def unsupported(self, model, x):
        if not any(isinstance(m, torch.nn.Softplus) for m in model.modules()):
            return "needs a model with a Softplus layer"
        return None

    def preferred(self, model, x):
        return True

    def gradients(self, model, x, target, *, score, kappa=None):
        type(self).calls += 1
        return E.get_engine("autograd").gradients(model, x, target, score=score, kappa=kappa)


def test_a_registered_engine_takes_over_auto_where_it_applies(monkeypatch):
    monkeypatch.setattr(_base, "_REGISTRY", dict(_base._REGISTRY))
    E.register_engine(_OnlySoftplus(), priority=20)  # above the fused engine (10)
    model, x, y = model_and_batch()
    assert E.resolve_engine("auto", model, x).name == "only_softplus"
    relu = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).double()
    assert E.resolve_engine("auto", relu, x).name == "fused"  # the next engine where unsupported
    with pytest.raises(ValueError, match="needs a model with a Softplus"):
        E.resolve_engine("only_softplus", relu, x)
    # TrainConfig accepts the new name and the trainer uses it
    data = make_tabular(n_samples=120, n_features=6, seed=0)
    _OnlySoftplus.calls = 0
    with pytest.raises(ValueError, match="cannot run this model"):  # the package MLP uses ReLU
        train(data, TrainConfig(method="est_h", epochs=1, k=2, engine="only_softplus"), progress=False)
    train(data, TrainConfig(method="est_h", epochs=1, k=2, activation="softplus", engine="only_softplus"),
          progress=False)
    assert _OnlySoftplus.calls > 0


def test_register_rejects_bad_engines():
    with pytest.raises(TypeError, match="GradientEngine"):
        E.register_engine(object())

    class Auto(_OnlySoftplus):
        name = "auto"

    with pytest.raises(ValueError, match="reserved"):
        E.register_engine(Auto())


@pytest.mark.parametrize("kappa", [None, 1e-3])
def test_engines_agree(kappa):
    model, x, y = model_and_batch()
    a = E.compute_gradients(model, x, y, score="loss", kappa=kappa, engine="autograd")
    b = E.compute_gradients(model, x, y, score="loss", kappa=kappa, engine="batched")
    torch.testing.assert_close(a.logits, b.logits)
    torch.testing.assert_close(a.g_x, b.g_x)
    assert (a.g_shift is None) == (b.g_shift is None) == (kappa is None)
    if kappa is not None:
        torch.testing.assert_close(a.g_shift, b.g_shift)


@pytest.mark.parametrize("method", ["r2et", "est_h", "r2et_noh"])
def test_training_with_either_engine_gives_the_same_model(method):
    data = make_tabular(n_samples=200, n_features=8, seed=1)
    data = type(data)(**{k: v.double() if v.is_floating_point() else v for k, v in vars(data).items()})
    models = [train(data, TrainConfig(method=method, epochs=2, batch_size=50, k=3, engine=e),
                    progress=False).model for e in ("autograd", "batched")]
    for p, q in zip(*(m.parameters() for m in models)):
        torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-10)


def test_batched_is_not_preferred_for_train_mode_batchnorm():
    class OnCuda:  # preferred() reads only the input's device
        device = torch.device("cuda")

    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2))
    engine = E.get_engine("batched")
    cuda_like = OnCuda()
    assert engine.preferred(model.eval(), cuda_like) is True
    assert engine.preferred(model.train(), cuda_like) is False


def test_bad_requests_name_the_argument():
    model, x, y = model_and_batch()
    with pytest.raises(ValueError, match="x contains NaN"):
        E.compute_gradients(model, x * float("nan"), y, score="loss")
    with pytest.raises(ValueError, match="x must be a non-empty batch"):
        E.compute_gradients(model, x[:0], y[:0], score="loss")
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        E.compute_gradients(model, x.long(), y, score="loss")
    with pytest.raises(ValueError, match="score must be one of"):
        E.compute_gradients(model, x, y, score="margin")
    with pytest.raises(ValueError, match="kappa must be a positive"):
        E.compute_gradients(model, x, y, score="loss", kappa=-1.0)
    with pytest.raises(TypeError, match="model must be callable"):
        E.compute_gradients(None, x, y, score="loss")
    from r2et_fast import regularizers as R

    with pytest.raises(ValueError, match="kappa must be a positive finite number, got None"):
        R.hessian_norm(model, x, y, kappa=None)
