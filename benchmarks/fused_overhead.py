"""Where a fused R2ET step's time goes on Adult's MLP: the native op alone, then each Python layer
around it (medians of 500 calls after 30 warm-ups). Run alone on an idle machine:

    python benchmarks/fused_overhead.py [batch]
"""

from __future__ import annotations

import sys
import time

import torch

from r2et_fast.datasets import load_tabular
from r2et_fast.engine._fused_mlp import fused_objective
from r2et_fast.engine._mlp_spec import recognize_mlp
from r2et_fast.ops.fused import fused_mlp_objective
from r2et_fast.train import TrainConfig, build_model, get_method


def median_us(fn, n: int = 500) -> float:
    for _ in range(30):
        fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[n // 2] * 1e6


def main(batch: int) -> None:
    data = load_tabular("adult")
    cfg = TrainConfig(method="r2et", engine="fused")
    torch.manual_seed(0)
    model = build_model(cfg, data.input_shape)
    method, params = get_method(cfg), list(model.parameters())
    spec = recognize_mlp(model)
    assert not isinstance(spec, str)
    weights = [lin.weight.detach() for lin in spec.linears]
    biases = [lin.bias.detach() for lin in spec.linears]
    x, y = data.x_train[:batch], data.y_train[:batch]
    n, k = x.shape[1], cfg.k
    options = ("loss", k, "all", "linear", 0, float(k * (n - k)), cfg.kappa, cfg.lambda_gap, cfg.lambda_hess,
               True, True, False, False)
    op = torch.ops.r2et_fast.fused_mlp_objective
    rows = {
        "native op": lambda: op(x, y, weights, biases, list(spec.kinds), list(spec.params), *options),
        "op wrapper (ops.fused)": lambda: fused_mlp_objective(
            x, y, weights, biases, list(spec.kinds), list(spec.params), "loss", k, "all", "linear", None,
            float(k * (n - k)), cfg.kappa, cfg.lambda_gap, cfg.lambda_hess),
        "fused_objective forward": lambda: fused_objective(model, x, y, k=k),
        "fused_objective forward + backward": lambda: torch.autograd.grad(
            fused_objective(model, x, y, k=k)[0], params),
        "the method, forward + backward": lambda: torch.autograd.grad(method(model, x, y)[0], params),
        "one eager Vanilla step": lambda: torch.autograd.grad(
            torch.nn.functional.cross_entropy(model(x), y), params),
    }
    print(f"batch {batch}, {torch.get_num_threads()} threads (medians, us)")
    for name, fn in rows.items():
        print(f"  {name:40s} {median_us(fn):8.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 256)
