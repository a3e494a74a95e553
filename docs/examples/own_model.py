"""Your own model, your own loop: a user-defined MLP with BatchNorm (or Dropout) trained on Adult
with plain PyTorch, once with cross-entropy and once with ``R2ETLoss``, then attacked by ERAttack.

    python docs/examples/own_model.py --layer batchnorm --epochs 10 --steps 200

The only change between the two runs is the loss line. Prints one JSON record per run.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

from r2et_fast import R2ETLoss
from r2et_fast.datasets import load_tabular
from r2et_fast.experiments.protocol import AttackConfig, attack_model


class MyMLP(nn.Module):
    """What a user writes: two hidden layers, a BatchNorm or a Dropout layer, ReLU."""

    def __init__(self, n_features: int, layer: str, hidden: int = 64) -> None:
        super().__init__()
        middle = nn.BatchNorm1d(hidden) if layer == "batchnorm" else nn.Dropout(0.3)
        self.net = nn.Sequential(nn.Linear(n_features, hidden), middle, nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def fit(data, layer: str, use_r2et: bool, epochs: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = MyMLP(data.x_train.shape[1], layer)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    r2et_loss = R2ETLoss(k=8)                       # lambda_gap=0.3, lambda_hess=0.1: the trainer's
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(data.y_train), generator=order).split(256):
            x, y = data.x_train[idx], data.y_train[idx]
            loss = r2et_loss(model, x, y) if use_r2et else F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", choices=("batchnorm", "dropout"), default="batchnorm")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--alpha", type=float, default=5e-3)
    parser.add_argument("--max-samples", type=int, default=None)
    args = parser.parse_args(argv)
    data = load_tabular("adult", seed=0)
    records = []
    for use_r2et in (False, True):
        start = time.perf_counter()
        model = fit(data, args.layer, use_r2et, args.epochs)
        buffers = [b.clone() for b in model.buffers()]
        scores = attack_model(model, data, AttackConfig(steps=args.steps, alpha=args.alpha,
                                                        max_samples=args.max_samples), progress=False)
        assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers()))  # attacks change none
        record = {"layer": args.layer, "loss": "R2ETLoss" if use_r2et else "cross-entropy",
                  "epochs": args.epochs, "attack_steps": args.steps,
                  **{k: scores[k] for k in ("cauc", "aauc", "precision_at_k", "label_kept")},
                  "seconds": round(time.perf_counter() - start, 1)}
        print(json.dumps(record))
        records.append(record)
    return records


if __name__ == "__main__":
    main()
