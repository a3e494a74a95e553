"""Meta and fake tensors through the public ops (the fake kernels of the ops table): every op gives
the shapes and dtypes of a real call, on both backends, without reading a value (``.item()`` on a
meta tensor raises), and the differentiable ones backpropagate (through the backward ops)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

from r2et_fast import _validation as v
from r2et_fast import ops
from r2et_fast.ops._table import OPS, public_names

B, N, K = 3, 7, 3
Case = tuple[str, tuple, dict]


def _maps(gen: torch.Generator, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(B, N, generator=gen, dtype=dtype)


def _top(gen: torch.Generator) -> torch.Tensor:
    return torch.stack([torch.randperm(N, generator=gen)[:K] for _ in range(B)])


# op name -> real CPU inputs (label, args, kwargs); the symbolic runs get the same shapes
CASES: dict[str, Callable[[torch.Generator], list[Case]]] = {
    "topk_indices": lambda g: [("k", (_maps(g), K), {})],
    "ranks": lambda g: [("f32", (_maps(g, torch.float32),), {})],
    "precision_at_k": lambda g: [("k", (_maps(g), _maps(g), K), {})],
    "kendall_tau": lambda g: [("all", (_maps(g), _maps(g)), {})],
    "kendall_tau_topk": lambda g: [("k", (_maps(g), _maps(g), K), {})],
    "spearman": lambda g: [("all", (_maps(g, torch.float32), _maps(g, torch.float32)), {})],
    "pearson": lambda g: [("all", (_maps(g), _maps(g)), {})],
    "mse": lambda g: [("all", (_maps(g), _maps(g)), {})],
    "cosine": lambda g: [("all", (_maps(g), _maps(g)), {})],
    "topk_pair_gap": lambda g: [
        ("all", (_maps(g), K), {"return_indices": True}),
        ("anchor", (_maps(g), K, "anchor", "exp"), {"return_indices": True}),
        ("mm", (_maps(g), K, "mm", "linear", 2), {}),
    ],
    "hessian_fd_norm": lambda g: [("kappa", (_maps(g), _maps(g), 1e-2), {})],
    "projected_step": lambda g: [
        ("l2", (_maps(g), _maps(g), _maps(g), 0.1, 0.5), {}),
        ("linf-box", (_maps(g).view(B, 1, N), _maps(g).view(B, 1, N), _maps(g).view(B, 1, N), 0.1, 0.5),
         {"step_norm": "linf", "norm": "linf", "lower": 0.0, "upper": torch.ones(N, dtype=torch.float64)}),
    ],
    "topk_pair_agreement": lambda g: [("k", (_maps(g), _top(g)), {})],
    "fused_mlp_objective": lambda g: [
        ("r2et", (_maps(g), torch.tensor([0, 2, 1]), [torch.randn(4, N, generator=g, dtype=torch.float64),
                  torch.randn(3, 4, generator=g, dtype=torch.float64)],
                  [torch.randn(4, generator=g, dtype=torch.float64), torch.empty(0, dtype=torch.float64)],
                  [0, 3, 0], [0.0, 0.0, 2.0, 20.0, 0.0, 0.0]), {"k": K, "input_grad": True}),
    ],
    "fused_mlp_saliency": lambda g: [
        ("target", (_maps(g), torch.tensor([0, 2, 1]), [torch.randn(4, N, generator=g, dtype=torch.float64),
                    torch.randn(3, 4, generator=g, dtype=torch.float64)],
                    [torch.randn(4, generator=g, dtype=torch.float64), torch.empty(0, dtype=torch.float64)],
                    [0, 3, 0], [0.0, 0.0, 2.0, 20.0, 0.0, 0.0]), {"score": "loss"}),
        ("predicted", (_maps(g), None, [torch.randn(4, N, generator=g, dtype=torch.float64),
                       torch.randn(3, 4, generator=g, dtype=torch.float64)],
                       [torch.randn(4, generator=g, dtype=torch.float64),
                        torch.empty(0, dtype=torch.float64)], [0, 1, 0], [0.0] * 6), {}),
    ],
    "fused_mlp_saliency_vjp": lambda g: [
        ("loss", (_maps(g), torch.tensor([0, 2, 1]), _maps(g),
                  [torch.randn(4, N, generator=g, dtype=torch.float64),
                   torch.randn(3, 4, generator=g, dtype=torch.float64)],
                  [torch.randn(4, generator=g, dtype=torch.float64), torch.empty(0, dtype=torch.float64)],
                  [0, 3, 0], [0.0, 0.0, 2.0, 20.0, 0.0, 0.0]), {"score": "loss"}),
    ],
    "fused_mlp_attack": lambda g: [
        ("erattack", (_maps(g), _maps(g), torch.tensor([0, 2, 1]), torch.tensor([1, 0, 2]), _maps(g),
                      _top(g), torch.empty(3, 0, dtype=torch.int64), None, None, _maps(g),
                      [torch.randn(4, N, generator=g, dtype=torch.float64),
                       torch.randn(3, 4, generator=g, dtype=torch.float64)],
                      [torch.randn(4, generator=g, dtype=torch.float64), torch.empty(0, dtype=torch.float64)],
                      [0, 3, 0], [0.0, 0.0, 2.0, 20.0, 0.0, 0.0]), {"k": K, "steps": 3}),
    ],
}
DIFFERENTIABLE = {op.name for op in OPS if op.differentiable and op.public}


def test_every_public_op_of_the_table_has_a_case():
    assert sorted(CASES) == sorted(public_names())
    # the backward ops have no wrapper: they run in the gradient test of their forward op
    for op in OPS:
        if not op.public:
            assert op.name.removesuffix("_backward") in DIFFERENTIABLE, op.name


def _as_tuple(out) -> tuple[torch.Tensor, ...]:
    """The op's outputs, a Tensor[] output spliced in."""
    items = out if isinstance(out, tuple) else (out,)
    return tuple(t for item in items for t in (item if isinstance(item, list) else (item,)))


