"""Captum attribution methods as differentiable attributions: ``from_captum(method, **kwargs)``.

The attacks differentiate an explanation w.r.t. the input (a second-order gradient), but Captum's
gradients are first order: its ``compute_gradients`` calls ``torch.autograd.grad`` without
``create_graph``, so its maps carry no graph back to x. The methods built on plain input gradients
call that function through the instance attribute ``self.gradient_func``; the adapter runs a shallow
copy of the method whose ``gradient_func`` keeps the graph (same forward, same target selection
through Captum's own ``_run_forward``), so the maps are differentiable w.r.t. x and the parameters.

Supported (:data:`CAPTUM_SUPPORTED`), checked against r2et_fast's own explainers in float64 (maps
and the input gradient of a scalar of the maps):

* ``Saliency`` (= :class:`~r2et_fast.explain.Saliency`, logit score; ``abs`` as given),
* ``InputXGradient`` (= :class:`~r2et_fast.explain.GradientXInput`),
* ``IntegratedGradients`` (= :class:`~r2et_fast.explain.IntegratedGradients` with the same nodes and
  weights; note that Captum's ``riemann_trapezoid`` weighs 1/n, halved at the ends, not 1/(n - 1),
  and that Captum rounds the weights to float32 (``torch.tensor(step_sizes).float()``), so float64
  maps agree to about 1e-8 relative unless the weights are binary fractions, e.g.
  ``riemann_right`` with a power-of-two ``n_steps``).

Refused, with the reason in the error (:data:`CAPTUM_REFUSED`): NoiseTunnel and GradientShap (they
run under ``torch.no_grad`` or draw from the global RNG: use the seeded, differentiable
:class:`~r2et_fast.explain.SmoothGrad`); DeepLift, DeepLiftShap, GuidedBackprop, Deconvolution,
GuidedGradCam and LRP (their backward rules replace the model's derivatives, with activations
detached in hooks, so autograd's derivative of their maps is not the maps' derivative); every
perturbation method (FeatureAblation, Occlusion, Shapley values, FeaturePermutation, Lime,
KernelShap: they evaluate masked inputs under ``torch.no_grad``, so the maps have no gradient
w.r.t. x); layer and neuron methods (they explain a hidden layer or a neuron, not the class score
w.r.t. the input).

Captum is imported only when an adapter is built; ``import r2et_fast`` does not need it.
"""

from __future__ import annotations

import copy
import importlib
import inspect
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import torch

from r2et_fast._validation import (
    check_bool,
    check_inputs,
    check_model_output,
    check_target_range,
    prepare_target,
)

from ._score import predicted_class

#: The Captum classes ``from_captum`` adapts (methods built on plain input gradients).
CAPTUM_SUPPORTED = ("Saliency", "InputXGradient", "IntegratedGradients")

#: Captum classes (and base classes) ``from_captum`` refuses, with the reason given in the error.
CAPTUM_REFUSED: dict[str, str] = {
    # layer and neuron variants first: they subclass the input methods below (LayerDeepLift, ...)
    "LayerAttribution": "it attributes to a hidden layer, not to the input",
    "NeuronAttribution": "it explains one neuron, not the class score",
    "NoiseTunnel": "it runs the wrapped method under torch.no_grad on noise from the global RNG, so "
                   "its maps have no graph to x; use r2et_fast.explain.SmoothGrad (seeded, "
                   "differentiable)",
    "GradientShap": "it draws baselines and noise from the global RNG through a NoiseTunnel; use "
                    "r2et_fast.explain.SmoothGrad or IntegratedGradients",
    "DeepLift": "its backward rule (multipliers from activations detached in hooks) replaces the "
                "model's derivatives, so autograd's derivative of its maps w.r.t. x is not theirs",
    "GuidedBackprop": "it overrides the ReLU gradients in hooks, so its maps are not a derivative "
                      "autograd can differentiate again",
    "Deconvolution": "it overrides the ReLU gradients in hooks, so its maps are not a derivative "
                     "autograd can differentiate again",
    "GuidedGradCam": "it combines a layer attribution with guided backprop (modified gradients)",
    "LRP": "its propagation rules replace the model's derivatives in hooks",
    "PerturbationAttribution": "it evaluates masked or perturbed inputs under torch.no_grad, so its "
                               "maps have no gradient w.r.t. x (a gradient attack cannot use them)",
}

