"""xi_max of the saliency's input Hessian for a small MNIST-like softplus CNN (n = 784, batch 8).

- native: ``r2et_fast.bounds.top_singular`` - batched Lanczos on Hessian-vector products, each one
  backward pass through a graph built once (float32 tolerance 1e-3 on the Ritz residual);
- reference: the honest plain-PyTorch route - the full Hessian by batched HVPs (autograd's vmap,
  ``is_grads_batched``, 64 unit vectors at a time; faster here than ``torch.func.vmap`` over
  ``jvp(grad)``), then ``torch.linalg.svdvals``.

The floor, in Hessian-vector products per batch: the reference needs n = 784 (all of H) plus B
SVDs of 784 x 784; Lanczos needs one per iteration, about 15-25 here (``extra_info``). The
relative error of xi_max against the reference is asserted (<= 1 %), not the time.
Group = workload, name = way.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from r2et_fast.bounds import attribution_jacobian, top_singular

BATCH = 8
GROUP = "xi_max of the saliency Hessian, MNIST-like CNN, n = 784, batch 8"


class MnistCNN(nn.Module):
    """Conv(1->8, 3) -> MaxPool 2 -> softplus -> Conv(8->16, 5) -> MaxPool 3 -> softplus ->
    144 -> 64 -> 32 -> 10 (softplus between), the paper's image architecture on one input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 8, 3), nn.Conv2d(8, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(144, 64), nn.Linear(64, 32), nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.softplus(F.max_pool2d(self.conv1(x), 2))
        x = F.softplus(F.max_pool2d(self.conv2(x), 3))
        x = F.softplus(self.fc1(x.flatten(1)))
        return self.fc3(F.softplus(self.fc2(x)))


def lanczos(model, x):
    return top_singular(model, x, "saliency")


def reference(model, x):
    return torch.linalg.svdvals(attribution_jacobian(model, x, "saliency", chunk_size=64))[:, 0]


@pytest.fixture(scope="module")
def workload():
    torch.manual_seed(0)
    model = MnistCNN().eval()
    x = torch.rand(BATCH, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    return model, x, reference(model, x)


@pytest.mark.parametrize("way", ["native", "reference"])
def test_xi_max(benchmark, workload, way):
    model, x, xi_ref = workload
    benchmark.group = GROUP
    benchmark.name = way
    if way == "native":
        res = benchmark.pedantic(lambda: lanczos(model, x), rounds=10, iterations=1, warmup_rounds=1)
        xi = res.xi_max
        benchmark.extra_info["lanczos_iterations_max"] = int(res.iterations.max())
        assert bool(res.converged.all())
    else:
        xi = benchmark.pedantic(lambda: reference(model, x), rounds=3, iterations=1, warmup_rounds=0)
    rel = float(((xi - xi_ref).abs() / xi_ref).max())
    benchmark.extra_info["max_relative_error"] = rel
    assert rel <= 0.01
