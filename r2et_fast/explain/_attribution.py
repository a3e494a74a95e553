"""Any differentiable attribution, as the attacks, thickness and metrics consume it.

Three kinds of objects explain a model here:

* an :class:`~r2et_fast.explain.Explainer` (``Saliency(model)``, ``IntegratedGradients(model)``, ...);
* a plain callable ``f(x, target) -> maps`` (B, ...) that is differentiable w.r.t. ``x`` when ``x``
  requires grad (the attacks differentiate the maps w.r.t. ``x``: a second-order gradient);
* an adapter of a Captum method (``from_captum``, :mod:`r2et_fast.explain._captum`).

:func:`as_attribution` turns each into one signature, ``fn(x, target, create_graph) -> maps``.
:func:`rebind` gives the same attribution of another model (the attacks' softplus surrogate).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch

from ._base import Explainer
from ._captum import CaptumAttribution

#: ``fn(x, target, create_graph) -> maps``: what :func:`as_attribution` returns.
AttributionFn = Callable[[torch.Tensor, torch.Tensor | None, bool], torch.Tensor]


@runtime_checkable
class Rebindable(Protocol):
    """An attribution that can explain another model with the same settings."""

    def with_model(self, model: Callable[[torch.Tensor], torch.Tensor]) -> Any: ...


def as_attribution(attribution: object, name: str = "explainer") -> AttributionFn:
    """``fn(x, target, create_graph) -> maps`` for an Explainer, a ``from_captum`` adapter or a
    callable ``f(x, target)``.

    With ``create_graph=False`` the maps are detached; with True they keep their graph, and a map
    of an ``x`` that requires grad must depend on ``x`` (an error names ``name`` otherwise: such a
    callable cannot be attacked by gradient steps). A plain callable runs with gradients enabled
    either way: it may need autograd to compute its maps (a saliency does).
    """
    if isinstance(attribution, (Explainer, CaptumAttribution)):
        explainer = attribution

        def explain(x: torch.Tensor, target: torch.Tensor | None, create_graph: bool) -> torch.Tensor:
            return explainer.attribute(x, target=target, create_graph=create_graph)

        return explain
    if not callable(attribution):
        raise TypeError(f"{name} must be an Explainer, a from_captum adapter or a callable "
                        f"f(x, target) -> maps, got {type(attribution).__name__}")
    fn = attribution

    def call(x: torch.Tensor, target: torch.Tensor | None, create_graph: bool) -> torch.Tensor:
        with torch.enable_grad():
            maps = fn(x, target)
        if not isinstance(maps, torch.Tensor):
            raise TypeError(f"{name} must return a torch.Tensor, got {type(maps).__name__}")
        if maps.dim() < 1 or maps.shape[0] != x.shape[0]:
            raise ValueError(f"{name} must return one map per input row ({x.shape[0]}, ...), got "
                             f"shape {tuple(maps.shape)}")
        if not create_graph:
            return maps.detach()
        if x.requires_grad and not maps.requires_grad:
            raise ValueError(f"{name} returned maps that do not depend on x differentiably; an "
                             "attack needs f(x, target) built with create_graph=True (second order)")
        return maps

    return call


def rebind(attribution: object, model: Callable[[torch.Tensor], torch.Tensor],
           name: str = "explainer") -> object:
    """The same attribution of ``model``: a shallow copy of an Explainer with its model replaced,
    or ``attribution.with_model(model)``; a plain callable cannot be rebound (error names ``name``)."""
    if isinstance(attribution, Explainer):
        out = copy.copy(attribution)
        out.model = model
        return out
    if isinstance(attribution, Rebindable):
        return attribution.with_model(model)
    raise TypeError(f"{name} is a plain callable; it cannot be moved to a surrogate model. Pass an "
                    "Explainer or a from_captum adapter, or drop surrogate_beta")


def attribution_model(attribution: object) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The model an Explainer or a from_captum adapter explains; None for a plain callable."""
    if isinstance(attribution, (Explainer, CaptumAttribution)):
        return attribution.model
    return None
