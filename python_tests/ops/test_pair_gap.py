"""The R2ET pair-gap op G_k against a brute-force loop over pairs, native vs reference, gradients
(gradcheck, gradgradcheck, double backprop through a model) and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck, gradgradcheck

import r2et_fast
from python_tests.conftest import np_order, requires_native

PAIRS = ["all", "anchor", "mm"]
TRANSFORMS = ["linear", "exp"]


def brute_force(maps: np.ndarray, k: int, pairs: str, transform: str, n_pairs: int | None) -> np.ndarray:
    """Spelled-out pairs, one row at a time (the way the spec states G_k)."""
    out = []
    n = maps.shape[1]
    for row in maps:
        order = np_order(row)
        if pairs == "all":
            chosen = list(itertools.product(order[:k], order[k:]))
        elif pairs == "anchor":
            N = k if n_pairs is None else n_pairs
            anchor = order[k - 1]
            chosen = [(order[r], anchor) for r in range(max(0, k - 1 - N), k - 1)]
            chosen += [(anchor, order[r]) for r in range(k, min(n, k + N))]
        else:
            kp = min(k, n - k) if n_pairs is None else n_pairs
            chosen = [(order[k - 1 - m], order[k + m]) for m in range(kp)]
        h = np.array([row[i] - row[j] for i, j in chosen])
        out.append(h.sum() if transform == "linear" else -np.exp(-h).sum())
    return np.array(out)


def maps_batch(batch, n, ties=False, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(batch, n, generator=g, dtype=torch.float64)
    return ((m * 2).round() / 2 if ties else m).to(dtype)


@pytest.mark.parametrize("pairs", PAIRS)
@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("n,k,n_pairs,ties", [(2, 1, None, False), (9, 1, None, True), (9, 8, None, False),
                                              (12, 4, None, True), (30, 8, 3, False), (30, 15, None, True)])
def test_matches_brute_force(backend, pairs, transform, n, k, n_pairs, ties):
    maps = maps_batch(3, n, ties)
    got = r2et_fast.topk_pair_gap(maps, k, pairs, transform, n_pairs if pairs != "all" else None,
                                  backend=backend)
    want = brute_force(maps.numpy(), k, pairs, transform, n_pairs if pairs != "all" else None)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("pairs", PAIRS)
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_gradcheck_and_gradgradcheck(backend, pairs, transform):
    maps = maps_batch(3, 10, seed=2).requires_grad_()
    fn = lambda m: r2et_fast.topk_pair_gap(m, 4, pairs, transform, backend=backend)  # noqa: E731
    assert gradcheck(fn, (maps,))
    assert gradgradcheck(fn, (maps,))


def test_exp_all_pairs_does_not_overflow(backend):
    """e^{-I_i} e^{I_j} overflows for large maps; the log-space form stays finite."""
    maps = torch.tensor([[1000.0, 999.5, 999.0, 998.0]], dtype=torch.float64)
    got = r2et_fast.topk_pair_gap(maps, 2, "all", "exp", backend=backend)
    want = brute_force(maps.numpy(), 2, "all", "exp", None)
    assert torch.isfinite(got).all()
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


@requires_native
@pytest.mark.parametrize("pairs", PAIRS)
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_double_backprop_through_a_model_matches_reference(pairs, transform):
    """The R2ET use: d G_k(saliency(x; w)) / d w, which differentiates the explanation again."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.Softplus(beta=5),
                                torch.nn.Linear(16, 2)).double()
    x = torch.randn(5, 12, dtype=torch.float64, requires_grad=True)
    grads = {}
    for backend in ("native", "reference"):
        logit = model(x)[:, 1].sum()
        (sal,) = torch.autograd.grad(logit, x, create_graph=True)
        gap = r2et_fast.topk_pair_gap(sal.abs(), 4, pairs, transform, backend=backend).sum()
        # the output bias does not move the saliency: it gets no gradient (None)
        grads[backend] = torch.autograd.grad(gap, list(model.parameters()), allow_unused=True)
    for a, b in zip(grads["native"], grads["reference"]):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b)
    assert any(g is not None and g.abs().sum() > 0 for g in grads["native"])


@requires_native
@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 40), data=st.data(), dtype=st.sampled_from([torch.float32, torch.float64]),
       ties=st.booleans(), strided=st.booleans(), pairs=st.sampled_from(PAIRS),
       transform=st.sampled_from(TRANSFORMS), seed=st.integers(0, 2**31 - 1))
def test_native_matches_reference_fuzz(n, data, dtype, ties, strided, pairs, transform, seed):
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


def test_bad_input(backend):
    maps = maps_batch(2, 6)
    call = lambda *a, **kw: r2et_fast.topk_pair_gap(*a, backend=backend, **kw)  # noqa: E731
    with pytest.raises(ValueError, match="pairs must be one of"):
        call(maps, 2, "some")
    with pytest.raises(ValueError, match="transform must be one of"):
        call(maps, 2, "all", "log")
    with pytest.raises(ValueError, match="n_pairs must satisfy"):
        call(maps, 2, "mm", n_pairs=3)
    with pytest.raises(ValueError, match="n_pairs must be positive"):
        call(maps, 2, "anchor", n_pairs=0)
    with pytest.raises(ValueError, match="k must satisfy"):
        call(maps, 6)
    bad = maps.clone()
    bad[1, 1] = float("nan")
    with pytest.raises(ValueError, match="maps contains NaN or Inf"):
        call(bad, 2)
    with pytest.raises(TypeError, match="maps must be float32 or float64"):
        call(maps.half(), 2)
    with pytest.raises(ValueError, match="maps must be a 2-D"):
        call(maps[0], 2)


@requires_native
def test_cpp_layer_rejects_bad_options():
    op = torch.ops.r2et_fast.topk_pair_gap
    maps = maps_batch(2, 6)
    with pytest.raises(ValueError, match="pairs must be one of"):
        op(maps, 2, "some", "linear", 0)
    with pytest.raises(ValueError, match="transform must be"):
        op(maps, 2, "all", "cubic", 0)
    with pytest.raises(ValueError, match="n_pairs must satisfy"):
        op(maps, 2, "mm", "linear", 5)
    with pytest.raises(ValueError, match="n_pairs must be >= 1"):
        op(maps, 2, "anchor", "linear", 0)
    with pytest.raises(ValueError, match="k must satisfy"):
        op(maps, 0, "all", "linear", 0)
    inf = maps.clone()
    inf[0, 0] = float("inf")
    with pytest.raises(ValueError, match="maps contains NaN or Inf"):
        op(inf, 2, "all", "linear", 0)
