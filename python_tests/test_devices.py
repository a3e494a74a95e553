"""Every entry point runs where ``device=`` says and returns its tensors there (docs/spec.md
"Devices and scale-out"): the model is built or moved there, the data (kept on the CPU here) move
there per call or per batch. On the CPU with an explicit device; the CUDA twin runs in
``make gpu-check`` (``-m cuda``)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from python_tests.conftest import device_param
from r2et_fast.attacks import ERAttack
from r2et_fast.bounds import certify
from r2et_fast.datasets import Split
from r2et_fast.experiments.protocol import AttackConfig, attack_model
from r2et_fast.explain import Saliency
from r2et_fast.metrics import COMP, DFFOT, SUFF, Sensitivity, prediction_auc
from r2et_fast.thickness import topk_thickness
from r2et_fast.train import R2ETLoss, TensorBatches, TrainConfig, Trainer, build_model, train

DEVICES = [pytest.param("cpu", id="cpu-str"), pytest.param(torch.device("cpu"), id="cpu-device"),
           device_param("cuda")]


def tensors(value, path="result"):
    """Every tensor inside ``value`` (results, dataclasses, tuples, dicts), with where it is."""
    if isinstance(value, torch.Tensor):
        yield path, value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from tensors(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            yield from tensors(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from tensors(item, f"{path}[{key!r}]")


def assert_on(value, device: torch.device, what: str) -> None:
    found = list(tensors(value))
    assert found, f"{what} returned no tensors"
    wrong = [(path, t.device) for path, t in found if t.device.type != device.type]
    assert not wrong, f"{what}: tensors off {device}: {wrong}"


def split(n: int = 24, n_features: int = 6) -> Split:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3 * n, n_features, generator=gen)
    y = (x[:, 0] > 0).long()
    return Split(x[:n], y[:n], x[n:2 * n], y[n:2 * n], x[2 * n:], y[2 * n:])


@pytest.mark.parametrize("device", DEVICES)
def test_every_entry_point_follows_device(device):
    where = torch.device(device)
    data = split()
    cfg = TrainConfig(method="r2et", epochs=1, batch_size=8, hidden=8, k=2, device=device)

    result = train(data, cfg, progress=False)  # builds the model there; data stay on the CPU
    assert_on(dict(result.model.named_parameters()), where, "train")
    assert data.x_train.device.type == "cpu"

    model = build_model(cfg, 6, 2)  # a CPU model: every entry point below moves it to `device`
    trainer = Trainer(model, dataclasses.replace(cfg, device="auto"), device=device, progress=False)
    trainer.fit(TensorBatches(data.x_train, data.y_train, 8))
    assert_on(dict(model.named_parameters()), where, "Trainer")

    model = build_model(cfg, 6, 2)
    x, y = data.x_test[:8], data.y_test[:8]
    assert_on(R2ETLoss("r2et", k=2, device=device)(model, x, y), where, "R2ETLoss")
    model = build_model(cfg, 6, 2)
    assert_on(ERAttack(model, k=2, eps=0.1, alpha=0.05, steps=2, device=device)(x, y), where, "ERAttack")
    model = build_model(cfg, 6, 2)
    assert_on(topk_thickness(Saliency(model), x, 2, n_samples=2, n_path=2, device=device), where,
              "topk_thickness")
    attributions = torch.rand(8, 6)
    for metric in (COMP(device=device), SUFF(device=device), DFFOT(device=device)):
        assert_on(metric(build_model(cfg, 6, 2), x, attributions), where, type(metric).__name__)
    assert_on(Sensitivity(device=device)(build_model(cfg, 6, 2), x, x + 0.1), where, "Sensitivity")
    sp = build_model(dataclasses.replace(cfg, method="sp"), 6, 2).double().eval()
    assert_on(certify(sp, x.double(), 0.1, k=2, device=device), where, "certify")
    assert_on(dict(sp.named_parameters()), where, "certify's model")

    model = build_model(cfg, 6, 2)
    assert 0 <= prediction_auc(model, x, y, device=device) <= 1
    assert_on(dict(model.named_parameters()), where, "prediction_auc's model")
    model = build_model(cfg, 6, 2)
    scores = attack_model(model, data, AttackConfig(k=2, steps=2, alpha=0.05), progress=False, device=device)
    assert scores["n"] == len(data.x_test)
    assert_on(dict(model.named_parameters()), where, "attack_model's model")


def test_a_device_the_machine_lacks_is_refused():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="device 'cuda': CUDA is not available"):
        train(split(), TrainConfig(epochs=1, device="cuda"), progress=False)
    with pytest.raises(ValueError, match="device"):
        ERAttack(torch.nn.Linear(6, 2), device="cuda:0")


@pytest.mark.parametrize("bad", ["gpu", "tpu", 3, "cuda:x"])
def test_a_malformed_device_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match="device"):
        TrainConfig(device=bad)
    with pytest.raises(ValueError, match="device"):
        R2ETLoss(device=bad)


def test_device_is_placement_not_part_of_the_record():
    """A checkpoint resumes, and a saved model loads, on another device: ``device`` is neither in
    the config's record nor in its equality."""
    assert "device" not in TrainConfig(device="cpu").to_dict()
    assert TrainConfig(device="cpu") == TrainConfig(device="auto")
