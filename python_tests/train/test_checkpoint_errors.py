"""Corrupted or foreign model and checkpoint files are named by their path, in one line."""

from __future__ import annotations

import pytest
import torch

from r2et_fast.datasets import make_tabular
from r2et_fast.train import TrainConfig, Trainer, load_model, train


@pytest.mark.parametrize("payload, fragment", [
    (torch.ones(3), "holds a Tensor"),
    ([1, 2], "holds a list"),
    ({"config": {}}, "is not a model saved"),
])
def test_load_model_names_the_file(tmp_path, payload, fragment):
    path = tmp_path / "model.pt"
    torch.save(payload, path)
    with pytest.raises(ValueError, match=fragment) as info:
        load_model(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_resuming_from_a_foreign_checkpoint_names_it(tmp_path):
    data = make_tabular(n_samples=64, n_features=5, seed=0)
    cfg = TrainConfig(epochs=1, batch_size=32, hidden=4, k=2)
    train(data, cfg, out_dir=tmp_path)
    torch.save({"config": cfg.to_dict()}, tmp_path / "checkpoint.pt")
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Softplus(), torch.nn.Linear(4, 2))
    with pytest.raises(ValueError, match="not a checkpoint written by the Trainer"):
        Trainer(model, cfg, out_dir=tmp_path, progress=False).fit([(data.x_train, data.y_train)])


def test_a_changed_configuration_points_at_restart(tmp_path):
    data = make_tabular(n_samples=64, n_features=5, seed=0)
    train(data, TrainConfig(epochs=1, batch_size=32, hidden=4, k=2), out_dir=tmp_path)
    with pytest.raises(ValueError, match="--restart"):
        train(data, TrainConfig(epochs=2, batch_size=32, hidden=4, k=2), out_dir=tmp_path)
