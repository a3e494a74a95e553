"""Metric callables: flattening, hyper-parameters in __init__, agreement with the ops."""

from __future__ import annotations

import pytest
import torch

import r2et_fast
from r2et_fast import metrics


def test_callables_match_ops_on_image_shaped_maps(backend):
    a = torch.rand(4, 1, 6, 6, dtype=torch.float64)
    b = a + 0.1 * torch.rand(4, 1, 6, 6, dtype=torch.float64)
    fa, fb = a.flatten(1), b.flatten(1)
    got = metrics.rank_metrics(a, b, k=5, backend=backend)
    assert set(got) == {cls.name for cls in metrics.SIMILARITY_METRICS}
    torch.testing.assert_close(got["precision_at_k"], r2et_fast.precision_at_k(fa, fb, 5))
    torch.testing.assert_close(got["kendall_tau"], r2et_fast.kendall_tau(fa, fb))
    torch.testing.assert_close(got["kendall_tau_topk"], r2et_fast.kendall_tau_topk(fa, fb, 5))
    for name in ("spearman", "pearson", "mse", "cosine"):
        torch.testing.assert_close(got[name], getattr(r2et_fast, name)(fa, fb))
    assert all(v.shape == (4,) for v in got.values())


def test_hyper_parameters_are_checked_at_construction():
    with pytest.raises(ValueError, match="k must be positive"):
        metrics.PrecisionAtK(0)
    with pytest.raises(TypeError, match="k must be an int"):
        metrics.KendallTauTopK(2.0)
    assert "k=3" in repr(metrics.PrecisionAtK(3))


def test_data_errors_name_the_argument():
    with pytest.raises(ValueError, match="a must be a batch"):
        metrics.Cosine()(torch.ones(3), torch.ones(3))
    with pytest.raises(TypeError, match="b must be a torch.Tensor"):
        metrics.MSE()(torch.ones(2, 3), None)
    with pytest.raises(ValueError, match="k must satisfy"):
        metrics.PrecisionAtK(9)(torch.rand(2, 3, 3), torch.rand(2, 3, 3))
