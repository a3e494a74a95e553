"""Thickness and attack steps: native vs the plain-PyTorch reference in the same run.

- the pair-agreement op on 8192 path-point maps of n = 784 with k = 50 (image-sized);
- the whole Monte-Carlo thickness estimator on Adult's MLP (256 test samples, S = 8, T = 10);
- one iteration of each attack on 1024 Adult test samples.
Group = workload, name = way. On a GPU (``make gpu-check``) each runs on CUDA tensors too, in the
groups "<workload>, cuda".
"""

from __future__ import annotations

import copy

import pytest
import torch

import r2et_fast
from benchmarks.conftest import on_device, timed_on
from r2et_fast.attacks import ATTACKS
from r2et_fast.datasets import load_tabular
from r2et_fast.experiments.protocol import data_box
from r2et_fast.explain import Saliency
from r2et_fast.ops import topk_pair_agreement
from r2et_fast.thickness import topk_thickness
from r2et_fast.train import TrainConfig, build_model

pytestmark = pytest.mark.skipif(not r2et_fast.native_available(), reason="native extension not built")
WAYS = ["native", "reference"]
DEVICES = [pytest.param(device, marks=on_device(device)) for device in ("cpu", "cuda")]


def group(workload: str, device: str) -> str:
    return workload if device == "cpu" else f"{workload}, {device}"


@pytest.fixture(scope="module")
def adult():
    data = load_tabular("adult")
    return data, build_model(TrainConfig(), data.n_features).eval()


def model_on(model: torch.nn.Module, device: str) -> torch.nn.Module:
    return model if device == "cpu" else copy.deepcopy(model).to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("way", WAYS)
def test_pair_agreement(benchmark, way, device):
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(8192, 784, generator=g).to(device)
    top = torch.argsort(torch.rand(8192, 784, generator=g), dim=1)[:, :50].contiguous().to(device)
    benchmark.group = group("pair agreement, 8192 maps x 784, k = 50", device)
    benchmark.name = way
    benchmark.pedantic(timed_on(device, lambda: topk_pair_agreement(maps, top, backend=way)), rounds=5,
                       iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("way", WAYS)
def test_thickness_estimator(benchmark, adult, way, device):
    data, model = adult
    x, y = data.x_test[:256].to(device), data.y_test[:256].to(device)
    explainer = Saliency(model_on(model, device), score="loss")
    benchmark.group = group("thickness estimator, Adult MLP, 256 samples, S = 8, T = 10", device)
    benchmark.name = way
    run = lambda: topk_thickness(lambda z, i: explainer.attribute(z, target=y[i]), x, 8,  # noqa: E731
                                 eps=0.5, n_samples=8, n_path=10, backend=way)
    benchmark.pedantic(timed_on(device, run), rounds=3, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name", ["erattack", "mse", "topk", "pgd"])
def test_attack_step(benchmark, adult, name, way, device):
    data, model = adult
    lower, upper = (t.to(device) for t in data_box(data))
    attack = ATTACKS[name](model_on(model, device), k=8, eps=0.5, alpha=0.01, steps=1, lower=lower,
                           upper=upper, backend=way)
    x, y = data.x_test[:1024].to(device), data.y_test[:1024].to(device)
    benchmark.group = group(f"one {name} step, 1024 Adult samples", device)
    benchmark.name = way
    benchmark.pedantic(timed_on(device, lambda: attack(x, y)), rounds=10, iterations=1, warmup_rounds=2)
