"""topk_pair_agreement: the native kernel of every device, its reference twin and a brute-force
double loop agree (ties, k = 1 and n - 1, both dtypes, any strides, B = 1); bad input raises a
ValueError/TypeError naming the argument, from the C++ op on every device and from the Python
wrapper."""

from __future__ import annotations

import pytest
import torch

from python_tests.conftest import requires_native
from python_tests.ops.kernel_cases import layouts
from r2et_fast.ops import topk_pair_agreement
from r2et_fast.reference.thickness import topk_pair_agreement as twin


def brute_force(maps: torch.Tensor, top: torch.Tensor) -> list[float]:
    """The definition, one pair at a time."""
    out = []
    for row, members in zip(maps.tolist(), top.tolist()):
        rest = [j for j in range(len(row)) if j not in members]
        hits = sum(row[i] >= row[j] for i in members for j in rest)
        out.append(hits / (len(members) * len(rest)))
    return out


def make_maps(batch, n, dtype, ties, layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    if layout == "transposed":
        x = torch.randn(n, batch, generator=g, dtype=dtype).t()
    elif layout == "strided":
        x = torch.randn(batch, 2 * n, generator=g, dtype=dtype)[:, ::2]
    else:
        x = torch.randn(batch, n, generator=g, dtype=dtype)
    return (x * 2).round() if ties else x


def top_sets(maps, k, seed=0):
    """T_k of the maps themselves, of other maps, and random distinct sets (non-contiguous too)."""
    g = torch.Generator().manual_seed(seed + 1)
    batch, n = maps.shape
    other = torch.randn(batch, n, generator=g, dtype=maps.dtype).round()
    rand = torch.stack([torch.randperm(n, generator=g)[:k] for _ in range(batch)])
    wide = torch.stack([torch.randperm(n, generator=g)[:k] for _ in range(batch)]).repeat_interleave(2, 1)
    return {
        "own": torch.topk(maps, k, dim=1).indices,
        "other": torch.topk(other, k, dim=1).indices,
        "random": rand,
        "strided": wide[:, ::2],
    }


def check_all(maps, top):
    expected = torch.tensor(brute_force(maps, top), dtype=torch.float64)
    tol = 1e-6 if maps.dtype == torch.float32 else 1e-12
    ref = topk_pair_agreement(maps, top, backend="reference")
    assert ref.dtype == maps.dtype and ref.shape == (maps.shape[0],)
    torch.testing.assert_close(ref.double(), expected, atol=tol, rtol=0)
    torch.testing.assert_close(twin(maps, top).double(), expected, atol=tol, rtol=0)
    return expected


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("batch,n,k", [(1, 2, 1), (4, 9, 1), (4, 9, 4), (4, 9, 8), (3, 40, 7),
                                       (2, 300, 299)])
def test_matches_brute_force(dtype, layout, ties, batch, n, k, backend):
    maps = make_maps(batch, n, dtype, ties, layout, seed=n + k)
    for name, top in top_sets(maps, k, seed=n).items():
        expected = check_all(maps, top)
        got = topk_pair_agreement(maps, top, backend=backend)
        assert got.dtype == dtype and got.shape == (batch,)
        # Counts are exact: both backends produce the same rounded fraction.
        torch.testing.assert_close(got.double(), expected, atol=1e-6 if dtype == torch.float32 else 0,
                                   rtol=0, msg=name)
        if name == "own":
            assert bool((got == 1).all())  # T_k of the map itself: every pair holds


def test_ties_count_as_satisfied(backend):
    maps = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, -0.0, 0.0, -0.0], [2.0, 1.0, 2.0, 0.0]])
    top = torch.tensor([[3, 0], [1, 3], [1, 3]])
    got = topk_pair_agreement(maps, top, backend=backend)
    # Row 3: top {1.0, 0.0} vs rest {2.0, 2.0}: no pair holds.
    torch.testing.assert_close(got, torch.tensor([1.0, 1.0, 0.0]))
    assert brute_force(maps, top) == got.tolist()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=("float32", "float64"))
def test_kernel_matches_brute_force_on_device(device, dtype):
    """Every layout of maps and of top on the device: the same exact counts as the brute force."""
    for batch, n, k in ((1, 2, 1), (4, 9, 4), (3, 40, 1), (3, 40, 39), (2, 300, 17), (64, 784, 50)):
        for ties in (False, True):
            cpu_maps = make_maps(batch, n, dtype, ties, "contiguous", seed=n + k)
            for maps in layouts(cpu_maps, device):
                for name, top in top_sets(cpu_maps, k, seed=n).items():
                    if n > 40:  # the brute force is O(k n) Python per row: the twin instead
                        expected = twin(cpu_maps, top).double()
                    else:
                        expected = torch.tensor(brute_force(cpu_maps, top), dtype=torch.float64)
                    got = torch.ops.r2et_fast.topk_pair_agreement(maps, top.to(device))
                    assert got.device.type == device and got.dtype == dtype, name
                    # exact counts: the fraction to the rounding of the dtype
                    torch.testing.assert_close(got.cpu().double(), expected, rtol=0,
                                               atol=1e-6 if dtype == torch.float32 else 0,
                                               msg=f"{batch} {n} {k} {ties} {name}")


