"""Integrated Gradients with Riemann or Gauss-Legendre quadrature."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from r2et_fast._validation import (
    check_choice,
    check_optional_positive_int,
    check_positive_int,
    prepare_baseline,
)

from ._base import Explainer, Model, abs_and_reduce, as_grad_leaf, graph_input
from ._score import EXPLAINER_SCORE, predict, score_gradient

# The quadrature rules of the path integral (``method=``).
QUADRATURES = (
    "riemann_trapezoid",
    "riemann_left",
    "riemann_right",
    "riemann_middle",
    "gausslegendre",
)


def quadrature(method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes alpha_k in [0, 1] and weights w_k with sum_k w_k g(alpha_k) ~ int_0^1 g(a) da."""
    n = n_steps
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)  # on [-1, 1]
        return (nodes + 1.0) / 2.0, weights / 2.0
    if method == "riemann_trapezoid":
        if n < 2:
            raise ValueError("n_steps must be >= 2 for method='riemann_trapezoid'")
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] /= 2.0
        return np.linspace(0.0, 1.0, n), weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[method]
    return (np.arange(n) + offset) / n, np.full(n, 1.0 / n)


class IntegratedGradients(Explainer):
    """Integrated Gradients: I(x) = (x - x0) * int_0^1 ds/dx(x0 + a (x - x0)) da.

    The integral is approximated by sum_k w_k ds/dx(x0 + alpha_k (x - x0)) with the nodes and
    weights of ``method``. For a model linear in x the result is exact for every method.

    Args:
        model: callable mapping a batch (B, ...) to class scores (B, C).
        n_steps: number of quadrature nodes (default 50; >= 2 for the trapezoid rule).
        baseline: x0: None (zeros), a number, or a tensor broadcastable to the inputs' shape.
            With ``create_graph`` a baseline that requires grad stays in the graph.
        method: ``"riemann_trapezoid"`` (default), ``"riemann_left"``, ``"riemann_right"``,
            ``"riemann_middle"`` or ``"gausslegendre"`` (Gauss-Legendre nodes mapped to [0, 1]).
        chunk_size: number of quadrature nodes per forward pass (B * chunk_size rows); None
            = all nodes at once.
        internal_batch_size: Captum-style alternative to ``chunk_size``: rows per forward pass,
            rounded down to a multiple of B (at least B). Give at most one of the two.
        score, abs, reduce_channels, normalize: as in :class:`Saliency`, applied to the final
            map; ``abs`` defaults to False.

    With ``target=None`` the class is the prediction at x (not along the path).
    """

    _defaults = {
        "n_steps": 50,
        "baseline": None,
        "method": "riemann_trapezoid",
        "chunk_size": None,
        "internal_batch_size": None,
        "score": EXPLAINER_SCORE,
        "abs": False,
        "reduce_channels": None,
        "normalize": False,
    }

    def __init__(
        self,
        model: Model,
        n_steps: int = 50,
        baseline: float | torch.Tensor | None = None,
        method: str = "riemann_trapezoid",
        chunk_size: int | None = None,
        internal_batch_size: int | None = None,
        score: str = EXPLAINER_SCORE,
        abs: bool = False,  # noqa: A002 - Captum-style name
        reduce_channels: str | None = None,
        normalize: bool = False,
    ) -> None:
        super().__init__(
            model,
            n_steps=n_steps,
            baseline=baseline,
            method=method,
            chunk_size=chunk_size,
            internal_batch_size=internal_batch_size,
            score=score,
            abs=abs,
            reduce_channels=reduce_channels,
            normalize=normalize,
        )

    def _check_params(self, params: Mapping[str, Any]) -> None:
        self._check_common(params)
        n_steps = check_positive_int(params["n_steps"], "n_steps")
        method = check_choice(params["method"], "method", QUADRATURES)
        if method == "riemann_trapezoid" and n_steps < 2:
            raise ValueError("n_steps must be >= 2 for method='riemann_trapezoid'")
        check_optional_positive_int(params["chunk_size"], "chunk_size")
        check_optional_positive_int(params["internal_batch_size"], "internal_batch_size")
        if params["chunk_size"] is not None and params["internal_batch_size"] is not None:
            raise ValueError("chunk_size and internal_batch_size are mutually exclusive")

    def _attribute(self, inputs, target, create_graph, params):
        x = graph_input(inputs, create_graph)
        x0 = prepare_baseline(params["baseline"], inputs, keep_graph=create_graph)
        if target is None:
            target = predict(self.model, inputs)
        batch, rest = x.shape[0], x.shape[1:]
        n_steps = params["n_steps"]
        if params["internal_batch_size"] is not None:
            chunk = max(1, params["internal_batch_size"] // batch)
        else:
            chunk = params["chunk_size"] or n_steps

        nodes, weights = quadrature(params["method"], n_steps)
        nodes = torch.as_tensor(nodes, dtype=x.dtype, device=x.device)
        weights = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
        bcast = (-1,) + (1,) * x.dim()  # (k, 1, 1, ...) against (k, B, ...)
        diff = x - x0

        avg_grad = None
        for start in range(0, n_steps, chunk):
            alpha = nodes[start : start + chunk].view(bcast)
            k = alpha.shape[0]
            path = x0.unsqueeze(0) + alpha * diff.unsqueeze(0)  # (k, B, ...)
            z = as_grad_leaf(path.reshape(k * batch, *rest))
            grad, _ = score_gradient(self.model, z, target.repeat(k), params["score"], create_graph)
            w = weights[start : start + chunk].view(bcast)
            part = (w * grad.reshape(k, batch, *rest)).sum(dim=0)
            avg_grad = part if avg_grad is None else avg_grad + part
        attr = diff * avg_grad
        return abs_and_reduce(attr, params["abs"], params["reduce_channels"])


def integrated_gradients(
    model: Model,
    inputs: torch.Tensor,
    target: int | torch.Tensor | None = None,
    create_graph: bool = False,
    **kwargs: Any,
) -> torch.Tensor:
    """Functional form of :class:`IntegratedGradients`."""
    return IntegratedGradients(model, **kwargs).attribute(inputs, target, create_graph)
