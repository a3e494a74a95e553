"""R2ET on MNIST 3/8 pairs (siamese CNN, n = 1568 pixels per pair): one training step (batch 64) on
the native path (the default gradient engine: two double-backprop passes on a CPU, one pass over 2B
rows on CUDA; fused pair-gap and Hessian-norm kernels) vs plain PyTorch as research code writes it
(three passes, torch ops), with a
Vanilla step for scale; and ERAttack (20 steps, l-inf 0.1). Group = workload, name = way."""

from __future__ import annotations

import pytest

import r2et_fast
from benchmarks.conftest import training_step
from r2et_fast.attacks import ERAttack
from r2et_fast.datasets import mnist_pairs
from r2et_fast.train import TrainConfig, build_model

pytestmark = pytest.mark.skipif(not r2et_fast.native_available(), reason="native extension not built")


@pytest.fixture(scope="module")
def pairs():
    return mnist_pairs(n_pairs=1000)


def _step_fn(data, method: str, way: str):
    """way: native (the package's default engine and kernels) | reference (plain PyTorch)."""
    cfg = TrainConfig(method=method, arch="siamese_cnn", k=50, score="logit", lambda_hess=1e-4,
                      backend=way)
    return training_step(data, cfg, 64, plain=way == "reference")


@pytest.mark.parametrize("way", ["native", "reference", "vanilla_step"])
def test_r2et_training_step_mnist(benchmark, pairs, way):
    benchmark.group = "R2ET training step, MNIST pairs, batch 64"
    benchmark.name = way
    fn = _step_fn(pairs, "vanilla", "native") if way == "vanilla_step" else _step_fn(pairs, "r2et", way)
    benchmark.pedantic(fn, rounds=20, iterations=1, warmup_rounds=3)


@pytest.mark.parametrize("way", ["native", "reference"])
def test_erattack_mnist(benchmark, pairs, way):
    benchmark.group = "ERAttack, MNIST pairs (64), 20 steps"
    benchmark.name = way
    model = build_model(TrainConfig(arch="siamese_cnn"), pairs.input_shape).eval()
    attack = ERAttack(model, k=50, eps=0.1, alpha=0.01, steps=20, step_norm="linf", lower=0.0, upper=1.0,
                      backend=way)
    x, y = pairs.x_test[:64], pairs.y_test[:64]
    result = benchmark.pedantic(lambda: attack(x, y), rounds=3, iterations=1, warmup_rounds=1)
    assert result.x_adv.shape == x.shape
