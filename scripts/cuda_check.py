"""Checks a CUDA build of the r2et_fast extension.

Usage: ``python scripts/cuda_check.py BUILD_LIB_DIR``.

Loads ``BUILD_LIB_DIR/r2et_fast/_C*.so`` and asserts that every op has a CPU and a CUDA kernel. On a
machine without a GPU that proves the CUDA code compiled and linked; with a GPU it also runs every
op on small random CUDA inputs (with ties) and compares with the CPU kernel in float64.
"""

from __future__ import annotations

import glob
import os
import sys

import torch

OPS = ("topk_indices", "ranks", "precision_at_k", "kendall_tau", "kendall_tau_topk", "spearman",
       "pearson", "mse", "cosine")
ATOL = 1e-10


def _inputs(op: str, gen: torch.Generator) -> tuple:
    """Small float64 inputs for ``op``, rounded so that rows contain ties; the last row of a is
    constant (undefined correlations: NaN must agree too)."""
    rows, n = 5, 37
    a = torch.round(torch.randn(rows, n, generator=gen, dtype=torch.float64) * 3) / 3
    b = torch.round(torch.randn(rows, n, generator=gen, dtype=torch.float64) * 3) / 3
    a[-1] = 1.0
    if op == "topk_indices":
        return (a, 5)
    if op == "ranks":
        return (a,)
    if op in ("precision_at_k", "kendall_tau_topk"):
        return (a, b, 5)
    return (a, b)


def _same(cpu: torch.Tensor, gpu: torch.Tensor) -> str | None:
    """None when the results agree, else a description of the difference."""
    gpu = gpu.cpu()
    if cpu.dtype != gpu.dtype or cpu.shape != gpu.shape:
        return f"dtype/shape {gpu.dtype} {tuple(gpu.shape)} != CPU {cpu.dtype} {tuple(cpu.shape)}"
    if cpu.dtype == torch.int64:
        return None if torch.equal(cpu, gpu) else f"indices differ:\n cpu {cpu}\n gpu {gpu}"
    if torch.allclose(cpu, gpu, rtol=0, atol=ATOL, equal_nan=True):
        return None
    return f"values differ (atol {ATOL}):\n cpu {cpu}\n gpu {gpu}"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} BUILD_LIB_DIR", file=sys.stderr)
        return 2
    libs = sorted(glob.glob(os.path.join(argv[1], "r2et_fast", "_C*.so")))
    if len(libs) != 1:
        print(f"cuda-check: FAILED: expected one r2et_fast/_C*.so under {argv[1]}, found {libs}",
              file=sys.stderr)
        return 1
    try:
        torch.ops.load_library(libs[0])
    except OSError as exc:
        print(f"cuda-check: FAILED: cannot load {libs[0]}: {exc}", file=sys.stderr)
        return 1

    failures = []
    for op in OPS:
        name = f"r2et_fast::{op}"
        has = {key: torch._C._dispatch_has_kernel_for_dispatch_key(name, key)
               for key in ("CPU", "CUDA")}
        missing = [key for key, present in has.items() if not present]
        print(f"  {op:17s} CPU kernel: {'yes' if has['CPU'] else 'NO'}   "
              f"CUDA kernel: {'yes' if has['CUDA'] else 'NO'}")
        if missing:
            failures.append(f"{op}: no {' / '.join(missing)} kernel registered")

    ran_on = None
    if not failures and torch.cuda.is_available():
        device = torch.device("cuda")
        ran_on = torch.cuda.get_device_name(device)
        gen = torch.Generator().manual_seed(0)
        for op in OPS:
            fn = getattr(torch.ops.r2et_fast, op)
            args = _inputs(op, gen)
            try:
                expected = fn(*args)
                got = fn(*(x.to(device) if isinstance(x, torch.Tensor) else x for x in args))
                torch.cuda.synchronize()
            except Exception as exc:  # report every op, not just the first failure
                failures.append(f"{op}: raised {type(exc).__name__}: {exc}")
                continue
            problem = _same(expected, got)
            print(f"  {op:17s} CUDA vs CPU: {'match' if problem is None else 'MISMATCH'}")
            if problem is not None:
                failures.append(f"{op}: {problem}")

    if failures:
        print("cuda-check: FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    if ran_on is None:
        print("cuda-check: OK (compiled and linked; not run: no GPU)")
    else:
        print(f"cuda-check: OK (ran on {ran_on})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
