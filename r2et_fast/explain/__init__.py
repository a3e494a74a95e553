"""Differentiable saliency explanations of PyTorch classifiers.

A model f maps a batch x (B, ...) to class scores (B, C). Each method explains a score s(x)
of class ``target`` (an int, a LongTensor (B,), or None for the predicted class), chosen with
``score=``: ``"logit"``, ``"prob"`` (softmax) or ``"loss"`` (cross-entropy). Explainers default to
``EXPLAINER_SCORE`` (the logit, Captum's convention); training, regularisers and the attacks'
default explainer use ``TRAINING_SCORE`` (the loss, as R2ET's authors); the reasons are in
:mod:`r2et_fast.explain._score`.

All methods are pure PyTorch. With ``create_graph=True`` the explanation can be differentiated
again (w.r.t. the model parameters, and w.r.t. x if x requires grad), as R2ET training needs;
otherwise it is detached. The model's train/eval mode and the caller's tensors are untouched.

Captum methods built on input gradients (``CAPTUM_SUPPORTED``) are adapted by
``from_captum(method, **attribute_kwargs)``, second-order like these (Captum is imported only then).
"""

from __future__ import annotations

from typing import Any

from ._adjacency import AdjacencyGradXInput, adjacency_grad_x_input, edge_map
from ._base import Explainer, Model
from ._captum import CAPTUM_SUPPORTED, CaptumAttribution, from_captum
from ._gradient import GradientXInput, Saliency, gradient_x_input, saliency
from ._integrated_gradients import IntegratedGradients, integrated_gradients
from ._score import EXPLAINER_SCORE, SCORES, TRAINING_SCORE
from ._smoothgrad import SmoothGrad, smoothgrad

EXPLAINERS: dict[str, type[Explainer]] = {
    "saliency": Saliency,
    "gradxinput": GradientXInput,
    "smoothgrad": SmoothGrad,
    "ig": IntegratedGradients,
    "adjacency": AdjacencyGradXInput,
}


def get_explainer(name: str, model: Model, **kwargs: Any) -> Explainer:
    """Build an explainer by name.

    Args:
        name: one of ``"saliency"``, ``"gradxinput"``, ``"smoothgrad"``, ``"ig"``, ``"adjacency"``
            (grad x input on graph edges, normalised to sum 1).
        model: callable mapping a batch (B, ...) to class scores (B, C).
        **kwargs: hyper-parameters passed to the explainer's constructor.
    """
    if not isinstance(name, str) or name not in EXPLAINERS:
        valid = ", ".join(repr(n) for n in EXPLAINERS)
        raise ValueError(f"name must be one of {valid}; got {name!r}")
    return EXPLAINERS[name](model, **kwargs)


__all__ = [
    "AdjacencyGradXInput",
    "adjacency_grad_x_input",
    "edge_map",
    "CAPTUM_SUPPORTED",
    "CaptumAttribution",
    "EXPLAINERS",
    "SCORES",
    "EXPLAINER_SCORE",
    "TRAINING_SCORE",
    "Explainer",
    "GradientXInput",
    "IntegratedGradients",
    "Saliency",
    "SmoothGrad",
    "from_captum",
    "get_explainer",
    "gradient_x_input",
    "integrated_gradients",
    "saliency",
    "smoothgrad",
]