# Keyword arguments the adapter sets itself or that would break the second-order graph.
_PER_CALL = ("inputs", "target")
_REFUSED_KWARGS = {
    "additional_forward_args": "r2et_fast models take x only, and rows are re-batched (attack steps, "
                               "thickness paths); close over extra arguments in the model instead",
    "internal_batch_size": "Captum's batching detaches every chunk but the first "
                           "(captum.attr._utils.batching), which would drop most of the gradient",
    "return_convergence_delta": "the adapter returns the maps only",
}


def _captum_attr() -> ModuleType:
    """``captum.attr``, imported on first use (r2et_fast does not depend on Captum)."""
    try:
        return importlib.import_module("captum.attr")
    except ImportError as exc:
        raise ImportError("from_captum needs Captum: pip install captum (r2et_fast itself runs "
                          "without it)") from exc


def _gradients_with_graph(forward_fn: Callable, inputs: tuple[torch.Tensor, ...], target_ind: Any = None,
                          additional_forward_args: Any = None) -> tuple[torch.Tensor, ...]:
    """Captum's ``gradient_func`` contract (as ``captum._utils.gradient.compute_gradients``), but
    with ``create_graph=True`` so the gradients can be differentiated again."""
    run_forward = importlib.import_module("captum._utils.common")._run_forward
    with torch.enable_grad():
        out = run_forward(forward_fn, inputs, target_ind, additional_forward_args)
        if not isinstance(out, torch.Tensor) or out.dim() == 0 or out[0].numel() != 1:
            raise ValueError("from_captum: the selected model output must be one score per sample; "
                             "give a target for a model with several outputs")
        # the sum of the per-sample scores: each row's gradient is its own (rows are independent)
        grads = torch.autograd.grad(out, inputs, torch.ones_like(out), create_graph=True,
                                    allow_unused=True)
    return tuple(torch.zeros_like(z) if g is None else g for g, z in zip(grads, inputs))


def _refusal(method: object, attr: ModuleType) -> str | None:
    """Why ``method`` cannot be adapted, or None if it can."""
    supported = tuple(getattr(attr, name) for name in CAPTUM_SUPPORTED)
    for name, reason in CAPTUM_REFUSED.items():
        if isinstance(method, getattr(attr, name)):
            return reason
    if isinstance(method, supported):
        return None
    return "only methods built on plain input gradients are adapted"