@requires_native
def test_native_op_direct():
    maps = make_maps(5, 33, torch.float64, True, "contiguous")
    top = top_sets(maps, 6)["random"]
    expected = torch.tensor(brute_force(maps, top), dtype=torch.float64)
    torch.testing.assert_close(torch.ops.r2et_fast.topk_pair_agreement(maps, top), expected,
                               atol=0, rtol=0)
    assert torch.ops.r2et_fast.topk_pair_agreement(maps, top).grad_fn is None


def test_not_differentiable():
    maps = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    out = topk_pair_agreement(maps, torch.tensor([[0, 1], [2, 3]]))
    assert not out.requires_grad


# ---- bad input ---------------------------------------------------------------------------------

def good(batch=3, n=10, dtype=torch.float64):
    return torch.randn(batch, n, dtype=dtype)


def good_top(batch=3, k=3):
    return torch.arange(k).repeat(batch, 1)


def bad_cases():
    nan, inf = good(), good()
    nan[1, 2] = float("nan")
    inf[2, 9] = float("-inf")
    dup = good_top()
    dup[1, 2] = dup[1, 0]
    return [
        (nan, good_top(), ValueError, "maps contains NaN or Inf"),
        (inf, good_top(), ValueError, "maps contains NaN or Inf"),
        (good(), torch.tensor([[0, 1, 10]] * 3), ValueError, r"top contains an index out of range \[0, 10\)"),
        (good(), torch.tensor([[0, -1, 2]] * 3), ValueError, "top contains an index out of range"),
        (good(), dup, ValueError, "top contains duplicate indices"),
        # out of range wins over duplicates, and both over NaN (same order on every backend)
        (nan, torch.tensor([[0, 0, 10]] * 3), ValueError, "top contains an index out of range"),
        (nan, dup, ValueError, "top contains duplicate indices"),
        (good(), good_top().double(), TypeError, "top must be int64"),
        (good(), good_top().int(), TypeError, "top must be int64"),
        (good(), good_top(batch=4), ValueError, r"top must have shape \(B, k\)"),
        (good(), good_top()[0], ValueError, r"top must have shape \(B, k\)"),
        (good(), good_top(k=0), ValueError, "top must have k columns"),
        (good(), torch.arange(10).repeat(3, 1), ValueError, "top must have k columns"),
        (good()[0], good_top(), ValueError, "maps must be a 2-D"),
        (good().long(), good_top(), TypeError, "maps must be float32 or float64"),
        (good().half(), good_top(), TypeError, "maps must be float32 or float64"),
        (good(n=1), good_top(k=1), ValueError, "maps needs at least 2 features"),
        (good(batch=0), good_top(batch=0), ValueError, "maps has an empty batch"),
    ]


@pytest.mark.parametrize("maps,top,exc,pattern", bad_cases())
def test_bad_input_wrapper(maps, top, exc, pattern, backend):
    with pytest.raises(exc, match=pattern):
        topk_pair_agreement(maps, top, backend=backend)


@pytest.mark.parametrize("maps,top,exc,pattern", bad_cases())
def test_bad_input_native_op(device, maps, top, exc, pattern):
    with pytest.raises(exc, match=pattern):
        torch.ops.r2et_fast.topk_pair_agreement(maps.to(device), top.to(device))


def test_mixed_devices_native_op(cuda_device):
    with pytest.raises(ValueError, match="maps and top must be on the same device"):
        torch.ops.r2et_fast.topk_pair_agreement(good().cuda(), good_top())


def test_bad_input_wrapper_only():
    with pytest.raises(TypeError, match="maps must be a torch.Tensor"):
        topk_pair_agreement([[1.0, 2.0]], good_top(1, 1))
    with pytest.raises(TypeError, match="top must be a torch.Tensor"):
        topk_pair_agreement(good(), [[0, 1, 2]] * 3)
    with pytest.raises(ValueError, match="same device"):
        topk_pair_agreement(good(), good_top().to("meta"))
    with pytest.raises(ValueError, match="backend must be one of"):
        topk_pair_agreement(good(), good_top(), backend="gpu")
