"""The papers' MNIST CNNs (docs/spec.md §8): the embedding CNN, its single-input classifier and the siamese
pair model (cosine similarity of the two embeddings -> one-unit linear classifier)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from r2et_fast.models._activation import make_activation


class EmbeddingCNN(nn.Module):
    """Conv(1->8, 3x3) -> MaxPool 2 -> act -> Conv(8->16, 5x5) -> MaxPool 3 -> act -> flatten 144
    -> Linear 64 -> act -> Linear 32 -> act -> Linear ``out`` (28x28 inputs)."""

    def __init__(self, out: int = 10, activation: str = "relu", beta: float = 10.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3)
        self.conv2 = nn.Conv2d(8, 16, 5)
        self.fc1 = nn.Linear(144, 64)
        self.fc2 = nn.Linear(64, 32)
        self.fc3 = nn.Linear(32, out)
        self.act = make_activation(activation, beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(F.max_pool2d(self.conv1(x), 2))
        h = self.act(F.max_pool2d(self.conv2(h), 3))
        h = self.act(self.fc1(h.flatten(1)))
        return self.fc3(self.act(self.fc2(h)))


def _check_image(x: torch.Tensor, channels: int, name: str) -> None:
    if x.dim() != 4 or tuple(x.shape[1:]) != (channels, 28, 28):
        raise ValueError(f"{name} expects inputs of shape (B, {channels}, 28, 28), got {tuple(x.shape)}")


class MnistCNN(nn.Module):
    """Single-input classifier: the embedding CNN with ``n_classes`` outputs as logits."""

    def __init__(self, n_classes: int = 10, activation: str = "relu", beta: float = 10.0) -> None:
        super().__init__()
        self.body = EmbeddingCNN(n_classes, activation, beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_image(x, 1, "MnistCNN")
        return self.body(x)


class SiameseCNN(nn.Module):
    """Pair model on x (B, 2, 28, 28): one shared embedding CNN for both images, their cosine
    similarity s, and a one-unit classifier z = a s + b ("same digit"). Returns the two-class
    logits (-z/2, z/2), so softmax / cross-entropy on them is the sigmoid / BCE on z."""

    def __init__(self, embedding: int = 10, activation: str = "relu", beta: float = 10.0) -> None:
        super().__init__()
        self.embed = EmbeddingCNN(embedding, activation, beta)
        self.head = nn.Linear(1, 1)
        with torch.no_grad():  # start with "more similar -> more likely the same digit": a > 0
            self.head.weight.fill_(1.0)
            self.head.bias.zero_()

    def embeddings(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_image(x, 2, "SiameseCNN")
        e = self.embed(x.reshape(-1, 1, 28, 28)).view(x.shape[0], 2, -1)
        return e[:, 0], e[:, 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.embeddings(x)
        z = self.head(F.cosine_similarity(a, b, dim=1, eps=1e-8).unsqueeze(1))
        return torch.cat([-z / 2, z / 2], dim=1)


class AvgPoolCNN(nn.Sequential):
    """The embedding CNN's layout with average pooling, as a plain ``nn.Sequential`` classifier:
    Conv(1->8, 3x3) -> act -> AvgPool 2 -> Conv(8->16, 5x5) -> act -> AvgPool 3 -> flatten 144 ->
    Linear 64 -> act -> Linear 32 -> act -> Linear ``n_classes`` (28x28 single digits).

    Average pooling is linear, so the sound bounds (:func:`r2et_fast.bounds.sound_saliency_bounds`)
    can propagate through it, unlike max pooling, whose gradient routing jumps inside any ball. The
    activation comes before each pool (the max pool commutes with a monotone activation, an
    average does not; this is the usual order).
    """

    def __init__(self, n_classes: int = 10, activation: str = "relu", beta: float = 10.0) -> None:
        def act() -> nn.Module:
            return make_activation(activation, beta)

        super().__init__(nn.Conv2d(1, 8, 3), act(), nn.AvgPool2d(2), nn.Conv2d(8, 16, 5), act(),
                         nn.AvgPool2d(3), nn.Flatten(), nn.Linear(144, 64), act(), nn.Linear(64, 32), act(),
                         nn.Linear(32, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_image(x, 1, "AvgPoolCNN")
        return super().forward(x)
