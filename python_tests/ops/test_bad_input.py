"""Bad input raises a clear ValueError/TypeError naming the argument, on both backends and when the
C++ ops are called directly (never a crash, never garbage)."""

from __future__ import annotations

import pytest
import torch

import r2et_fast

PAIR_OPS = ["kendall_tau", "spearman", "pearson", "mse", "cosine"]
PAIR_K_OPS = ["precision_at_k", "kendall_tau_topk"]


def good(batch=3, n=10, dtype=torch.float64):
    return torch.randn(batch, n, dtype=dtype)


def call(name, a, b=None, k=None, backend=None):
    fn = getattr(r2et_fast, name)
    args = [a] + ([b] if b is not None else []) + ([k] if k is not None else [])
    return fn(*args, backend=backend) if backend else fn(*args)


def pair_cases():
    """(op, a, b, k, exception, pattern) for every pair op."""
    cases = []
    for name in PAIR_OPS + PAIR_K_OPS:
        k = 3 if name in PAIR_K_OPS else None
        nan = good()
        nan[1, 2] = float("nan")
        inf = good()
        inf[0, 0] = float("inf")
        cases += [
            (name, nan, good(), k, ValueError, "a contains NaN or Inf"),
            (name, good(), inf, k, ValueError, "b contains NaN or Inf"),
            (name, good()[0], good(), k, ValueError, "a must be a 2-D"),
            (name, good(), good(4, 10), k, ValueError, "same shape"),
            (name, good(), good(3, 11), k, ValueError, "same shape"),
            (name, good().long(), good().long(), k, TypeError, "a must be float32 or float64"),
            (name, good().half(), good().half(), k, TypeError, "a must be float32 or float64"),
            (name, good(), good(dtype=torch.float32), k, TypeError, "same dtype"),
            (name, good(0, 10), good(0, 10), k, ValueError, "a has an empty batch"),
            (name, good(), good().to("meta"), k, ValueError, "same device"),
            (name, [[1.0, 2.0]], good(), k, TypeError, "a must be a torch.Tensor"),
        ]
    for name in PAIR_K_OPS:
        cases += [
            (name, good(), good(), 0, ValueError, "k must satisfy"),
            (name, good(), good(), -1, ValueError, "k must satisfy"),
            (name, good(), good(), 10, ValueError, "k must satisfy"),
            (name, good(), good(), 2.5, TypeError, "k must be an int"),
        ]
    return cases


@pytest.mark.parametrize("name,a,b,k,exc,pattern", pair_cases())
def test_pair_ops_reject(backend, name, a, b, k, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call(name, a, b, k, backend=backend)


@pytest.mark.parametrize("name", ["topk_indices", "ranks"])
def test_single_map_ops_reject(backend, name):
    k = 2 if name == "topk_indices" else None
    nan = good()
    nan[0, 1] = float("nan")
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        call(name, nan, k=k, backend=backend)
    with pytest.raises(ValueError, match="x must be a 2-D"):
        call(name, good()[None], k=k, backend=backend)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        call(name, good().to(torch.bfloat16), k=k, backend=backend)
    with pytest.raises(ValueError, match="x has an empty batch"):
        call(name, good(0, 5), k=k, backend=backend)
    if k is not None:
        with pytest.raises(ValueError, match="k must satisfy"):
            call(name, good(), k=10, backend=backend)


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="backend must be one of"):
        r2et_fast.mse(good(), good(), backend="fast")


# ---- the C++ layer itself, on every device: same exceptions, no Python checks in front of it ----

@pytest.mark.parametrize("name", PAIR_OPS + PAIR_K_OPS)
def test_cpp_layer_rejects(device, name):
    op = getattr(torch.ops.r2et_fast, name)
    extra = [3] if name in PAIR_K_OPS else []

    def on(*tensors):
        return [t.to(device) for t in tensors]

    for bad_value in (float("nan"), float("inf")):
        bad = good()
        bad[2, 9] = bad_value
        with pytest.raises(ValueError, match="a contains NaN or Inf"):
            op(*on(bad, good()), *extra)
        with pytest.raises(ValueError, match="b contains NaN or Inf"):
            op(*on(good(), bad), *extra)
    with pytest.raises(ValueError, match="same shape"):
        op(*on(good(), good(2, 10)), *extra)
    with pytest.raises(ValueError, match="same shape"):
        op(*on(good(), good(3, 5)), *extra)
    with pytest.raises(ValueError, match="a must be a 2-D"):
        op(*on(good()[0], good()[0]), *extra)
    with pytest.raises(TypeError, match="a must be float32 or float64"):
        op(*on(good().int(), good().int()), *extra)
    with pytest.raises(TypeError, match="a must be float32 or float64"):
        op(*on(good().half(), good().half()), *extra)
    with pytest.raises(TypeError, match="same dtype"):
        op(*on(good(), good().float()), *extra)
    with pytest.raises(ValueError, match="empty batch"):
        op(*on(good(0, 10), good(0, 10)), *extra)
    if extra:
        for k in (0, 10, 11):
            with pytest.raises(ValueError, match="k must satisfy"):
                op(*on(good(), good()), k)


def test_cpp_layer_rejects_single_map(device):
    ops = torch.ops.r2et_fast
    x = good().to(device)
    with pytest.raises(ValueError, match="k must satisfy"):
        ops.topk_indices(x, 0)
    with pytest.raises(ValueError, match="k must satisfy"):
        ops.topk_indices(x, 10)
    with pytest.raises(ValueError, match="x needs at least 2 features"):
        ops.topk_indices(good(2, 1).to(device), 1)
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.ranks(x.half())
    for bad_value in (float("nan"), float("inf")):
        bad = x.clone()
        bad[1, 3] = bad_value
        with pytest.raises(ValueError, match="x contains NaN or Inf"):
            ops.ranks(bad)
        with pytest.raises(ValueError, match="x contains NaN or Inf"):
            ops.topk_indices(bad, 3)


def test_cpp_layer_rejects_mixed_devices(cuda_device):
    a, b = good(2, 10), good(2, 10)
    for ga, gb in ((a.cuda(), b), (a, b.cuda())):
        for name in PAIR_OPS + PAIR_K_OPS:
            extra = [3] if name in PAIR_K_OPS else []
            with pytest.raises(ValueError, match="a and b must be on the same device"):
                getattr(torch.ops.r2et_fast, name)(ga, gb, *extra)
