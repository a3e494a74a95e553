"""Gradient saliency and gradient x input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ._base import Explainer, Model, abs_and_reduce, as_grad_leaf, graph_input
from ._score import EXPLAINER_SCORE, score_gradient


def _gradient_map(
    model: Model,
    inputs: torch.Tensor,
    target: torch.Tensor | None,
    create_graph: bool,
    params: Mapping[str, Any],
    times_input: bool,
) -> torch.Tensor:
    z = as_grad_leaf(graph_input(inputs, create_graph))
    grad, _ = score_gradient(model, z, target, params["score"], create_graph)
    attr = grad * z if times_input else grad
    return abs_and_reduce(attr, params["abs"], params["reduce_channels"])


class Saliency(Explainer):
    """Gradient saliency: I(x) = |ds(x)/dx|.

    Args:
        model: callable mapping a batch (B, ...) to class scores (B, C).
        score: the differentiated score s: ``"logit"`` (z_c), ``"prob"`` (softmax_c) or
            ``"loss"`` (per-sample cross-entropy at c); default ``EXPLAINER_SCORE`` (the logit).
            See ``r2et_fast.explain._score`` for single-output models and the choice of default.
        abs: take the absolute value of the gradient (default True).
        reduce_channels: None, or ``"sum"``/``"max"`` over dim 1 of images (B, C, H, W),
            applied after ``abs``, giving (B, H, W).
        normalize: divide each sample's map by the sum of its absolute entries (sums to 1 when
            the map is non-negative), after ``abs`` and the reduction.
    """

    _defaults = {"score": EXPLAINER_SCORE, "abs": True, "reduce_channels": None, "normalize": False}

    def __init__(
        self,
        model: Model,
        score: str = EXPLAINER_SCORE,
        abs: bool = True,  # noqa: A002 - Captum-style name
        reduce_channels: str | None = None,
        normalize: bool = False,
    ) -> None:
        super().__init__(
            model, score=score, abs=abs, reduce_channels=reduce_channels, normalize=normalize
        )

    def _attribute(self, inputs, target, create_graph, params):
        return _gradient_map(self.model, inputs, target, create_graph, params, times_input=False)


class GradientXInput(Explainer):
    """Gradient times input: I(x) = ds(x)/dx * x (elementwise).

    Takes the same arguments as :class:`Saliency`, but ``abs`` defaults to False.
    """

    _defaults = {"score": EXPLAINER_SCORE, "abs": False, "reduce_channels": None, "normalize": False}

    def __init__(
        self,
        model: Model,
        score: str = EXPLAINER_SCORE,
        abs: bool = False,  # noqa: A002 - Captum-style name
        reduce_channels: str | None = None,
        normalize: bool = False,
    ) -> None:
        super().__init__(
            model, score=score, abs=abs, reduce_channels=reduce_channels, normalize=normalize
        )

    def _attribute(self, inputs, target, create_graph, params):
        return _gradient_map(self.model, inputs, target, create_graph, params, times_input=True)


def saliency(
    model: Model,
    inputs: torch.Tensor,
    target: int | torch.Tensor | None = None,
    create_graph: bool = False,
    **kwargs: Any,
) -> torch.Tensor:
    """Functional form of :class:`Saliency`: ``Saliency(model, **kwargs).attribute(...)``."""
    return Saliency(model, **kwargs).attribute(inputs, target, create_graph)


def gradient_x_input(
    model: Model,
    inputs: torch.Tensor,
    target: int | torch.Tensor | None = None,
    create_graph: bool = False,
    **kwargs: Any,
) -> torch.Tensor:
    """Functional form of :class:`GradientXInput`."""
    return GradientXInput(model, **kwargs).attribute(inputs, target, create_graph)
