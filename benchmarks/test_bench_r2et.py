"""R2ET on Adult: one training step (batch 256) and ERAttack (100 steps) on the native path vs the
plain-PyTorch reference (two separate double-backprop passes for x and x + kappa v, torch ops for
every kernel), with a Vanilla step for scale. Group = workload, name = way."""

from __future__ import annotations

import pytest

import r2et_fast
from benchmarks.conftest import training_step
from r2et_fast.attacks import ERAttack
from r2et_fast.datasets import load_tabular
from r2et_fast.experiments.protocol import data_box
from r2et_fast.train import TrainConfig, build_model

pytestmark = pytest.mark.skipif(not r2et_fast.native_available(), reason="native extension not built")


@pytest.fixture(scope="module")
def adult():
    return load_tabular("adult")


def _step_fn(data, method: str, way: str):
    """way: native (the package's default engine and kernels) | reference (plain PyTorch)."""
    cfg = TrainConfig(method=method, backend=way)
    return training_step(data, cfg, 256, plain=way == "reference")


@pytest.mark.parametrize("way", ["native", "reference", "vanilla_step"])
def test_r2et_training_step(benchmark, adult, way):
    benchmark.group = "R2ET training step, Adult, batch 256"
    benchmark.name = way
    fn = _step_fn(adult, "vanilla", "native") if way == "vanilla_step" else _step_fn(adult, "r2et", way)
    benchmark.pedantic(fn, rounds=30, iterations=1, warmup_rounds=3)


@pytest.mark.parametrize("way", ["native", "reference"])
def test_erattack(benchmark, adult, way):
    benchmark.group = "ERAttack, Adult test (first 2048), 100 steps"
    benchmark.name = way
    model = build_model(TrainConfig(), adult.n_features).eval()
    lower, upper = data_box(adult)
    attack = ERAttack(model, k=8, eps=0.1, alpha=1e-3, steps=100, lower=lower, upper=upper, backend=way)
    x, y = adult.x_test[:2048], adult.y_test[:2048]
    result = benchmark.pedantic(lambda: attack(x, y), rounds=2, iterations=1, warmup_rounds=0)
    assert result.x_adv.shape == x.shape
