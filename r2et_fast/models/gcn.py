"""The papers' graph model: a siamese two-layer GCN on pairs of weighted graphs (docs/spec.md §8).

Input layout (the contract every model of the toolkit follows: one tensor in, logits out)
-----------------------------------------------------------------------------------------
A batch of graph pairs is ONE tensor ``x`` of shape ``(B, 2, m)``, ``m = N(N-1)/2``: the strict
upper triangle (row-major, the order of ``torch.triu_indices(N, N, 1)``) of the weighted adjacency
matrix of each of the two graphs, weights in ``[0, 1]``. The model rebuilds the symmetric adjacency
``A = U + Uᵀ`` (zero diagonal) from it, so every perturbation of ``x`` is a symmetric perturbation of
the graphs, and a saliency map of ``x`` is an explanation on the graph's edges (upper triangle).
Training, attacks, pair-gap regularisers and top-k metrics therefore work on ``x.flatten(1)``
unchanged; the flattened layout ``(B, 2m)`` is accepted as well.

Architecture
------------
Each graph: node features ``X`` → ``DenseGCNConv(F, 256)`` → act → ``DenseGCNConv(256, 128)`` →
mean over nodes → embedding ``e`` (no activation after the second layer, so the cosine similarity
ranges over ``[-1, 1]``). The two embeddings (shared weights) give ``s = cos(e1, e2)``, a one-unit
linear classifier gives ``z = a·s + b`` and the model returns the 2-class logits
``(-z/2, z/2)``, so softmax / cross-entropy on them equals a sigmoid / BCE on ``z`` (class 1 =
"same class"). ``DenseGCNConv`` adds unit self-loops and normalises ``D^{-1/2}(A + I)D^{-1/2}``;
it is batched and twice differentiable w.r.t. the adjacency (needed by R2ET's double backprop).

Node features (computed from ``x`` inside ``forward``, so the model is a function of ``x`` alone):

* ``"identity"``: one-hot node index (``F = N``) — for brain networks, whose regions correspond
  across subjects;
* ``"profile"``: the node's row of the weighted adjacency, its connection profile (``F = N``) —
  for molecules, whose atom order is arbitrary. These features depend on ``x`` too.

Pooling: the mean over all ``N`` nodes, padding nodes included. A "real node" mask would have to be
read off ``x`` (a node is real if it has an edge), which is not differentiable and changes when an
attack gives a padding node an edge; pooling over all nodes keeps the model a smooth function of
``x``. A padding node (no edges) contributes a constant vector, the same for every graph.

The encoding (upper triangle <-> adjacency) lives in :mod:`r2et_fast.graph_encoding`;
``torch_geometric`` is imported only when a model is built.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from r2et_fast._validation import check_int
from r2et_fast.graph_encoding import triangle_size, triangle_to_adjacency
from r2et_fast.models._activation import ACTIVATIONS, make_activation

NODE_FEATURES = ("identity", "profile")


# ---- the model -----------------------------------------------------------------------------------

def _dense_gcn_conv():
    try:
        from torch_geometric.nn import DenseGCNConv
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("SiameseGCN needs torch_geometric: pip install torch_geometric "
                          "(or pip install 'r2et_fast[graphs]')") from exc
    return DenseGCNConv


class SiameseGCN(nn.Module):
    """Siamese two-layer GCN classifying whether two graphs are of the same class.

    Args:
        n_nodes: number N of nodes of every graph (pad smaller graphs with isolated nodes).
        n_classes: must be 2 (the pair task is binary: logits ``(-z/2, z/2)``).
        hidden: widths of the two GCN layers (default ``(256, 128)`` as in the paper).
        activation: ``"relu"``, ``"leaky_relu"`` or ``"softplus"`` (with ``beta``; the smooth model
            of the SP baseline), applied after the first layer.
        beta: softplus sharpness.
        node_features: ``"identity"`` (one-hot node index) or ``"profile"`` (adjacency row).

    ``forward(x)`` takes ``x`` of shape ``(B, 2, m)`` (or ``(B, 2m)``), ``m = N(N-1)/2``, and
    returns logits ``(B, 2)``; see the module docstring for the layout.
    """

    _eye: torch.Tensor  # a buffer: declared so that attribute access is typed as a tensor

    def __init__(self, n_nodes: int, n_classes: int = 2, hidden: tuple[int, int] = (256, 128),
                 activation: str = "relu", beta: float = 10.0, node_features: str = "identity") -> None:
        super().__init__()
        n_nodes = check_int(n_nodes, "n_nodes", 2)
        if n_classes != 2 or isinstance(n_classes, bool):
            raise ValueError(f"n_classes must be 2 (same class or not), got {n_classes!r}")
        # a list is accepted as well; checked as the tuple it becomes
        widths: object = tuple(hidden) if isinstance(hidden, (tuple, list)) else hidden
        if (not isinstance(widths, tuple) or len(widths) != 2
                or not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in widths)):
            raise ValueError(f"hidden must be two positive ints (layer widths), got {widths!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
            raise ValueError(f"beta must be a positive number, got {beta!r}")
        if node_features not in NODE_FEATURES:
            raise ValueError(f"node_features must be one of {NODE_FEATURES}, got {node_features!r}")
        conv = _dense_gcn_conv()
        self.n_nodes = n_nodes
        self.n_edges = triangle_size(n_nodes)
        self.node_features = node_features
        self.conv1 = conv(n_nodes, widths[0])
        self.conv2 = conv(widths[0], widths[1])
        self.act = make_activation(activation, float(beta))
        self.classifier = nn.Linear(1, 1)
        with torch.no_grad():  # start from z = s: a random a (or b) of either sign slows training a lot
            self.classifier.weight.fill_(1.0)
            self.classifier.bias.zero_()
        self.register_buffer("_eye", torch.eye(n_nodes), persistent=False)

    def _pairs(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        m = self.n_edges
        if x.dim() == 2 and x.shape[1] == 2 * m:
            return x.reshape(x.shape[0], 2, m)
        if x.dim() != 3 or x.shape[1:] != (2, m):
            raise ValueError(f"x must have shape (B, 2, {m}) (upper triangles of two {self.n_nodes}-node "
                             f"graphs) or (B, {2 * m}), got {tuple(x.shape)}")
        return x

    def embed(self, adjacency: torch.Tensor) -> torch.Tensor:
        """Graph embeddings ``(B, hidden[1])`` of dense symmetric adjacencies ``(B, N, N)``."""
        if self.node_features == "identity":
            feats = self._eye.to(adjacency.dtype).expand(adjacency.shape[0], -1, -1)
        else:
            feats = adjacency
        h = self.act(self.conv1(feats, adjacency))
        h = self.conv2(h, adjacency)
        return h.mean(dim=1)

    def similarity(self, x: torch.Tensor) -> torch.Tensor:
        """Cosine similarity ``(B,)`` of the two graphs' embeddings."""
        pairs = self._pairs(x)
        batch = pairs.shape[0]
        adjacency = triangle_to_adjacency(pairs.reshape(2 * batch, self.n_edges), self.n_nodes)
        emb = self.embed(adjacency).view(batch, 2, -1)
        return F.cosine_similarity(emb[:, 0], emb[:, 1], dim=1, eps=1e-8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.classifier(self.similarity(x).unsqueeze(1)).squeeze(1)
        return torch.stack([-z / 2, z / 2], dim=1)
