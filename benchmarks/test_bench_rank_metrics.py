"""Rank metrics at B = 1024, n = 784 (float32): native kernel vs the plain-PyTorch reference vs
the per-row way research code computes them (Python sets for P@k, a loop of scipy.stats calls).

Run with ``make bench`` (or ``pytest benchmarks --benchmark-enable --benchmark-only``); the ratios
go to ``benchmarks/RESULTS.md`` via ``benchmarks/report.py``. Group = metric, name = way. On a GPU
(``make gpu-check``) the native CUDA kernels are timed against the reference on CUDA tensors, in the
groups "<metric>, cuda".
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

import r2et_fast
from benchmarks.conftest import K, on_device, timed_on

pytestmark = pytest.mark.skipif(not r2et_fast.native_available(), reason="native extension not built")


def per_row_precision_at_k(a: np.ndarray, b: np.ndarray, k: int) -> list[float]:
    return [len(set(np.argsort(-x)[:k]) & set(np.argsort(-y)[:k])) / k for x, y in zip(a, b)]


def per_row_kendall(a: np.ndarray, b: np.ndarray) -> list[float]:
    return [scipy.stats.kendalltau(x, y).statistic for x, y in zip(a, b)]


def per_row_kendall_topk(a: np.ndarray, b: np.ndarray, k: int) -> list[float]:
    out = []
    for x, y in zip(a, b):
        top = np.argsort(-x)[:k]
        out.append(scipy.stats.kendalltau(x[top], y[top]).statistic)
    return out


def per_row_spearman(a: np.ndarray, b: np.ndarray) -> list[float]:
    return [scipy.stats.spearmanr(x, y).statistic for x, y in zip(a, b)]


METRICS = {
    # metric: (torch op taking (a, b, backend=...), per-row numpy function)
    "precision_at_k": (lambda a, b, **kw: r2et_fast.precision_at_k(a, b, K, **kw),
                       lambda a, b: per_row_precision_at_k(a, b, K)),
    "kendall_tau": (r2et_fast.kendall_tau, per_row_kendall),
    "kendall_tau_topk": (lambda a, b, **kw: r2et_fast.kendall_tau_topk(a, b, K, **kw),
                         lambda a, b: per_row_kendall_topk(a, b, K)),
    "spearman": (r2et_fast.spearman, per_row_spearman),
}
# The O(n^2) Kendall reference takes seconds per call: fewer rounds keep `make bench` short.
ROUNDS = {"reference": {"kendall_tau": 2}, "per_row": {}, "native": {}}


# (way, device): the per-row numpy way runs on the CPU only.
WAYS = [pytest.param(way, device, id=f"{device}-{way}", marks=on_device(device))
        for device, ways in (("cpu", ("native", "reference", "per_row")), ("cuda", ("native", "reference")))
        for way in ways]


@pytest.mark.parametrize(("way", "device"), WAYS)
@pytest.mark.parametrize("metric", list(METRICS))
def test_rank_metric(benchmark, maps, metric, way, device):
    a, b = (t.to(device) for t in maps)
    op, per_row = METRICS[metric]
    benchmark.group = metric if device == "cpu" else f"{metric}, {device}"
    benchmark.name = way
    if way == "per_row":
        an, bn = a.numpy(), b.numpy()
        fn = lambda: per_row(an, bn)  # noqa: E731
    else:
        fn = timed_on(device, lambda: op(a, b, backend=way))
    rounds = ROUNDS[way].get(metric, 5)
    result = benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1 if rounds > 2 else 0)
    assert len(result) == a.shape[0]
