"""Host syncs of a training epoch (docs/spec.md "Devices and scale-out"): their number does not grow
with the number of batches, for every method under each engine it runs on. Counted on the CPU by
``python_tests._host_syncs`` (every read of a tensor's values by Python, which on a GPU is a sync)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from python_tests._host_syncs import READS, count_host_syncs
from r2et_fast.datasets import make_tabular
from r2et_fast.train import METHODS, TrainConfig, Trainer
from r2et_fast.train._batches import TensorBatches
from r2et_fast.train._checkpoint import build_model
from r2et_fast.train._methods import AdversarialTraining, EstimatedHessian, _R2ETFamily, method_class

ROWS, FEATURES = 8, 8  # rows per batch, features of the tabular task


def _engines(method: str) -> list[str]:
    """autograd for every method; fused where the method has a fused path (its objective, or AT's
    inner attack through the fused saliency)."""
    cls = method_class(method)
    fused = issubclass(cls, (EstimatedHessian, _R2ETFamily, AdversarialTraining))
    return ["autograd", "fused"] if fused else ["autograd"]


CASES = [(method, engine) for method in METHODS for engine in _engines(method)]


@pytest.fixture(scope="module")
def data():
    return make_tabular(n_samples=120, n_features=FEATURES, seed=0)


def _epoch_syncs(data, method: str, engine: str, n_batches: int):
    cfg = TrainConfig(method=method, engine=engine, epochs=1, batch_size=ROWS, k=3, hidden=8, seed=0)
    torch.manual_seed(0)
    trainer = Trainer(build_model(cfg, (FEATURES,), 2), cfg, device="cpu", progress=False)
    rows = ROWS * n_batches
    batches = TensorBatches(data.x_train[:rows], data.y_train[:rows], ROWS, cfg.seed)
    with count_host_syncs() as syncs:
        result = trainer.fit(batches)
    assert np.isfinite(result.history[-1]["loss"])
    return syncs


@pytest.mark.parametrize(("method", "engine"), CASES)
def test_epoch_syncs_do_not_grow_with_batches(data, method, engine):
    few, many = _epoch_syncs(data, method, engine, 2), _epoch_syncs(data, method, engine, 6)
    assert many.count == few.count, (
        f"{method}/{engine}: {few.count} host reads in an epoch of 2 batches, {many.count} in one of "
        f"6; those of 6 batches:\n{many.summary()}")
    # the epoch's one read of its logged means is among them
    assert any("train/_trainer.py" in site and site.startswith("tolist") for site in many.sites)


def test_counter_counts_each_read_once_and_restores_torch():
    originals = {name: torch.Tensor.__dict__.get(name) for name in READS}
    t, v = torch.tensor(2.0), torch.arange(3)
    with count_host_syncs() as syncs:
        t.item(), bool(t), float(t), int(t), v.tolist(), [10, 20, 30][torch.tensor(1)]
        np.asarray(v), v.numpy(), f"{t:.1f}"
        assert torch.empty(0).tolist() == []  # no values: no read
        p = torch.nn.Parameter(torch.ones(1), requires_grad=False)
        float(p)  # subclasses are counted too
    assert syncs.count == 10, syncs.summary()
    assert {name: torch.Tensor.__dict__.get(name) for name in READS} == originals
    with count_host_syncs() as outside:
        pass
    t.item()
    assert outside.count == 0


def test_counter_restores_torch_after_an_error():
    originals = {name: torch.Tensor.__dict__.get(name) for name in READS}
    with pytest.raises(RuntimeError, match="boom"), count_host_syncs():
        raise RuntimeError("boom")
    assert {name: torch.Tensor.__dict__.get(name) for name in READS} == originals
    assert bool(torch.tensor(True)) and float(torch.tensor(1.5)) == 1.5
