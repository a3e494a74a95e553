"""Hypothesis: every native op agrees with its reference twin on random shapes, dtypes, strides
and ties. Skipped where hypothesis is not installed (the other op tests do not need it).

``make test`` draws a few hundred examples in all; ``make fuzz`` sets R2ET_FAST_FUZZ_EXAMPLES
(10,000 per test) for the deep profile."""

from __future__ import annotations

import os

import pytest
import torch

import r2et_fast
from python_tests.conftest import requires_native
from python_tests.ops.test_pair_agreement import make_maps, top_sets
from python_tests.ops.test_pair_gap import PAIRS, TRANSFORMS, maps_batch
from python_tests.ops.test_projected_step import case, within
from r2et_fast._validation import NORMS

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies
given, settings = hypothesis.given, hypothesis.settings

pytestmark = requires_native
# The deep profile's example count per test; unset, each test keeps its own small count.
DEEP = int(os.environ.get("R2ET_FAST_FUZZ_EXAMPLES", "0"))


def examples(n: int) -> int:
    return max(n, DEEP)


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


@settings(max_examples=examples(60), deadline=None)
@given(map_pairs())
def test_ranking_ops(pair):
    a, b, k = pair
    assert_same(*both(r2et_fast.topk_indices, a, k))
    assert_same(*both(r2et_fast.ranks, a))
    assert_same(*both(r2et_fast.precision_at_k, a, b, k))
    assert_same(*both(r2et_fast.kendall_tau_topk, a, b, k))


@settings(max_examples=examples(60), deadline=None)
@given(map_pairs())
def test_correlation_ops(pair):
    a, b, _ = pair
    for op in (r2et_fast.kendall_tau, r2et_fast.spearman, r2et_fast.pearson, r2et_fast.mse,
               r2et_fast.cosine):
        assert_same(*both(op, a, b))


@settings(max_examples=examples(30), deadline=None)
@given(n=st.integers(60, 1300), levels=st.sampled_from([None, 3, 50]), zeros=st.booleans(),
       sign=st.sampled_from([1.0, -1.0]), seed=st.integers(0, 2**31 - 1))
def test_long_rows_float32_counts_match_float64(n, levels, zeros, sign, seed):
    """Rows past the fuzz sizes above, where float32 Kendall tau takes the radix + bitset path
    (n >= 256) and Spearman the int64 sums: equal to the float64 kernel (std::sort + merge count)
    on the same values, exactly, and T_k / P@k equal to the twin."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(2, n, generator=g)
    b = sign * a + torch.randn(2, n, generator=g)
    if levels is not None:
        a, b = (a * levels / 4).round(), (b * levels / 4).round()
    if zeros:
        a[:, ::7], b[:, 1::5] = -0.0, 0.0
    for op in (r2et_fast.kendall_tau, r2et_fast.spearman):
        want = op(a.double(), b.double(), backend="native").float()
        torch.testing.assert_close(op(a, b, backend="native"), want, rtol=0, atol=0, equal_nan=True)
    for k in (1, 8, 16):
        assert_same(*both(r2et_fast.topk_indices, a, k))
        assert_same(*both(r2et_fast.precision_at_k, a, b, k))


@settings(max_examples=examples(50), deadline=None)
@given(n=st.integers(2, 40), data=st.data(), dtype=st.sampled_from([torch.float32, torch.float64]),
       ties=st.booleans(), strided=st.booleans(), pairs=st.sampled_from(PAIRS),
       transform=st.sampled_from(TRANSFORMS), seed=st.integers(0, 2**31 - 1))
def test_pair_gap(n, data, dtype, ties, strided, pairs, transform, seed):
    k = data.draw(st.integers(1, n - 1))
    n_pairs = None
    if pairs == "anchor":
        n_pairs = data.draw(st.integers(1, n))
    elif pairs == "mm":
        n_pairs = data.draw(st.integers(1, min(k, n - k)))
    batch = data.draw(st.integers(1, 5))
    maps = maps_batch(batch, 2 * n if strided else n, ties, seed, dtype)
    maps = (maps[:, ::2] if strided else maps).requires_grad_()
    outs, grads = [], []
    for backend in ("native", "reference"):
        out = r2et_fast.topk_pair_gap(maps, k, pairs, transform, n_pairs, backend=backend)
        outs.append(out)
        grads.append(torch.autograd.grad(out.sum(), maps)[0])
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(outs[0], outs[1], **tol)
    torch.testing.assert_close(grads[0], grads[1], **tol)


@settings(max_examples=examples(60), deadline=None)
@given(batch=st.integers(1, 5), n=st.integers(1, 40), dtype=st.sampled_from([torch.float32, torch.float64]),
       step_norm=st.sampled_from(NORMS), norm=st.sampled_from(NORMS), alpha=st.floats(0, 1),
       eps=st.floats(0, 1), seed=st.integers(0, 2**31 - 1), box=st.booleans())
def test_projected_step(batch, n, dtype, step_norm, norm, alpha, eps, seed, box):
    x, grad, x0 = case((batch, n), seed, dtype)
    kw = dict(step_norm=step_norm, norm=norm, lower=0.0 if box else None, upper=1.0 if box else None)
    out = r2et_fast.projected_step(x, grad, x0, alpha, eps, backend="native", **kw)
    ref = r2et_fast.projected_step(x, grad, x0, alpha, eps, backend="reference", **kw)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out, ref, atol=tol, rtol=tol)
    assert within(out.double(), x0.double(), eps, norm, -float("inf") if not box else 0.0,
                  float("inf") if not box else 1.0, tol=1e-6 if dtype == torch.float32 else 1e-12)


@st.composite
def agreement_cases(draw):
    batch = draw(st.integers(1, 5))
    n = draw(st.integers(2, 60))
    k = draw(st.integers(1, n - 1))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    ties = draw(st.booleans())
    layout = draw(st.sampled_from(["contiguous", "transposed", "strided"]))
    seed = draw(st.integers(0, 2**31 - 1))
    which = draw(st.sampled_from(["own", "other", "random", "strided"]))
    maps = make_maps(batch, n, dtype, ties, layout, seed)
    return maps, top_sets(maps, k, seed)[which]


@settings(max_examples=examples(80), deadline=None)
@given(agreement_cases())
def test_pair_agreement(case):
    maps, top = case
    native = r2et_fast.topk_pair_agreement(maps, top, backend="native")
    reference = r2et_fast.topk_pair_agreement(maps, top, backend="reference")
    assert native.dtype == reference.dtype == maps.dtype
    assert torch.equal(native, reference)  # exact integer counts, the same division
