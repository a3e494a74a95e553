"""Grad x input on the upper-triangle edge weights of graph pairs (docs/spec.md §1, graphs)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torch_geometric")

from r2et_fast.explain._adjacency import (  # noqa: E402
    AdjacencyGradXInput,
    adjacency_grad_x_input,
    edge_map,
)
from r2et_fast.explain._base import Explainer  # noqa: E402
from r2et_fast.graph_encoding import triangle_size  # noqa: E402
from r2et_fast.models.gcn import SiameseGCN  # noqa: E402


@pytest.fixture
def model():
    torch.manual_seed(0)
    return SiameseGCN(5, hidden=(4, 3), activation="softplus").double()


@pytest.fixture
def pairs():
    g = torch.Generator().manual_seed(7)
    return 0.1 + 0.8 * torch.rand(3, 2, triangle_size(5), generator=g, dtype=torch.float64)


def test_is_an_explainer_and_defaults(model):
    ex = AdjacencyGradXInput(model)
    assert isinstance(ex, Explainer)
    assert ex.abs is True and ex.normalize is True and ex.score == "logit"
    assert "AdjacencyGradXInput(" in repr(ex)


@pytest.mark.parametrize("score", ["logit", "prob", "loss"])
def test_nonnegative_sums_to_one_and_matches_hand_computation(model, pairs, score):
    target = torch.tensor([0, 1, 1])
    attr = AdjacencyGradXInput(model, score=score).attribute(pairs, target)
    assert attr.shape == pairs.shape and not attr.requires_grad
    assert torch.all(attr >= 0)
    assert torch.allclose(attr.flatten(1).sum(1), torch.ones(3, dtype=torch.float64))
    x = pairs.clone().requires_grad_(True)
    out = model(x)
    if score == "logit":
        s = out[torch.arange(3), target]
    elif score == "prob":
        s = torch.softmax(out, 1)[torch.arange(3), target]
    else:
        s = torch.nn.functional.cross_entropy(out, target, reduction="none")
    (g,) = torch.autograd.grad(s.sum(), x)
    raw = (g * pairs).abs()
    assert torch.allclose(attr, raw / raw.flatten(1).sum(1).view(-1, 1, 1))


def test_absent_edges_get_zero_and_overrides(model, pairs):
    x = pairs.clone()
    x[:, :, :3] = 0.0
    attr = adjacency_grad_x_input(model, x)
    assert torch.all(attr[:, :, :3] == 0)
    raw = AdjacencyGradXInput(model, abs=False).attribute(x, normalize=False)
    assert (raw < 0).any()  # signed map without normalisation
    signed = AdjacencyGradXInput(model, abs=False).attribute(x)
    assert torch.allclose(signed.abs().flatten(1).sum(1), torch.ones(3, dtype=torch.float64))


def test_zero_input_gives_zero_map(model):
    attr = AdjacencyGradXInput(model).attribute(torch.zeros(2, 2, 10, dtype=torch.float64))
    assert torch.equal(attr, torch.zeros(2, 2, 10, dtype=torch.float64))


def test_gradcheck_of_the_explanation_wrt_x(model, pairs):
    ex = AdjacencyGradXInput(model)
    target = torch.tensor([1, 0, 1])
    x = pairs[:2].clone().requires_grad_(True)

    def explain(inp):
        return ex.attribute(inp, target[:2], create_graph=True)

    assert torch.autograd.gradcheck(explain, (x,))


def test_gradgradcheck_of_the_score(model, pairs):
    x = pairs[:2].clone().requires_grad_(True)

    def score(inp):
        return model(inp)[:, 1]

    assert torch.autograd.gradgradcheck(score, (x,))


@pytest.mark.parametrize("activation", ["relu", "softplus"])
def test_create_graph_differentiable_wrt_parameters(pairs, activation):
    torch.manual_seed(1)
    model = SiameseGCN(5, hidden=(4, 3), activation=activation).double()
    attr = AdjacencyGradXInput(model).attribute(pairs, create_graph=True)
    assert attr.requires_grad
    (attr[:, :, :4].sum()).backward()
    grads = [p.grad for p in model.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_edge_map_is_symmetric(model, pairs):
    attr = AdjacencyGradXInput(model).attribute(pairs)
    dense = edge_map(attr)
    assert dense.shape == (3, 2, 5, 5)
    assert torch.equal(dense, dense.transpose(-1, -2))
    assert torch.allclose(dense.sum((-1, -2)).sum(1), 2 * torch.ones(3, dtype=torch.float64))


def test_bad_arguments(model, pairs):
    with pytest.raises(ValueError, match="inputs must hold upper-triangle"):
        AdjacencyGradXInput(model).attribute(torch.zeros(2, 2, 7, dtype=torch.float64))
    with pytest.raises(ValueError, match="inputs must have shape"):
        AdjacencyGradXInput(model).attribute(torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="reduce_channels"):
        AdjacencyGradXInput(model).attribute(pairs, reduce_channels="sum")
    with pytest.raises(ValueError, match="score"):
        AdjacencyGradXInput(model, score="margin")
    with pytest.raises(TypeError, match="abs"):
        AdjacencyGradXInput(model, abs=1)
    with pytest.raises(TypeError, match="unexpected keyword"):
        AdjacencyGradXInput(model).attribute(pairs, stdev=0.1)
