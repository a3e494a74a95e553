"""Shared machinery: the explainer base class and post-processing of attribution maps."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch

from r2et_fast._validation import (
    check_bool,
    check_callable,
    check_choice,
    check_inputs,
    check_reduce_channels,
    prepare_target,
)

from ._score import SCORES

Model = Callable[[torch.Tensor], torch.Tensor]


def graph_input(inputs: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """The tensor the explanation is built from.

    With ``create_graph`` and an input that requires grad, the input itself (so the result is
    differentiable w.r.t. x); otherwise a detached alias, so the caller's tensor is untouched.
    """
    if create_graph and inputs.requires_grad:
        return inputs
    return inputs.detach()


def as_grad_leaf(z: torch.Tensor) -> torch.Tensor:
    """Make ``z`` require grad if it does not yet (it is then a fresh leaf of our own)."""
    return z if z.requires_grad else z.requires_grad_(True)


def abs_and_reduce(attr: torch.Tensor, use_abs: bool, reduce_channels: str | None) -> torch.Tensor:
    """Optionally take |.|, then reduce images (B, C, H, W) over channels to (B, H, W)."""
    if use_abs:
        attr = attr.abs()
    if reduce_channels == "sum":
        attr = attr.sum(dim=1)
    elif reduce_channels == "max":
        attr = attr.amax(dim=1)
    return attr


def normalize_map(attr: torch.Tensor) -> torch.Tensor:
    """Divide each sample's map by the sum of its absolute entries.

    For a non-negative map the result sums to 1. A zero map stays zero: the denominator is
    clamped to the smallest positive normal float, and every |entry| <= the sum anyway.
    """
    denom = attr.abs().flatten(1).sum(dim=1).clamp_min(torch.finfo(attr.dtype).tiny)
    return attr / denom.view(-1, *([1] * (attr.dim() - 1)))


class Explainer:
    """Base class: hyper-parameters are fixed at construction, data is given to ``attribute``.

    Subclasses define ``_defaults`` (hyper-parameter names and defaults), ``_check_params`` and
    ``_attribute``. Any hyper-parameter may be overridden for a single call by passing it as a
    keyword to ``attribute``.
    """

    _defaults: ClassVar[dict[str, Any]] = {}
    # Hyper-parameters every explainer has (``_check_common`` requires them); ``__init__`` sets
    # them from ``_defaults`` with setattr, so they are declared here for readers and type checkers.
    score: str
    abs: bool | None
    reduce_channels: str | None
    normalize: bool

    def __init__(self, model: Model, **params: Any) -> None:
        check_callable(model, "model")
        self.model = model
        merged = {**self._defaults, **params}
        self._check_params(merged)
        for name, value in merged.items():
            setattr(self, name, value)

    def _params(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(overrides) - set(self._defaults))
        if unknown:
            valid = ", ".join(self._defaults)
            raise TypeError(
                f"attribute() got unexpected keyword argument(s) {unknown}; "
                f"valid hyper-parameter overrides are: {valid}"
            )
        params = {name: getattr(self, name) for name in self._defaults}
        params.update(overrides)
        self._check_params(params)
        return params

    @staticmethod
    def _check_common(params: Mapping[str, Any]) -> None:
        check_choice(params["score"], "score", SCORES)
        if params.get("abs") is not None:
            check_bool(params["abs"], "abs")
        check_reduce_channels(params["reduce_channels"])
        check_bool(params["normalize"], "normalize")

    def _check_params(self, params: Mapping[str, Any]) -> None:
        self._check_common(params)

    def _attribute(
        self,
        inputs: torch.Tensor,
        target: torch.Tensor | None,
        create_graph: bool,
        params: Mapping[str, Any],
    ) -> torch.Tensor:
        raise NotImplementedError

    def attribute(
        self,
        inputs: torch.Tensor,
        target: int | torch.Tensor | None = None,
        create_graph: bool = False,
        **overrides: Any,
    ) -> torch.Tensor:
        """Explain ``model`` at ``inputs`` for class ``target``.

        Args:
            inputs: batch (B, ...) of float32/float64 inputs.
            target: class per sample: an int, a LongTensor (B,), or None for the prediction.
            create_graph: if True, keep the graph so the result can be differentiated again
                (w.r.t. the model parameters, and w.r.t. ``inputs`` if it requires grad);
                if False the result is detached.
            **overrides: hyper-parameters to use for this call instead of the stored ones.

        Returns:
            The attribution map, shaped like ``inputs`` (or (B, H, W) with channel reduction).
        """
        params = self._params(overrides)
        check_bool(create_graph, "create_graph")
        check_inputs(inputs)
        check_reduce_channels(params["reduce_channels"], inputs)
        labels = prepare_target(target, inputs)
        with torch.enable_grad():
            attr = self._attribute(inputs, labels, create_graph, params)
            if params["normalize"]:
                attr = normalize_map(attr)
        return attr if create_graph else attr.detach()

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._defaults)
        return f"{type(self).__name__}({args})"
