"""Checks a CUDA build of the r2et_fast extension.

Usage: ``python scripts/cuda_check.py BUILD_LIB_DIR``.

Loads ``BUILD_LIB_DIR/r2et_fast/_C*.so`` and asserts that **every** op of the ops table
(``r2et_fast/ops/_table.py``, loaded by file path: this environment need not have r2et_fast
installed) has a kernel for every device of the table, and that the library defines exactly the
table's ops. On a machine without a GPU that proves the CUDA code compiled and linked; with a GPU
it also runs every op on small random CUDA inputs (with ties) and compares with the CPU kernel in
float64. A table row without check inputs in ``CASES`` fails the check, so a new op cannot slip
through unchecked.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
from collections.abc import Callable

import torch

NAMESPACE = "r2et_fast"
TABLE_SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "r2et_fast", "ops", "_table.py")
ATOL = 1e-10
RTOL = 1e-12  # the pair-gap sums reach ~1e4: allow for the different order of the additions
ROWS, N = 5, 37

Case = tuple[str, tuple]  # (label, arguments)


def _maps(gen: torch.Generator, rows: int = ROWS, n: int = N) -> torch.Tensor:
    """float64 maps rounded to thirds, so that rows contain ties (and -0.0 next to +0.0)."""
    x = torch.round(torch.randn(rows, n, generator=gen, dtype=torch.float64) * 3) / 3
    x[0, :2] = torch.tensor([0.0, -0.0], dtype=torch.float64)
    return x


def _pair_gap_variants() -> list[tuple[int, str, str, int]]:
    """(k, pairs, transform, n_pairs) covering every selection and transform, k = 1 and n - 1."""
    out = []
    for k in (1, 5, N - 1):
        for transform in ("linear", "exp"):
            out.append((k, "all", transform, 0))
            out += [(k, "anchor", transform, n_pairs) for n_pairs in (1, 3, N)]
            out += [(k, "mm", transform, n_pairs) for n_pairs in sorted({1, min(k, N - k)})]
    return out


def _similarity_cases(op: str) -> Callable[[torch.Generator], list[Case]]:
    def cases(gen: torch.Generator) -> list[Case]:
        a, b = _maps(gen), _maps(gen)
        a[-1] = 1.0  # constant row: undefined correlations, NaN must agree too
        extra = (5,) if op in ("precision_at_k", "kendall_tau_topk") else ()
        return [("", (a, b, *extra))]
    return cases


def _pair_gap_cases(gen: torch.Generator) -> list[Case]:
    x = _maps(gen)
    return [(f"k={k} {pairs}/{transform} n_pairs={n_pairs}", (x, k, pairs, transform, n_pairs))
            for k, pairs, transform, n_pairs in _pair_gap_variants()]


def _pair_gap_backward_cases(gen: torch.Generator) -> list[Case]:
    x, grad = _maps(gen), torch.randn(ROWS, generator=gen, dtype=torch.float64)
    cases = []
    for k, pairs, transform, n_pairs in _pair_gap_variants():
        _, hi, lo = torch.ops.r2et_fast.topk_pair_gap(x, k, pairs, transform, n_pairs)
        cases.append((f"k={k} {pairs}/{transform} n_pairs={n_pairs}",
                      (grad, x, hi, lo, pairs, transform)))
    return cases


def _hessian_cases(gen: torch.Generator) -> list[Case]:
    gx, gxv = _maps(gen), _maps(gen)
    gxv[1] = gx[1]  # coinciding rows: norm 0, gradient 0
    return [("kappa=1e-3", (gx, gxv, 1e-3)), ("kappa=2.5", (gx, gxv, 2.5))]


def _hessian_backward_cases(gen: torch.Generator) -> list[Case]:
    grad = torch.randn(ROWS, generator=gen, dtype=torch.float64)
    return [(label, (grad, *args)) for label, args in _hessian_cases(gen)]


def _projected_step_cases(gen: torch.Generator) -> list[Case]:
    x, d = _maps(gen), _maps(gen)
    x0 = x + 0.1 * torch.randn(ROWS, N, generator=gen, dtype=torch.float64)
    lower, upper = torch.full((N,), -1.0, dtype=torch.float64), torch.full((N,), 1.5, dtype=torch.float64)
    return [(f"{step}/{ball}{' box' if box else ''}",
             (x, d, x0, 0.3, 0.5, step, ball, lower if box else None, upper if box else None))
            for step in ("l2", "linf") for ball in ("l2", "linf") for box in (False, True)]


def _pair_agreement_cases(gen: torch.Generator) -> list[Case]:
    """T_k of the maps themselves (agreement 1), of other maps with ties, and random top sets."""
    x, y = _maps(gen), _maps(gen)
    cases = []
    for k in (1, 5, N - 1):
        top = torch.topk(y, k, dim=1).indices
        rand = torch.stack([torch.randperm(N, generator=gen)[:k] for _ in range(ROWS)])
        cases += [(f"k={k} own", (x, torch.topk(x, k, dim=1).indices)),
                  (f"k={k} other", (x, top)), (f"k={k} random", (x, rand))]
    return cases


def _fused_mlp_cases(gen: torch.Generator) -> list[Case]:
    """Smooth nets (softplus, tanh: no kinks, so CPU and GPU rounding cannot flip an activation),
    C = 3 and C = 1, every score and pair set, with and without Ĥ, adaptive weights, dJ/dx."""
    cases = []
    variants = [("loss", "all", "linear", True, False, 3), ("prob", "anchor", "exp", True, True, 3),
                ("logit", "mm", "linear", False, False, 3), ("loss", "mm", "exp", True, True, 1),
                ("prob", "all", "exp", True, False, 1)]
    for score, pairs, transform, hessian, adaptive, classes in variants:
        x = torch.randn(ROWS, N, generator=gen, dtype=torch.float64)
        y = torch.randint(0, max(classes, 2), (ROWS,), generator=gen)
        widths = [N, 16, 8, classes]
        f64 = dict(generator=gen, dtype=torch.float64)
        weights = [torch.randn(widths[i + 1], widths[i], **f64) / widths[i] ** 0.5 for i in range(3)]
        biases = [torch.randn(widths[1], **f64), torch.empty(0, dtype=torch.float64),
                  torch.randn(classes, **f64)]
        layers, params = [0, 3, 0, 4, 0], [0.0, 0.0, 2.0, 20.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        n_pairs = 0 if pairs == "all" else 2
        cases.append((f"{score} {pairs}/{transform} hessian={hessian} adaptive={adaptive} C={classes}",
                      (x, y, weights, biases, layers, params, score, 5, pairs, transform, n_pairs, 3.0, 0.1,
                       0.3, 0.2, True, hessian, adaptive, True)))
    return cases


def _fused_saliency_cases(gen: torch.Generator) -> list[Case]:
    """The smooth net of the objective's cases, every score, a given and the predicted class."""
    cases = []
    for score, classes, predict in (("logit", 3, False), ("prob", 3, True), ("loss", 1, False),
                                    ("loss", 3, True)):
        x = torch.randn(ROWS, N, generator=gen, dtype=torch.float64)
        target = torch.randint(0, max(classes, 2), (ROWS,), generator=gen)
        widths = [N, 16, classes]
        f64 = dict(generator=gen, dtype=torch.float64)
        weights = [torch.randn(widths[i + 1], widths[i], **f64) / widths[i] ** 0.5 for i in range(2)]
        biases = [torch.randn(widths[1], **f64), torch.randn(classes, **f64)]
        cases.append((f"{score} C={classes} predict={predict}",
                      (x, target, predict, weights, biases, [0, 3, 0], [0.0, 0.0, 2.0, 20.0, 0.0, 0.0],
                       score)))
    return cases


