"""The ops table (r2et_fast/ops/_table.py) against everything that follows from it: the schema,
the registrations (Autograd fallthroughs, backward formulas, fake kernels), the exports, and the
op list of scripts/cuda_check.py."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import torch

import r2et_fast
from python_tests.conftest import requires_native
from r2et_fast import _autograd, ops, reference
from r2et_fast.ops._table import DEVICES, OPS, names, public_names

ROOT = Path(__file__).resolve().parents[2]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"_script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_lists_exactly_the_schema():
    source = (ROOT / "csrc" / "ops" / "r2et_fast.cpp").read_text()
    assert sorted(names()) == sorted(set(re.findall(r'm\.def\(\s*"(\w+)\(', source)))
    assert len(set(names())) == len(OPS)
    assert DEVICES == ("cpu", "cuda")


@requires_native
def test_table_lists_exactly_the_built_ops():
    built = {n.split("::")[1].split(".")[0] for n in torch._C._dispatch_get_all_op_names()
             if n.startswith("r2et_fast::")}
    assert built == set(names())


@requires_native
@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_autograd_registrations_follow_the_table(op):
    qualname = f"r2et_fast::{op.name}"
    assert torch._C._dispatch_has_kernel_for_dispatch_key(qualname, "Autograd")
    if hasattr(torch._C, "_dispatch_kernel_for_dispatch_key_is_fallthrough"):
        fallthrough = torch._C._dispatch_kernel_for_dispatch_key_is_fallthrough(qualname, "Autograd")
        assert fallthrough == (not op.differentiable)
    assert torch._C._dispatch_has_kernel_for_dispatch_key(qualname, "Meta")  # the fake kernel


def test_backward_formulas_are_those_of_the_differentiable_ops():
    assert set(_autograd.FORMULAS) == {op.name for op in OPS if op.differentiable}


def test_exports_follow_the_table():
    for name in public_names():
        wrapper = OPS[names().index(name)].wrapper
        assert getattr(ops, name) is wrapper and getattr(r2et_fast, name) is wrapper
        assert wrapper.__module__ == f"r2et_fast.ops.{OPS[names().index(name)].module}"
    assert ops.__all__ == [*public_names(), "pair_gap_at"]
    assert [n for n in r2et_fast.__all__ if n in names()] == public_names()
    assert reference.__all__ == names()
    for op in OPS:
        assert getattr(reference, op.name) is op.twin
    assert r2et_fast.thickness.topk_pair_agreement is ops.topk_pair_agreement


def test_internal_ops_have_no_wrapper():
    internal = [op for op in OPS if not op.public]
    assert {op.name for op in internal} == {"topk_pair_gap_backward", "hessian_fd_norm_backward"}
    with pytest.raises(AttributeError, match="no public wrapper"):
        internal[0].wrapper  # noqa: B018


@requires_native
@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_fakes_match_the_kernels(op):
    """Each fake kernel gives the CPU kernel's shapes and dtypes on cuda_check's inputs."""
    check = load_script("cuda_check")
    fn = getattr(torch.ops.r2et_fast, op.name)
    for label, args in check.CASES[op.name](torch.Generator().manual_seed(0)):
        real = fn(*args)
        fake = fn(*(check._to(a, torch.device("meta")) for a in args))  # Tensor[] arguments too
        real, fake = check.flat(real), check.flat(fake)
        assert [(t.shape, t.dtype) for t in real] == [(t.shape, t.dtype) for t in fake], label


def test_cuda_check_follows_the_table():
    check = load_script("cuda_check")
    table = check.load_table()
    assert table.names() == names() and table.DEVICES == DEVICES
    assert check.table_problems(names(), names(), check.CASES) == []
    cases = {k: v for k, v in check.CASES.items() if k != "ranks"}
    assert check.table_problems(names(), names(), cases) == [
        f"ranks: no check inputs: add it to CASES in {check.__file__}"]
    problems = check.table_problems(names()[1:], names(), check.CASES)
    assert len(problems) == 1 and "in the build but not in" in problems[0]
    problems = check.table_problems(names(), names()[1:], check.CASES)
    assert len(problems) == 1 and "not in the build" in problems[0]