def _check_kwargs(method: Any, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    params = inspect.signature(type(method).attribute).parameters
    valid = [p for p in params if p not in ("self", *_PER_CALL)]
    for key, value in kwargs.items():
        if key in _PER_CALL:
            raise TypeError(f"from_captum got {key!r}: the inputs and target are given per call, "
                            "adapter(x, target)")
        if key not in valid:
            raise TypeError(f"from_captum got an unexpected keyword argument {key!r} for "
                            f"{type(method).__name__}.attribute; valid: {', '.join(valid)}")
        if key in _REFUSED_KWARGS and value is not None and value is not False:
            raise ValueError(f"from_captum does not accept {key}={value!r}: {_REFUSED_KWARGS[key]}")
    return dict(kwargs)


class CaptumAttribution:
    """A Captum method as a differentiable attribution (build it with :func:`from_captum`).

    ``adapter(x, target)`` returns maps with their graph kept (differentiable w.r.t. ``x`` when it
    requires grad, and w.r.t. the model parameters); ``attribute(x, target, create_graph=False)``
    returns detached maps from Captum's own first-order call. ``with_model(model)`` gives the same
    Captum class and keyword arguments on another model (the attacks' softplus surrogate).

    ``target``: an int, a LongTensor (B,) or None for the predicted class at ``x`` (argmax), as in
    r2et_fast; it selects the model output column. For a single-output model (B, 1) the target
    is ignored (its one output is explained, like r2et_fast's logit score with labels {0, 1}). The
    explained score is the model output (Captum's convention, the logit); to explain a
    probability or a loss, wrap the model.
    """

    def __init__(self, method: Any, attribute_kwargs: Mapping[str, Any]) -> None:
        self.method = method
        self.attribute_kwargs = dict(attribute_kwargs)
        self._graph_method = copy.copy(method)
        # an instance attribute, shadowing the one GradientAttribution.__init__ set on the original
        self._graph_method.gradient_func = _gradients_with_graph
        self._n_outputs: int | None = None  # the model's output width, learnt on the first call

    @property
    def model(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The explained model (the Captum method's ``forward_func``)."""
        return self.method.forward_func

    def with_model(self, model: Callable[[torch.Tensor], torch.Tensor]) -> CaptumAttribution:
        """The same Captum method and keyword arguments on ``model`` (the original is unchanged)."""
        if not callable(model):
            raise TypeError(f"model must be callable, got {type(model).__name__}")
        method = copy.copy(self.method)
        method.forward_func = model
        return CaptumAttribution(method, self.attribute_kwargs)

    def _captum_target(self, x: torch.Tensor, target: object) -> torch.Tensor | None:
        """The target for Captum: the labels (B,), or None for a single-output model."""
        labels = prepare_target(target, x)
        if labels is None or self._n_outputs is None:  # a forward pass only when it is needed
            with torch.no_grad():
                out = check_model_output(self.model(x.detach()), x.shape[0])
            self._n_outputs = out.shape[1]
            if labels is None:
                labels = predicted_class(out)
        check_target_range(labels, self._n_outputs)
        return None if self._n_outputs == 1 else labels

    def attribute(self, inputs: torch.Tensor, target: object = None,
                  create_graph: bool = False) -> torch.Tensor:
        """The maps (B, ...) of ``inputs`` for ``target``; with ``create_graph`` differentiable
        (w.r.t. ``inputs`` if it requires grad), otherwise detached."""
        check_bool(create_graph, "create_graph")
        check_inputs(inputs)
        captum_target = self._captum_target(inputs, target)
        # Captum sets requires_grad on the tensor it is given (and warns): give it our own leaf
        # unless the caller's x is to stay in the graph.
        keep = create_graph and inputs.requires_grad
        z = inputs if keep else inputs.detach().requires_grad_(True)
        method = self._graph_method if create_graph else self.method
        with torch.enable_grad():
            maps = method.attribute(z, target=captum_target, **self.attribute_kwargs)
        if not isinstance(maps, torch.Tensor):
            raise TypeError(f"{type(self.method).__name__}.attribute returned "
                            f"{type(maps).__name__}, not a tensor")
        return maps if create_graph else maps.detach()

    def __call__(self, x: torch.Tensor, target: object = None) -> torch.Tensor:
        """``attribute(x, target, create_graph=True)``: the maps with their graph kept."""
        return self.attribute(x, target, create_graph=True)

    def __repr__(self) -> str:
        kwargs = "".join(f", {k}={val!r}" for k, val in self.attribute_kwargs.items())
        return f"from_captum({type(self.method).__name__}(...){kwargs})"


def from_captum(captum_method: Any, **attribute_kwargs: Any) -> CaptumAttribution:
    """Adapt a Captum method instance, e.g. ``from_captum(IntegratedGradients(model), n_steps=16)``.

    Args:
        captum_method: an instance of one of :data:`CAPTUM_SUPPORTED` (``captum.attr``), built on
            the model to explain.
        **attribute_kwargs: keyword arguments of its ``attribute`` passed on every call (``abs``,
            ``baselines``, ``n_steps``, ``method``, ...), except ``inputs``/``target`` (per call)
            and the ones that break the graph or the batch (``internal_batch_size``,
            ``additional_forward_args``, ``return_convergence_delta``). A tensor baseline should
            broadcast over batches of any size (a number, or one sample's shape with a leading 1):
            attacks and thickness explain batches of other sizes than x.

    Returns:
        A :class:`CaptumAttribution`: ``adapter(x, target)`` (graph kept), ``attribute``,
        ``with_model``. The attacks and ``topk_thickness`` accept it (through
        :func:`r2et_fast.explain._attribution.as_attribution`).
    """
    attr = _captum_attr()
    if inspect.isclass(captum_method):
        raise TypeError(f"captum_method must be an instance, e.g. {captum_method.__name__}(model), "
                        "not the class")
    if not isinstance(captum_method, attr.Attribution):
        raise TypeError(f"captum_method must be a Captum attribution method (captum.attr), got "
                        f"{type(captum_method).__name__}")
    reason = _refusal(captum_method, attr)
    if reason is not None:
        raise TypeError(f"from_captum cannot adapt {type(captum_method).__name__}: {reason}. "
                        f"Supported: {', '.join(CAPTUM_SUPPORTED)}")
    return CaptumAttribution(captum_method, _check_kwargs(captum_method, attribute_kwargs))
