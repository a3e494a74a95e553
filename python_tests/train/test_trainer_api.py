"""The Trainer on models and batch sources it did not build: any nn.Module, a DataLoader with a
sampler, an optimizer factory, a wrapping hook, and a non-main process that writes nothing."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from r2et_fast.datasets import make_tabular
from r2et_fast.train import TensorBatches, TrainConfig, Trainer, build_model, get_method, train


@pytest.fixture(scope="module")
def data():
    return make_tabular(n_samples=200, n_features=8, seed=0)


def user_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.Softplus(),
                               torch.nn.Dropout(0.1), torch.nn.Linear(16, 2))


def test_tensor_batches_reproduce_train(data):
    cfg = TrainConfig(method="r2et", epochs=2, batch_size=50, k=3)
    want = train(data, cfg, progress=False).model
    model = build_model(cfg, data.input_shape)
    got = Trainer(model, cfg, progress=False).fit(TensorBatches(data.x_train, data.y_train, 50, cfg.seed),
                                                  (data.x_val, data.y_val)).model
    for p, q in zip(want.parameters(), got.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("method", ["vanilla", "r2et", "est_h", "at"])
def test_any_module_and_a_dataloader(data, method):
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=32,
                        sampler=RandomSampler(data.x_train, generator=torch.Generator().manual_seed(0)))
    cfg = TrainConfig(method=method, epochs=2, k=3)
    result = Trainer(user_model(), cfg, device="cpu", progress=False).fit(loader, (data.x_val, data.y_val))
    assert len(result.history) == 2 and not result.model.training
    assert all(torch.isfinite(torch.tensor(v)) for v in result.history[-1].values())
    assert "val_auc" in result.history[-1]


def test_optimizer_factory_and_wrap_hook(data):
    seen = {}

    def factory(params):
        seen["optimizer"] = torch.optim.SGD(params, lr=0.1, momentum=0.9)
        return seen["optimizer"]

    class Counting(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.calls = inner, 0

        def forward(self, x):
            self.calls += 1
            return self.inner(x)

    def wrap(model):
        seen["wrapped"] = Counting(model)
        return seen["wrapped"]

    model = user_model()
    trainer = Trainer(model, TrainConfig(method="r2et", epochs=1, k=3), optimizer=factory, wrap=wrap,
                      progress=False)
    assert trainer.optimizer is seen["optimizer"]
    result = trainer.fit(TensorBatches(data.x_train, data.y_train, 64))
    assert seen["wrapped"].calls > 0 and result.model is model  # the unwrapped model comes back
    assert result.history[-1].keys() >= {"loss", "ce", "gap", "hess"}


def test_non_main_process_writes_nothing(data, tmp_path):
    cfg = TrainConfig(epochs=1)
    Trainer(build_model(cfg, data.input_shape), cfg, out_dir=tmp_path, is_main=False, progress=False).fit(
        TensorBatches(data.x_train, data.y_train, 64), input_shape=data.input_shape, n_classes=2)
    assert list(tmp_path.iterdir()) == []
    Trainer(build_model(cfg, data.input_shape), cfg, out_dir=tmp_path, progress=False).fit(
        TensorBatches(data.x_train, data.y_train, 64), input_shape=data.input_shape, n_classes=2)
    assert {p.name for p in tmp_path.iterdir()} == {"checkpoint.pt", "log.json", "model.pt"}


def test_methods_are_objects_with_their_own_hyper_parameters():
    m = get_method(TrainConfig(method="r2et_mm", k=5, lambda_gap=0.7, n_pairs=3))
    assert (m.pairs, m.with_hessian, m.k, m.lambda_gap, m.n_pairs) == ("mm", True, 5, 0.7, 3)
    assert get_method(TrainConfig(method="r2et_noh")).with_hessian is False
    assert get_method(TrainConfig(method="wd", weight_decay=0.01)).weight_decay() == 0.01
    assert get_method(TrainConfig(method="sp")).activation(TrainConfig(method="sp")) == "softplus"


def test_bad_arguments(data):
    cfg = TrainConfig(epochs=1)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        Trainer(lambda x: x, cfg)
    with pytest.raises(TypeError, match="cfg must be a TrainConfig"):
        Trainer(user_model(), {"method": "r2et"})
    with pytest.raises(ValueError, match="yielded no batches"):
        Trainer(user_model(), cfg, progress=False).fit([])
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({"method": "r2et", "lamda_gap": 1.0})
    with pytest.raises(ValueError, match="same number of rows"):
        TensorBatches(data.x_train, data.y_train[:-1], 32)


def test_corrupted_or_foreign_files_are_named(tmp_path):
    from r2et_fast.train import load_model

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt is not a readable r2et_fast checkpoint"):
        load_model(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="other.pt is not a model saved by r2et_fast.train"):
        load_model(other)
