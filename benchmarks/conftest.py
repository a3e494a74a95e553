"""Shared inputs for the benchmarks: the issue's workload, B = 1024 maps of n = 784 features."""

from __future__ import annotations

import pytest
import torch

BATCH, FEATURES, K = 1024, 784, 8


def on_device(device: str) -> list:
    """Marks of a benchmark on ``device``: "cuda" ones are marked ``cuda`` and skipped without a
    GPU (``make gpu-check`` runs them)."""
    if device != "cuda":
        return []
    return [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def timed_on(device: str, fn):
    """``fn`` as a closure to time on ``device``: CUDA kernels run asynchronously, so the timed call
    waits for them."""
    if device != "cuda":
        return fn

    def synchronised():
        out = fn()
        torch.cuda.synchronize()
        return out

    return synchronised


@pytest.fixture(scope="session")
def maps() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    a = torch.rand(BATCH, FEATURES, generator=g)
    b = a + 0.05 * torch.randn(BATCH, FEATURES, generator=g)
    return a, b


def plain_r2et_loss(model, x, y, cfg):
    """R2ET's loss as research code writes it in plain PyTorch: three separate passes (g(x),
    g(x + kappa v), the logits) and torch ops for Ĥ and G_k (the reference twins)."""
    import math

    import torch.nn.functional as F

    from r2et_fast import reference
    from r2et_fast.explain._score import select_score

    def grad_at(z):
        z = z.detach().requires_grad_()
        return torch.autograd.grad(select_score(model(z), y, cfg.score).sum(), z, create_graph=True)[0]

    g_x = grad_at(x)
    g_xv = grad_at(x + cfg.kappa * torch.sign(g_x.detach()) / math.sqrt(x[0].numel()))
    ce = F.cross_entropy(model(x), y)
    h = reference.hessian_fd_norm(g_x.flatten(1), g_xv.flatten(1), cfg.kappa).mean()
    n = x[0].numel()
    gap = reference.topk_pair_gap(g_x.abs().flatten(1), cfg.k, "all", cfg.transform, 0)[0].mean()
    return ce + cfg.lambda_hess * h - cfg.lambda_gap * gap / (cfg.k * (n - cfg.k))


def training_step(data, cfg, batch: int, plain: bool = False):
    """One optimiser step of ``cfg`` on the first ``batch`` training rows, as a closure to time; with
    ``plain`` the R2ET loss is computed the plain-PyTorch way instead of by the package."""
    from r2et_fast.train import build_model, get_method

    model = build_model(cfg, data.input_shape)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x, y = data.x_train[:batch], data.y_train[:batch]
    method = get_method(cfg)

    def step():
        loss = plain_r2et_loss(model, x, y, cfg) if plain else method(model, x, y, step_seed=0)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step
