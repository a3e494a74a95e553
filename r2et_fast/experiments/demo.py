"""The demo job: train a small MLP on a seeded synthetic tabular task, explain its test inputs, and
compare the explanations of clean and slightly noisy inputs with every rank metric."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from r2et_fast import _backend
from r2et_fast._device import resolve_device
from r2et_fast.datasets import make_tabular
from r2et_fast.explain import Saliency
from r2et_fast.explain._score import TRAINING_SCORE
from r2et_fast.metrics import rank_metrics
from r2et_fast.models import TabularMLP


@dataclass(frozen=True)
class DemoConfig:
    n_samples: int = 3000
    n_features: int = 16
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-2
    k: int = 4
    noise: float = 0.05  # std of the Gaussian input noise, in standardised feature units
    seed: int = 0


def _train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: DemoConfig,
           generator: torch.Generator, progress: bool) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loss = torch.tensor(float("nan"))
    bar = tqdm(range(cfg.epochs), desc="train", disable=not progress)
    for _ in bar:
        order = torch.randperm(len(x), generator=generator).to(x.device)
        for start in range(0, len(x), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return loss.item()


def run_demo(cfg: DemoConfig = DemoConfig(), *, progress: bool = True, device=None) -> dict:
    """Run the demo and return a JSON-serialisable summary. ``device``: where (default the CPU;
    "auto": CUDA when available); the small data set moves there whole."""
    where = resolve_device(device)
    generator = torch.Generator().manual_seed(cfg.seed)
    split = make_tabular(cfg.n_samples, cfg.n_features, seed=cfg.seed)
    split = dataclasses.replace(split, **{f.name: getattr(split, f.name).to(where)
                                          for f in dataclasses.fields(split)})
    with torch.random.fork_rng():  # seeded initialisation without touching the caller's RNG
        torch.manual_seed(cfg.seed)
        model = TabularMLP(split.n_features).to(where)
    final_loss = _train(model, split.x_train, split.y_train, cfg, generator, progress)

    model.eval()
    with torch.no_grad():
        accuracy = (model(split.x_test).argmax(1) == split.y_test).float().mean().item()
    explainer = Saliency(model, score=TRAINING_SCORE)  # the authors' code explains the loss
    clean = explainer.attribute(split.x_test, target=split.y_test)
    noise = cfg.noise * torch.randn(split.x_test.shape, generator=generator).to(where)
    noisy = explainer.attribute(split.x_test + noise, target=split.y_test)
    per_sample = rank_metrics(clean, noisy, cfg.k)
    metrics = {
        name: {"mean": float(values.nanmean()), "std": float(values[~values.isnan()].std())}
        for name, values in per_sample.items()
    }
    return {
        "job": "demo",
        "config": dataclasses.asdict(cfg),
        "backend": _backend.backend(),
        "final_train_loss": final_loss,
        "test_accuracy": accuracy,
        "n_test": len(split.x_test),
        "metrics": metrics,
    }
