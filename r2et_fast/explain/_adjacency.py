"""Grad × input on graph edges: the graph explanation of docs/spec.md §1.

The graph models take the strict upper triangle of each weighted adjacency matrix as input (see
:mod:`r2et_fast.graph_encoding`: ``x`` of shape ``(B, 2, m)`` for graph pairs, ``m = N(N-1)/2``), so the
input gradient of the score is already the gradient w.r.t. the upper triangle: a perturbation of
entry ``(i, j)`` moves ``A_ij`` and ``A_ji`` together. The explanation is

    I(x) = |∂s/∂x ⊙ x|, divided by its sum over the whole sample,

so each sample's map (both graphs of a pair together) sums to 1 — the normalisation matches the
top-k metrics and attacks, which rank the ``2m`` entries of ``x.flatten(1)`` jointly. An absent edge
(weight 0) gets attribution 0. A sample whose map is all zero stays zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from r2et_fast.graph_encoding import n_nodes_of, triangle_to_adjacency

from ._base import Explainer, Model
from ._gradient import _gradient_map
from ._score import EXPLAINER_SCORE


class AdjacencyGradXInput(Explainer):
    """Grad × input on the upper-triangle edge weights of graph inputs, normalised to sum 1.

    Args:
        model: callable mapping a batch of upper-triangle weights ``(B, ..., m)`` (graph pairs:
            ``(B, 2, m)``) to class scores ``(B, C)``.
        score: the differentiated score: ``"logit"``, ``"prob"`` or ``"loss"``.
        abs: take ``|∂s/∂x ⊙ x|`` (default True, so the normalised map is a distribution).
        normalize: divide each sample's map by the sum of its absolute entries (default True).

    The result has the inputs' shape. ``attribute(inputs, target=None, create_graph=False)`` as for
    every :class:`~r2et_fast.explain.Explainer`; with ``create_graph=True`` it is differentiable
    w.r.t. the model parameters and ``inputs`` (R2ET's double backprop).
    """

    _defaults = {"score": EXPLAINER_SCORE, "abs": True, "reduce_channels": None, "normalize": True}

    def __init__(
        self,
        model: Model,
        score: str = EXPLAINER_SCORE,
        abs: bool = True,  # noqa: A002 - Captum-style name
        normalize: bool = True,
    ) -> None:
        super().__init__(model, score=score, abs=abs, normalize=normalize)

    def _check_params(self, params: Mapping[str, Any]) -> None:
        if params["reduce_channels"] is not None:
            raise ValueError("reduce_channels must be None for adjacency inputs (they have no channels), "
                             f"got {params['reduce_channels']!r}")
        self._check_common(params)

    def _attribute(self, inputs, target, create_graph, params):
        if inputs.dim() < 2:
            raise ValueError(f"inputs must have shape (B, ..., m) of upper-triangle edge weights, "
                             f"got shape {tuple(inputs.shape)}")
        try:
            n_nodes_of(inputs.shape[-1])
        except ValueError as exc:
            raise ValueError(f"inputs must hold upper-triangle edge weights in the last dimension "
                             f"(m = N(N-1)/2 entries), got shape {tuple(inputs.shape)}: {exc}") from None
        return _gradient_map(self.model, inputs, target, create_graph, params, times_input=True)


def adjacency_grad_x_input(
    model: Model,
    inputs: torch.Tensor,
    target: int | torch.Tensor | None = None,
    create_graph: bool = False,
    **kwargs: Any,
) -> torch.Tensor:
    """Functional form of :class:`AdjacencyGradXInput`."""
    return AdjacencyGradXInput(model, **kwargs).attribute(inputs, target, create_graph)


def edge_map(attr: torch.Tensor, n_nodes: int | None = None) -> torch.Tensor:
    """An upper-triangle attribution ``(..., m)`` as symmetric ``(..., N, N)`` matrices (for display:
    entry ``(i, j)`` and ``(j, i)`` both hold the edge's attribution; the diagonal is 0)."""
    return triangle_to_adjacency(attr, n_nodes)
