"""Models of the papers (docs/spec.md §8) and a registry that builds them from an input shape.

Every model maps one tensor batch x (B, ...) to class logits (B, C), so training, attacks and the
ranking ops work on x.flatten(1) whatever the modality:

- ``"mlp"``: tabular, x (B, n);
- ``"cnn"``: single MNIST digits, x (B, 1, 28, 28);
- ``"avgpool_cnn"``: the same layout with average pooling (an ``nn.Sequential``), the CNN the sound
  certificate can bound (docs/spec.md §7, §8);
- ``"siamese_cnn"``: MNIST pairs, x (B, 2, 28, 28);
- ``"siamese_gcn"``: graph pairs, x (B, 2, m) with the strict upper triangles (m = N(N-1)/2) of
  the two weighted adjacency matrices (needs torch_geometric).
"""

from __future__ import annotations

import math

import torch

from r2et_fast.graph_encoding import n_nodes_of
from r2et_fast.models._activation import ACTIVATIONS, make_activation
from r2et_fast.models.cnn import AvgPoolCNN, EmbeddingCNN, MnistCNN, SiameseCNN
from r2et_fast.models.smooth_pool import POOLINGS, SmoothPoolCNN, lse_pool2d, with_pooling
from r2et_fast.models.tabular import TabularMLP

ARCHITECTURES = ("mlp", "cnn", "avgpool_cnn", "siamese_cnn", "siamese_gcn")
DEFAULT_ACTIVATION = {"mlp": "leaky_relu", "cnn": "relu", "avgpool_cnn": "relu", "siamese_cnn": "relu",
                      "siamese_gcn": "relu"}


def build(arch: str, input_shape: tuple[int, ...], n_classes: int = 2, *, activation: str | None = None,
          beta: float = 10.0, hidden: int = 32, node_features: str = "identity") -> torch.nn.Module:
    """The model ``arch`` for samples of shape ``input_shape`` (without the batch dimension)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")
    shape = tuple(int(s) for s in input_shape)
    act = activation or DEFAULT_ACTIVATION[arch]
    if arch == "mlp":
        return TabularMLP(math.prod(shape), n_classes, hidden, act, beta)
    if arch in ("cnn", "avgpool_cnn", "siamese_cnn"):
        channels = 2 if arch == "siamese_cnn" else 1
        if shape != (channels, 28, 28):
            raise ValueError(f"arch {arch!r} needs inputs of shape ({channels}, 28, 28), got {shape}")
        if arch == "cnn":
            return MnistCNN(n_classes, act, beta)
        if arch == "avgpool_cnn":
            return AvgPoolCNN(n_classes, act, beta)
        if n_classes != 2:
            raise ValueError(f"siamese models classify 'same or not' (2 classes), got n_classes={n_classes}")
        return SiameseCNN(activation=act, beta=beta)
    if len(shape) != 2 or shape[0] != 2:
        raise ValueError(f"arch 'siamese_gcn' needs inputs of shape (2, m), got {shape}")
    if n_classes != 2:
        raise ValueError(f"siamese models classify 'same or not' (2 classes), got n_classes={n_classes}")
    from r2et_fast.models.gcn import SiameseGCN  # needs torch_geometric

    return SiameseGCN(n_nodes_of(shape[1]), activation=act, beta=beta, node_features=node_features)


__all__ = ["ACTIVATIONS", "ARCHITECTURES", "AvgPoolCNN", "EmbeddingCNN", "MnistCNN", "POOLINGS", "SiameseCNN",
           "SmoothPoolCNN", "TabularMLP", "build", "lse_pool2d", "make_activation",
           "with_pooling"]
