"""The R2ET objective and its parameter gradients (no optimizer step) on Adult's MLP, every way a
user could compute it, in one run: the package's engines (autograd, fused when registered), plain
eager PyTorch as research code writes it, and ``torch.compile`` of the same step written
functionally with ``torch.func`` (the anchor: what a user would pick instead; compiled and warmed
up outside the timed region), plus one eager Vanilla step (CE gradient only) for scale.
Group = batch size, name = way."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from benchmarks.conftest import plain_r2et_loss
from r2et_fast.datasets import load_tabular
from r2et_fast.engine import engine_names
from r2et_fast.train import TrainConfig, build_model, get_method

BATCHES = (64, 256, 4096)
WAYS = ("engine_autograd", "engine_fused", "plain_eager", "torch_compile", "vanilla_step")


@pytest.fixture(scope="module")
def adult():
    return load_tabular("adult")


def functional_step(model, cfg: TrainConfig):
    """grad over the parameters of the R2ET objective, written with torch.func (input gradients by
    ``torch.func.grad``, the top-k mask from a detached sort), compiled once per shape."""
    from torch.func import functional_call, grad

    k, kappa = cfg.k, cfg.kappa

    def objective(params, x, y):
        def loss_sum(z):
            return F.cross_entropy(functional_call(model, params, (z,)), y, reduction="sum")

        n = x.shape[1]
        g = grad(loss_sum)(x)
        g_shift = grad(loss_sum)(x + kappa * torch.sign(g).detach() / math.sqrt(n))
        ce = F.cross_entropy(functional_call(model, params, (x,)), y)
        hess = ((g_shift - g).norm(dim=1) / kappa).mean()
        sal = g.abs()
        top = torch.zeros_like(sal).scatter(1, sal.detach().topk(k, dim=1).indices, 1.0)
        gap = ((n - k) * (sal * top).sum(1) - k * (sal * (1 - top)).sum(1)) / (k * (n - k))
        return ce + cfg.lambda_hess * hess - cfg.lambda_gap * gap.mean()

    return torch.compile(grad(objective), dynamic=False)


def way_fn(data, way: str, batch: int):
    """A closure computing the objective's parameter gradients one way."""
    engine = "fused" if way == "engine_fused" else "autograd"
    cfg = TrainConfig(method="vanilla" if way == "vanilla_step" else "r2et", engine=engine)
    torch.manual_seed(0)
    model = build_model(cfg, data.input_shape)
    x, y = data.x_train[:batch], data.y_train[:batch]
    params = list(model.parameters())
    if way == "torch_compile":
        step = functional_step(model, cfg)
        named = {name: p.detach() for name, p in model.named_parameters()}
        step(named, x, y)  # compile outside the timed region
        return lambda: step(named, x, y)
    method = get_method(cfg)

    def eager():
        loss = plain_r2et_loss(model, x, y, cfg) if way == "plain_eager" else method(model, x, y)[0]
        return torch.autograd.grad(loss, params)

    return eager


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("way", WAYS)
def test_r2et_objective_gradients(benchmark, adult, way, batch):
    if way == "engine_fused" and "fused" not in engine_names():
        pytest.skip("no fused engine registered")
    benchmark.group = f"R2ET objective + parameter gradients, Adult MLP, batch {batch}"
    benchmark.name = way
    fn = way_fn(adult, way, batch)
    rounds = 10 if batch >= 4096 else 50
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=3)