def _fused_attack_cases(gen: torch.Generator) -> list[Case]:
    """Five steps of ERAttack (all pairs, the box, early stop) and the MSE attack (l2, no stop) on
    the saliency cases' nets."""
    cases = []
    for label, (x, target, _predict, weights, biases, layers, params, score) in \
            _fused_saliency_cases(gen)[:2]:
        start = x + 0.05 * torch.randn(x.shape, generator=gen, dtype=torch.float64)
        clean, probe = _maps(gen).abs(), torch.randn(x.shape, generator=gen, dtype=torch.float64)
        pred0 = target.clone()
        top, none = torch.topk(clean, 5, dim=1).indices, torch.empty(ROWS, 0, dtype=torch.int64)
        box = (torch.full((N,), -3.0, dtype=torch.float64), torch.full((N,), 3.0, dtype=torch.float64))
        net = (weights, biases, layers, params, score, True)
        budget = (5, 0.5, 0.05, 5)  # k, eps, alpha, steps
        cases.append((f"ERAttack {label}", (x, start, target, pred0, clean, top, none, *box, probe, *net,
                                            "pair_gap", "all", "linear", *budget, "linf", "l2", True)))
        cases.append((f"MSE {label}", (x, start, target, pred0, clean, none, none, None, None, probe,
                                       *net, "distance", "all", "linear", *budget, "l2", "l2", False)))
    return cases