def _signature(out) -> list[tuple[torch.Size, torch.dtype]]:
    return [(t.shape, t.dtype) for t in _as_tuple(out)]


def _cases(name: str) -> list[Case]:
    return CASES[name](torch.Generator().manual_seed(0))


def _convert(value, to: Callable[[torch.Tensor], torch.Tensor]):
    if isinstance(value, list):  # a Tensor[] argument (a list of numbers stays as it is)
        return [_convert(t, to) for t in value]
    return to(value) if isinstance(value, torch.Tensor) else value


@pytest.mark.parametrize("name", sorted(CASES))
def test_meta_tensors_give_the_real_shapes_and_dtypes(name, backend):
    for label, args, kwargs in _cases(name):
        real = getattr(ops, name)(*args, **kwargs, backend=backend)
        meta_args = [_convert(a, lambda t: t.to("meta")) for a in args]
        meta_kwargs = {k: _convert(a, lambda t: t.to("meta")) for k, a in kwargs.items()}
        meta = getattr(ops, name)(*meta_args, **meta_kwargs, backend=backend)
        assert _signature(meta) == _signature(real), label
        assert all(t.is_meta for t in _as_tuple(meta)), label


@pytest.mark.parametrize("name", sorted(CASES))
def test_fake_tensors_give_the_real_shapes_and_dtypes(name, backend):
    for label, args, kwargs in _cases(name):
        real = getattr(ops, name)(*args, **kwargs, backend=backend)
        with FakeTensorMode() as mode:
            fake_args = [_convert(a, mode.from_tensor) for a in args]
            fake_kwargs = {k: _convert(a, mode.from_tensor) for k, a in kwargs.items()}
            fake = getattr(ops, name)(*fake_args, **fake_kwargs, backend=backend)
        assert _signature(fake) == _signature(real), label
        assert all(isinstance(t, FakeTensor) for t in _as_tuple(fake)), label


@pytest.mark.parametrize("name", sorted(DIFFERENTIABLE))
def test_meta_gradients_have_the_input_shapes(name, backend):
    for label, args, kwargs in _cases(name):
        meta_args = [a.to("meta").requires_grad_(a.is_floating_point()) if isinstance(a, torch.Tensor) else a
                     for a in args]
        out = _as_tuple(getattr(ops, name)(*meta_args, **kwargs, backend=backend))[0]
        leaves = [a for a in meta_args if isinstance(a, torch.Tensor)]
        grads = torch.autograd.grad(out.sum(), leaves)
        assert [(g.shape, g.dtype, g.is_meta) for g in grads] == [(a.shape, a.dtype, True) for a in leaves], \
            label


def test_shape_and_dtype_checks_still_apply_to_meta_tensors():
    a = torch.empty(B, N, device="meta", dtype=torch.float64)
    with pytest.raises(ValueError, match="a and b must have the same shape"):
        ops.kendall_tau(a, torch.empty(B, N + 1, device="meta", dtype=torch.float64))
    with pytest.raises(TypeError, match="a and b must have the same dtype"):
        ops.precision_at_k(a, a.float(), K)
    with pytest.raises(ValueError, match="k must satisfy"):
        ops.topk_pair_gap(a, N)
    with pytest.raises(TypeError, match="top must be int64"):
        ops.topk_pair_agreement(a, torch.empty(B, K, device="meta", dtype=torch.int32))


def test_value_checks_still_apply_to_real_tensors():
    a = torch.zeros(B, N, dtype=torch.float64)
    a[0, 0] = float("nan")
    with pytest.raises(ValueError, match="a contains NaN or Inf"):
        ops.kendall_tau(a, torch.zeros_like(a), backend="reference")
    assert not v.is_symbolic(a) and v.is_symbolic(a.to("meta"))
    with FakeTensorMode() as mode:
        assert v.is_symbolic(mode.from_tensor(a))
