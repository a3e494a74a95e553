"""Shared fixtures: backends and devices under test, and numpy/scipy oracles for the ranking
metrics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

import r2et_fast
from r2et_fast._ops import has_kernel
from r2et_fast.ops._table import DEVICES, names

BACKENDS = ["native", "reference"]
NO_GPU = "needs a CUDA GPU (torch.cuda.is_available() is False)"


def backend_param(name: str):
    marks = []
    if name == "native" and not r2et_fast.native_available():
        marks.append(pytest.mark.skip(reason="native extension not built"))
    return pytest.param(name, marks=marks)


@pytest.fixture(params=[backend_param(b) for b in BACKENDS])
def backend(request) -> str:
    return request.param


requires_native = pytest.mark.skipif(
    not r2et_fast.native_available(), reason="native extension not built"
)


# ---- devices: the native kernels of every device of the ops table ----------------------------

def device_param(name: str):
    """``name`` as a test parameter; "cuda" is marked ``cuda`` and skipped without a GPU."""
    if name == "cuda":
        return pytest.param(name, id=name, marks=[pytest.mark.cuda,
                                                  pytest.mark.skipif(not torch.cuda.is_available(),
                                                                     reason=NO_GPU)])
    return pytest.param(name, id=name)


def require_kernels(device: str) -> None:
    """Skip on the CPU without the extension; fail where a GPU is visible but the extension or a
    CUDA kernel is missing, since that is a broken build rather than a missing device."""
    if not r2et_fast.native_available():
        if device == "cuda":
            pytest.fail("a CUDA GPU is visible but the r2et_fast extension is not loaded")
        pytest.skip("native extension not built")
    missing = [op for op in names() if not has_kernel(op, device)]
    if missing:
        pytest.fail(f"the extension was built without {device} kernels for {missing}")


@pytest.fixture(params=[device_param(d) for d in DEVICES])
def device(request) -> str:
    """Every device of the ops table; tests using it exercise that device's native kernels."""
    require_kernels(request.param)
    return request.param


@pytest.fixture(params=[device_param("cuda")])
def cuda_device(request) -> str:
    """For what only a GPU can show: CUDA streams, tensors on two devices."""
    require_kernels(request.param)
    return request.param


# ---- numpy / scipy oracles, one row at a time (the way research code computes them) ----------

def np_order(row: np.ndarray) -> np.ndarray:
    """Best first; numpy's stable sort keeps the lower index first among ties."""
    return np.argsort(-row, kind="stable")


def np_topk(x: np.ndarray, k: int) -> np.ndarray:
    return np.stack([np_order(r)[:k] for r in x])


def np_ranks(x: np.ndarray) -> np.ndarray:
    return np.stack([np.argsort(np_order(r), kind="stable") for r in x])


def np_precision_at_k(a, b, k):
    return np.array([len(set(np_order(x)[:k]) & set(np_order(y)[:k])) / k for x, y in zip(a, b)])


def np_kendall(a, b):
    return np.array([scipy.stats.kendalltau(x, y).statistic for x, y in zip(a, b)])


def np_kendall_topk(a, b, k):
    out = []
    for x, y in zip(a, b):
        top = np_order(x)[:k]
        out.append(scipy.stats.kendalltau(x[top], y[top]).statistic if k > 1 else np.nan)
    return np.array(out)


def np_spearman(a, b):
    return np.array([scipy.stats.spearmanr(x, y).statistic for x, y in zip(a, b)])


def np_pearson(a, b):
    return np.array([scipy.stats.pearsonr(x, y).statistic for x, y in zip(a, b)])


def np_mse(a, b):
    return ((a - b) ** 2).mean(axis=1)


def np_cosine(a, b):
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# ---- the slow marker: deselected unless the run asks for it (``-m slow``) ----------------------

def pytest_collection_modifyitems(config, items):
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _cpu_unless_marked_cuda(request):
    """``device="auto"`` (the default of TrainConfig and the CLI) means the CPU in every test but
    those marked ``cuda``: on a GPU machine the CPU suite stays the CPU suite."""
    from r2et_fast._device import auto_means

    if request.node.get_closest_marker("cuda") is not None:
        yield
        return
    with auto_means("cpu"):
        yield
