"""The experiments' resume cache (r2et_fast.experiments._cache): a result or a model is reused only
for the same key and recomputed / retrained when a setting changes, also through `reproduce`."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import r2et_fast.experiments.reproduce as reproduce_module
from r2et_fast.datasets import make_tabular
from r2et_fast.experiments import _cache
from r2et_fast.experiments._cache import CACHE_VERSION, MODEL_KEY_FILE, cached, data_key, train_or_load
from r2et_fast.experiments.reproduce import ReproduceConfig, reproduce
from r2et_fast.train import TrainConfig, train


def test_cached_recomputes_only_when_the_key_changes(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls), "pair": (1, 2)}

    path = tmp_path / "c.json"
    first = cached(path, {"a": 1, "b": (0.5, None)}, compute)
    assert first == {"value": 1, "pair": [1, 2]}  # as it reads back from JSON, on every call
    assert cached(path, {"b": [0.5, None], "a": 1}, compute) == first and len(calls) == 1
    assert cached(path, {"a": 2, "b": (0.5, None)}, compute)["value"] == 2  # a changed setting
    assert cached(path, {"a": 1, "b": (0.5, None)}, compute)["value"] == 3  # the old one is gone
    stored = json.loads(path.read_text())
    assert stored["key"] == {"version": CACHE_VERSION, "a": 1, "b": [0.5, None]}


def test_cached_recomputes_records_of_another_format(tmp_path):
    calls = []
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"value": "old"}))  # no key: written by another version
    assert cached(path, {"a": 1}, lambda: calls.append(1) or "new") == "new" and calls == [1]
    path.write_text("{ truncated")
    assert cached(path, {"a": 1}, lambda: calls.append(1) or "newer") == "newer" and len(calls) == 2


class Trainings(list):
    """The TrainConfigs trained, in order; ``resumed``: whether each training resumed a checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.resumed: list[bool] = []


@pytest.fixture
def trainings(monkeypatch):
    """Every training that train_or_load starts (the training itself still runs)."""
    seen = Trainings()

    def counting(data, cfg, **kw):
        seen.append(cfg)
        seen.resumed.append(kw["resume"])
        return train(data, cfg, **kw)

    monkeypatch.setattr(_cache, "train", counting)
    return seen


def test_train_or_load_retrains_only_when_the_model_key_changes(tmp_path, trainings):
    data = make_tabular(n_samples=200, n_features=6, seed=0)
    cfg = TrainConfig(epochs=1, hidden=8, k=2)
    run = tmp_path / "run"
    on = data_key("synthetic", 0, None)
    model = train_or_load(data, cfg, run, on)
    assert len(trainings) == 1 and (run / "model.pt").is_file() and (run / MODEL_KEY_FILE).is_file()
    again = train_or_load(data, cfg, run, on)  # unchanged: loaded
    assert len(trainings) == 1
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    other = dataclasses.replace(cfg, lr=1e-2)
    train_or_load(data, other, run, on)  # another TrainConfig: retrained, not resumed from the old run
    assert trainings[-1] == other and len(trainings) == 2
    train_or_load(data, other, run, on)
    assert len(trainings) == 2
    train_or_load(data, other, run, data_key("synthetic", 0, 100))  # other data: retrained
    assert len(trainings) == 3
    engine = dataclasses.replace(other, engine="autograd")  # the engine is part of the TrainConfig
    train_or_load(data, engine, run, data_key("synthetic", 0, 100))
    assert len(trainings) == 4 and trainings.resumed == [False] * 4
    (run / "model.pt").unlink()  # an interrupted run: its checkpoint (same key) is resumed
    train_or_load(data, engine, run, data_key("synthetic", 0, 100))
    assert len(trainings) == 5 and trainings.resumed[-1] is True


def test_train_or_load_never_reuses_a_model_without_its_key(tmp_path, trainings):
    data = make_tabular(n_samples=200, n_features=6, seed=0)
    run = tmp_path / "run"
    train(data, TrainConfig(epochs=1, hidden=8, k=2), out_dir=run, progress=False)  # no key file
    wanted = TrainConfig(epochs=2, hidden=8, k=2)
    train_or_load(data, wanted, run, data_key("synthetic", 0, None))  # its checkpoint is not resumed
    assert trainings == [wanted] and trainings.resumed == [False]
    saved = torch.load(run / "model.pt", weights_only=True)
    assert saved["config"] == wanted.to_dict()


TINY = dict(datasets=("compas",), methods=("vanilla",), epochs=1, max_train=300, max_test=8, steps=3,
            correlation_samples=4, thickness_samples=2, thickness_path=2, faithfulness_samples=4,
            variant_samples=4, variant_steps=2, smoothgrad_samples=2, ig_steps=2, k_grid=(),
            constraints=("none",))


def test_reproduce_reuses_unchanged_and_recomputes_changed_settings(tmp_path, trainings, monkeypatch):
    evaluations = []

    def counting(*args):
        evaluations.append(args[3])  # the budget
        return evaluate(*args)

    evaluate = reproduce_module.evaluate
    monkeypatch.setattr(reproduce_module, "evaluate", counting)
    cfg = ReproduceConfig.quick_defaults(out=str(tmp_path), **TINY)
    first = reproduce(cfg, progress=False)
    assert len(trainings) == 1 and len(evaluations) == 1
    assert reproduce(cfg, progress=False) == first  # unchanged: every model and result reused
    assert len(trainings) == 1 and len(evaluations) == 1
    longer = reproduce(dataclasses.replace(cfg, steps=5), progress=False)  # another attack budget
    assert len(trainings) == 1 and len(evaluations) == 2 and evaluations[-1].steps == 5
    assert longer["datasets"]["compas"]["budget"]["steps"] == 5
    reproduce(dataclasses.replace(cfg, epochs=2), progress=False)  # another TrainConfig: retrained
    assert len(trainings) == 2 and trainings[-1].epochs == 2 and len(evaluations) == 3
    reproduce(dataclasses.replace(cfg, engine="autograd"), progress=False)
    assert len(trainings) == 3 and trainings[-1].engine == "autograd"


def test_data_key_digests_every_split():
    from r2et_fast.datasets import make_tabular

    data = make_tabular(n_samples=120, n_features=5, seed=0)
    key = data_key("synthetic", 0, None, data)
    assert key == data_key("synthetic", 0, None, make_tabular(n_samples=120, n_features=5, seed=0))
    changed = dataclasses.replace(data, x_test=data.x_test + 1.0)  # another test split, same train
    assert data_key("synthetic", 0, None, changed) != key
    assert "digest" not in data_key("synthetic", 0, None)
