"""Hypothesis: every native op agrees with its reference twin on random shapes, dtypes, strides
and ties."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import r2et_fast
from python_tests.conftest import requires_native

pytestmark = requires_native


@st.composite
def map_pairs(draw, min_n=2):
    batch = draw(st.integers(1, 6))
    n = draw(st.integers(min_n, 80))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    levels = draw(st.sampled_from([None, 2, 5]))  # None: continuous; else that many tie levels
    layout = draw(st.sampled_from(["contiguous", "transposed", "strided"]))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)

    def sample():
        if layout == "transposed":  # same values, column-major storage
            x = torch.randn(n, batch, generator=g, dtype=dtype).t()
        elif layout == "strided":  # every other column of a wider tensor
            x = torch.randn(batch, 2 * n, generator=g, dtype=dtype)[:, ::2]
        else:
            x = torch.randn(batch, n, generator=g, dtype=dtype)
        return x if levels is None else (x * levels / 2).round()

    a, b = sample(), sample()
    k = draw(st.integers(1, n - 1))
    return a, b, k


def assert_same(native, reference):
    assert native.dtype == reference.dtype and native.shape == reference.shape
    if native.dtype == torch.int64:
        assert torch.equal(native, reference)
    else:
        tol = 1e-5 if native.dtype == torch.float32 else 1e-10
        torch.testing.assert_close(native, reference, atol=tol, rtol=tol, equal_nan=True)


def both(fn, *args):
    return fn(*args, backend="native"), fn(*args, backend="reference")


@settings(max_examples=60, deadline=None)
@given(map_pairs())
def test_ranking_ops(pair):
    a, b, k = pair
    assert_same(*both(r2et_fast.topk_indices, a, k))
    assert_same(*both(r2et_fast.ranks, a))
    assert_same(*both(r2et_fast.precision_at_k, a, b, k))
    assert_same(*both(r2et_fast.kendall_tau_topk, a, b, k))


@settings(max_examples=60, deadline=None)
@given(map_pairs())
def test_correlation_ops(pair):
    a, b, _ = pair
    for op in (r2et_fast.kendall_tau, r2et_fast.spearman, r2et_fast.pearson, r2et_fast.mse,
               r2et_fast.cosine):
        assert_same(*both(op, a, b))