# Check inputs for every op (float64 CPU tensors; the GPU run gets copies on the device).
CASES: dict[str, Callable[[torch.Generator], list[Case]]] = {
    "topk_indices": lambda gen: [("k=5", (_maps(gen), 5)), ("k=n-1", (_maps(gen), N - 1))],
    "ranks": lambda gen: [("", (_maps(gen),))],
    **{op: _similarity_cases(op) for op in ("precision_at_k", "kendall_tau", "kendall_tau_topk",
                                              "spearman", "pearson", "mse", "cosine")},
    "topk_pair_gap": _pair_gap_cases,
    "topk_pair_gap_backward": _pair_gap_backward_cases,
    "hessian_fd_norm": _hessian_cases,
    "hessian_fd_norm_backward": _hessian_backward_cases,
    "projected_step": _projected_step_cases,
    "topk_pair_agreement": _pair_agreement_cases,
    "fused_mlp_objective": _fused_mlp_cases,
    "fused_mlp_saliency": _fused_saliency_cases,
    "fused_mlp_saliency_vjp": lambda gen: [
        (label, (x, target, torch.randn(x.shape, generator=gen, dtype=torch.float64), *rest))
        for label, (x, target, _predict, *rest) in _fused_saliency_cases(gen)],
    "fused_mlp_attack": _fused_attack_cases,
}


def ops_in_library() -> list[str]:
    """Every op of the namespace the dispatcher knows (after the library is loaded)."""
    prefix = f"{NAMESPACE}::"
    names = {name[len(prefix):].split(".")[0] for name in torch._C._dispatch_get_all_op_names()
             if name.startswith(prefix)}
    return sorted(names)


