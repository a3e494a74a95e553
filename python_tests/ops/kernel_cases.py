"""Inputs and comparisons shared by the tests of the native kernels on every device: random maps
(with ties on request), non-contiguous views of them, and tolerances for comparing a kernel's
result with its twin's (computed on CPU copies) or with the CPU kernel's."""

from __future__ import annotations

import torch

DTYPES = (torch.float32, torch.float64)


def native(op: str):
    return getattr(torch.ops.r2et_fast, op)


def maps(batch: int, n: int, dtype: torch.dtype, seed: int, ties: bool) -> torch.Tensor:
    """Random (batch, n) maps on the CPU; with ``ties``, values on a coarse grid repeat (and the
    grid includes both -0.0 and +0.0, which must tie)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n, generator=gen, dtype=torch.float64)
    if ties:
        x = torch.round(x * 2) / 2
    return x.to(dtype)


def non_contiguous(x: torch.Tensor, how: int, device: str) -> torch.Tensor:
    """A non-contiguous view on ``device`` equal to x: every other column of a wider tensor
    (how=0) or a transpose (how=1)."""
    if how == 0:
        wide = torch.zeros(x.shape[0], 2 * x.shape[1], dtype=x.dtype, device=device)
        wide[:, ::2] = x.to(device)
        view = wide[:, ::2]
    else:
        view = x.t().contiguous().to(device).t()
    assert not view.is_contiguous() or x.shape[0] == 1 or x.shape[1] == 1
    return view


def layouts(x: torch.Tensor, device: str) -> list[torch.Tensor]:
    """x on ``device``: contiguous, strided and transposed."""
    return [x.to(device), non_contiguous(x, 0, device), non_contiguous(x, 1, device)]


def k_values(n: int) -> list[int]:
    return sorted({1, n - 1, max(1, n // 3)})


def assert_matches(got: torch.Tensor, expected: torch.Tensor) -> None:
    """Same dtype and shape; int64 exactly, floats to a few ulps of the dtype."""
    got = got.cpu()
    assert got.dtype == expected.dtype and got.shape == expected.shape
    if expected.dtype == torch.int64:
        assert torch.equal(got, expected)
    elif expected.dtype == torch.float64:
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-10, equal_nan=True)
    else:
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6, equal_nan=True)


def assert_close_to(got: torch.Tensor, want64: torch.Tensor, dtype: torch.dtype,
                    scale: float = 1.0) -> None:
    """got (in dtype, on any device) against an expectation computed in float64 from the same
    values. The kernels accumulate in double, so float32 results are off by their final rounding;
    ``scale`` bounds the terms summed into one result, for the absolute error of cancelling sums
    (and of the float32 atomics that add several terms into one entry of the pair-gap backward)."""
    got = got.cpu()
    assert got.dtype == dtype and got.shape == want64.shape
    if dtype == torch.float64:
        torch.testing.assert_close(got, want64, rtol=1e-12, atol=max(1e-10, 4e-15 * scale))
    else:
        torch.testing.assert_close(got.double(), want64, rtol=2e-6, atol=max(1e-6, 1e-6 * scale))


def assert_same_rows_as_sets(got: torch.Tensor, want: torch.Tensor) -> None:
    got = got.cpu()
    assert got.dtype == torch.int64 and got.shape == want.shape
    assert torch.equal(got.sort(dim=1).values, want.sort(dim=1).values)
