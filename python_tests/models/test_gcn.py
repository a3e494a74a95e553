"""The siamese GCN on upper-triangle graph pairs: layout, logits, smoothness, a short training run."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torch_geometric")

from r2et_fast.datasets.graphs import graph_pairs, make_connectomes  # noqa: E402
from r2et_fast.graph_encoding import triangle_size, triangle_to_adjacency  # noqa: E402
from r2et_fast.models.gcn import SiameseGCN  # noqa: E402


def _tiny(activation="softplus", node_features="identity", n=5, seed=0):
    torch.manual_seed(seed)
    return SiameseGCN(n, hidden=(4, 3), activation=activation, node_features=node_features).double()


def _x(batch, n, seed=1, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return 0.1 + 0.8 * torch.rand(batch, 2, triangle_size(n), generator=g, dtype=dtype)


# ---- the model ------------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "softplus"])
@pytest.mark.parametrize("node_features", ["identity", "profile"])
def test_shapes_and_logit_structure(activation, node_features):
    model = _tiny(activation, node_features, n=6)
    x = _x(4, 6)
    out = model(x)
    assert out.shape == (4, 2) and out.dtype == torch.float64
    assert torch.allclose(out[:, 0], -out[:, 1])
    z = out[:, 1] - out[:, 0]
    s = model.similarity(x)
    assert torch.all(s.abs() <= 1 + 1e-12)
    assert torch.allclose(z, model.classifier.weight[0, 0] * s + model.classifier.bias[0])
    # softmax over (-z/2, z/2) is a sigmoid on z
    assert torch.allclose(torch.softmax(out, 1)[:, 1], torch.sigmoid(z))
    # flattened layout gives the same logits; the pair order does not matter (cosine is symmetric)
    assert torch.allclose(model(x.flatten(1)), out)
    assert torch.allclose(model(x.flip(1)), out)


def test_classifier_starts_at_similarity():
    model = SiameseGCN(4)
    assert model.classifier.weight.item() == 1.0 and model.classifier.bias.item() == 0.0


def test_model_depends_on_both_graphs_and_rows_independent():
    model = _tiny(n=6)
    x = _x(3, 6)
    out = model(x)
    for graph in (0, 1):
        y = x.clone()
        y[0, graph, :4] += 0.05
        changed = model(y)
        assert not torch.allclose(changed[0], out[0])
        assert torch.allclose(changed[1:], out[1:])  # no coupling across the batch


def test_bad_inputs_and_arguments():
    model = _tiny(n=5)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2, 10\)"):
        model(torch.zeros(2, 2, 11, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.zeros(2, 3, 10, dtype=torch.float64))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        model([[0.0]])
    for kwargs, name in [({"n_nodes": 1}, "n_nodes"), ({"n_nodes": 5, "n_classes": 3}, "n_classes"),
                         ({"n_nodes": 5, "hidden": (4,)}, "hidden"),
                         ({"n_nodes": 5, "hidden": (4, 0)}, "hidden"),
                         ({"n_nodes": 5, "activation": "tanh"}, "activation"),
                         ({"n_nodes": 5, "beta": 0}, "beta"),
                         ({"n_nodes": 5, "node_features": "degree"}, "node_features")]:
        with pytest.raises(ValueError, match=name):
            SiameseGCN(**kwargs)


def test_default_widths():
    model = SiameseGCN(82)
    assert model.conv1.lin.weight.shape == (256, 82) and model.conv2.lin.weight.shape == (128, 256)


@pytest.mark.parametrize("node_features", ["identity", "profile"])
def test_gradgradcheck_wrt_adjacency_input(node_features):
    model = _tiny("softplus", node_features, n=5)
    x = _x(2, 5).requires_grad_(True)
    assert torch.autograd.gradcheck(model, (x,))
    assert torch.autograd.gradgradcheck(model, (x,))


def test_perturbation_of_x_is_symmetric_perturbation_of_graph():
    # d out / d x_e equals the derivative w.r.t. A_ij and A_ji moved together
    model = _tiny(n=5)
    x = _x(1, 5)
    iu = torch.triu_indices(5, 5, 1)
    e = 3
    i, j = int(iu[0, e]), int(iu[1, e])
    a = triangle_to_adjacency(x.view(2, -1)).requires_grad_(True)
    adj = a
    feats = model._eye.expand(2, -1, -1)
    h = model.conv2(model.act(model.conv1(feats, adj)), adj).mean(1)
    s = torch.nn.functional.cosine_similarity(h[0:1], h[1:2], dim=1)
    (ga,) = torch.autograd.grad(s.sum(), a)
    xg = x.clone().requires_grad_(True)
    (gx,) = torch.autograd.grad(model.similarity(xg).sum(), xg)
    assert torch.allclose(gx[0, 0, e], ga[0, i, j] + ga[0, j, i])


def test_short_training_run_lowers_the_loss():
    adj, labels = make_connectomes(n_graphs=40, n_nodes=16, n_communities=4, signal=0.3, seed=3)
    split = graph_pairs(adj, labels, n_pairs=64, seed=0)
    torch.manual_seed(0)
    model = SiameseGCN(16, hidden=(32, 16))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(split.x_train), split.y_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    with torch.no_grad():
        acc = (model(split.x_test).argmax(1) == split.y_test).double().mean().item()
    assert acc > 0.6


def test_missing_torch_geometric_is_explained(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch_geometric.nn", None)
    with pytest.raises(ImportError, match="pip install torch_geometric"):
        SiameseGCN(5)
    # the adjacency helpers do not need it
    assert triangle_to_adjacency(torch.ones(1, 3)).shape == (1, 3, 3)