def load_table():
    """The ops table module, loaded from its file (it imports nothing from r2et_fast)."""
    spec = importlib.util.spec_from_file_location("_r2et_fast_ops_table", TABLE_SOURCE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def table_problems(table_ops: list[str], library_ops: list[str], cases) -> list[str]:
    """Disagreements between the table, the built library and ``cases``: each fails the check."""
    problems = []
    if not library_ops:
        problems.append(f"the library registers no {NAMESPACE}:: ops")
    unlisted = sorted(set(library_ops) - set(table_ops))
    if unlisted:
        problems.append(f"ops in the build but not in {TABLE_SOURCE}: {unlisted}")
    unbuilt = sorted(set(table_ops) - set(library_ops))
    if unbuilt:
        problems.append(f"ops in {TABLE_SOURCE} but not in the build (stale?): {unbuilt}")
    problems += [f"{op}: no check inputs: add it to CASES in {os.path.abspath(__file__)}"
                 for op in table_ops if op not in cases]
    return problems


def _same_tensor(cpu: torch.Tensor, gpu: torch.Tensor, as_set: bool = False) -> str | None:
    gpu = gpu.cpu()
    if cpu.dtype != gpu.dtype or cpu.shape != gpu.shape:
        return f"dtype/shape {gpu.dtype} {tuple(gpu.shape)} != CPU {cpu.dtype} {tuple(cpu.shape)}"
    if cpu.dtype == torch.int64:
        if as_set:  # same members per row, in any order
            cpu, gpu = cpu.sort(dim=-1).values, gpu.sort(dim=-1).values
        return None if torch.equal(cpu, gpu) else f"indices differ:\n cpu {cpu}\n gpu {gpu}"
    if torch.allclose(cpu, gpu, rtol=RTOL, atol=ATOL, equal_nan=True):
        return None
    return f"values differ (atol {ATOL}, rtol {RTOL}):\n cpu {cpu}\n gpu {gpu}"


def flat(out) -> list:
    """An op's outputs as one list of tensors (a Tensor[] output is spliced in)."""
    items = out if isinstance(out, (tuple, list)) else (out,)
    return [t for item in items for t in (item if isinstance(item, (tuple, list)) else (item,))]


def _same(op: str, args: tuple, cpu, gpu) -> str | None:
    """None when the results agree, else a description of the difference. For pairs='all', the
    CPU kernel returns T_k in an unspecified order: compare it as a set."""
    cpu_t, gpu_t = flat(cpu), flat(gpu)
    if len(cpu_t) != len(gpu_t):
        return f"{len(gpu_t)} outputs != CPU {len(cpu_t)}"
    unordered_top = op == "topk_pair_gap" and args[2] == "all"
    for i, (c, g) in enumerate(zip(cpu_t, gpu_t)):
        problem = _same_tensor(c, g, as_set=unordered_top and i == 1)
        if problem is not None:
            return f"output {i}: {problem}" if len(cpu_t) > 1 else problem
    return None


def _to(x, device: torch.device):
    if isinstance(x, list):  # a Tensor[] argument
        return [_to(t, device) for t in x]
    return x.to(device) if isinstance(x, torch.Tensor) else x


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

    table = load_table()
    ops = table.names()
    failures = table_problems(ops, ops_in_library(), CASES)
    keys = [device.upper() for device in table.DEVICES]  # the dispatch key of each device's kernels
    print(f"  {len(ops)} {NAMESPACE} ops in the table, checked in {os.path.basename(libs[0])}")
    width = max((len(op) for op in ops), default=0) + 1
    for op in ops:
        name = f"{NAMESPACE}::{op}"
        try:
            has = {key: torch._C._dispatch_has_kernel_for_dispatch_key(name, key) for key in keys}
        except RuntimeError:  # not defined by the library (reported above)
            continue
        missing = [key for key, present in has.items() if not present]
        print(f"  {op:{width}s} " + "   ".join(f"{key} kernel: {'yes' if has[key] else 'NO'}"
                                                for key in keys))
        if missing:
            failures.append(f"{op}: no {' / '.join(missing)} kernel registered")

    ran_on = None
    if not failures and torch.cuda.is_available():
        device = torch.device("cuda")
        ran_on = torch.cuda.get_device_name(device)
        gen = torch.Generator().manual_seed(0)
        for op in ops:
            fn = getattr(torch.ops.r2et_fast, op)
            bad = 0
            cases = CASES[op](gen)
            for label, args in cases:
                where = f"{op} [{label}]" if label else op
                try:
                    expected = fn(*args)
                    got = fn(*(_to(x, device) for x in args))
                    torch.cuda.synchronize()
                except Exception as exc:  # report every op, not just the first failure
                    failures.append(f"{where}: raised {type(exc).__name__}: {exc}")
                    bad += 1
                    continue
                problem = _same(op, args, expected, got)
                if problem is not None:
                    failures.append(f"{where}: {problem}")
                    bad += 1
            print(f"  {op:{width}s} CUDA vs CPU: "
                  f"{'match' if not bad else 'MISMATCH'} ({len(cases) - bad}/{len(cases)} cases)")

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
