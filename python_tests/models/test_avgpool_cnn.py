"""The average-pooling MNIST CNN: the §8 layout as an nn.Sequential that the sound bounds read."""

from __future__ import annotations

import pytest
import torch

from r2et_fast.bounds._interval import layers_of
from r2et_fast.models import AvgPoolCNN, build
from r2et_fast.train import TrainConfig


def test_build_and_shapes():
    model = build("avgpool_cnn", (1, 28, 28), 10, activation="softplus")
    assert isinstance(model, AvgPoolCNN)
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    with pytest.raises(ValueError, match="AvgPoolCNN expects inputs of shape"):
        model(torch.rand(3, 1, 27, 27))
    with pytest.raises(ValueError, match="needs inputs of shape"):
        build("avgpool_cnn", (2, 28, 28))
    assert TrainConfig(arch="avgpool_cnn").arch == "avgpool_cnn"


def test_the_sound_bounds_read_every_layer():
    kinds = [layer.kind for layer in layers_of(AvgPoolCNN(4))]
    assert kinds == ["conv", "act", "avgpool", "conv", "act", "avgpool", "flatten", "linear", "act",
                     "linear", "act", "linear"]
