"""Shared fixtures: backends under test and numpy/scipy oracles for the ranking metrics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

import r2et_fast

BACKENDS = ["native", "reference"]


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
