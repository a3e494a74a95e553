"""The one graph encoding (strict upper triangle <-> symmetric adjacency): round trip, order, shapes,
gradients and bad input. Needs no torch_geometric."""

from __future__ import annotations

import pytest
import torch

from r2et_fast.graph_encoding import (
    adjacency_to_triangle,
    n_nodes_of,
    triangle_size,
    triangle_to_adjacency,
)


def _symmetric(batch: tuple[int, ...], n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    u = torch.triu(torch.rand(*batch, n, n, generator=g, dtype=torch.float64), 1)
    return u + u.transpose(-1, -2)


@pytest.mark.parametrize("batch", [(), (3,), (2, 4)])
@pytest.mark.parametrize("n", [2, 3, 6])
def test_round_trip_order_and_shapes(batch, n):
    a = _symmetric(batch, n)
    w = adjacency_to_triangle(a)
    assert w.shape == (*batch, n * (n - 1) // 2)
    iu = torch.triu_indices(n, n, 1)
    assert torch.equal(w, a[..., iu[0], iu[1]])  # row-major triu_indices order
    back = triangle_to_adjacency(w)
    assert back.shape == a.shape and back.dtype == a.dtype
    assert torch.equal(back, a)
    assert torch.equal(back, back.transpose(-1, -2))
    assert torch.equal(back.diagonal(dim1=-2, dim2=-1), torch.zeros(*batch, n, dtype=a.dtype))
    assert torch.equal(adjacency_to_triangle(back), w)
    assert torch.equal(triangle_to_adjacency(w, n_nodes=n), a)


def test_lower_triangle_and_diagonal_are_ignored():
    a = _symmetric((2,), 5)
    noisy = a + torch.tril(torch.ones(5, 5, dtype=a.dtype))  # lower triangle and diagonal
    assert torch.equal(adjacency_to_triangle(noisy), adjacency_to_triangle(a))


def test_sizes():
    assert [triangle_size(n) for n in (2, 3, 4, 82)] == [1, 3, 6, 3321]
    for n in (2, 3, 4, 29, 82, 200):
        assert n_nodes_of(triangle_size(n)) == n


def test_twice_differentiable():
    w = (0.1 + 0.8 * torch.rand(2, 6, dtype=torch.float64)).requires_grad_(True)

    def f(v):
        a = triangle_to_adjacency(v)
        return (a @ a).pow(2).sum()

    assert torch.autograd.gradcheck(f, (w,))
    assert torch.autograd.gradgradcheck(f, (w,))


@pytest.mark.parametrize("m", [0, 2, 4, 5, 7, -1])
def test_non_triangular_sizes_are_refused(m):
    with pytest.raises(ValueError, match="triangular"):
        n_nodes_of(m)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="n_nodes"):
        triangle_size(1)
    with pytest.raises(TypeError, match="n_nodes must be an int"):
        triangle_size(4.0)
    with pytest.raises(TypeError, match="m must be an int"):
        n_nodes_of(6.0)
    with pytest.raises(ValueError, match="n_nodes=5"):
        triangle_to_adjacency(torch.zeros(2, 6), n_nodes=5)
    with pytest.raises(ValueError, match="triangular"):
        triangle_to_adjacency(torch.zeros(2, 7))
    with pytest.raises(ValueError, match="weights must have shape"):
        triangle_to_adjacency(torch.tensor(1.0))
    with pytest.raises(TypeError, match="weights must be a torch.Tensor"):
        triangle_to_adjacency([0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="adjacency must have shape"):
        adjacency_to_triangle(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="adjacency must have shape"):
        adjacency_to_triangle(torch.zeros(1, 1))
    with pytest.raises(TypeError, match="adjacency must be a torch.Tensor"):
        adjacency_to_triangle([[0.0, 1.0], [1.0, 0.0]])
