"""Bounds-specific argument handling: the attribution kinds, norms, tolerances, the explainer and
the explained class. Generic checks come from :mod:`r2et_fast._validation` (value first, then the
argument's name; errors name the argument).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from r2et_fast._validation import (
    check_batch,
    check_callable,
    check_choice,
    check_in_range,
    check_target_range,
    prepare_target,
)
from r2et_fast.explain import Explainer, get_explainer
from r2et_fast.explain._score import predict

#: The attributions g the bounds are computed for (``method=``).
ATTRIBUTIONS = ("saliency", "gradxinput", "ig")


def resolve_norm(norm: object) -> tuple[str, float]:
    """``"l2"``, ``"linf"`` or a real p >= 2 -> (kind, p) with kind in {"l2", "linf", "lp"}.

    p = 2 is "l2" and p = inf is "linf"; 2 < p < inf uses the l_p relaxation (Corollary 1).
    """
    if isinstance(norm, str):
        if norm == "l2":
            return "l2", 2.0
        if norm == "linf":
            return "linf", math.inf
        raise ValueError(f"norm must be 'l2', 'linf' or a number p >= 2; got {norm!r}")
    if isinstance(norm, bool) or not isinstance(norm, numbers.Real):
        raise TypeError(f"norm must be 'l2', 'linf' or a number p >= 2; got {type(norm).__name__}")
    p = float(norm)
    if math.isnan(p) or p < 2:
        raise ValueError(f"norm must be 'l2', 'linf' or a number p >= 2; got {norm!r}")
    if p == 2:
        return "l2", 2.0
    if math.isinf(p):
        return "linf", math.inf
    return "lp", p


def check_x(x: object, model: object) -> torch.Tensor:
    """x: a finite float batch (B, ...); model: callable, and in eval mode if it is a Module.

    Eval mode matters twice: the per-sample products sum the batch (train-mode BatchNorm mixes
    samples) and the bounds describe a fixed function (train-mode dropout is random).
    """
    check_callable(model, "model")
    out = check_batch(x, "x")
    if isinstance(model, nn.Module) and model.training:
        raise ValueError("model must be in eval mode (call model.eval()) to compute the bounds")
    return out


def check_tol(tol: object, dtype: torch.dtype) -> float:
    """None -> 1e-6 in float64, 1e-3 in float32 (products are only that accurate)."""
    if tol is None:
        return 1e-6 if dtype == torch.float64 else 1e-3
    return check_in_range(tol, "tol", 0.0, 1.0, low_open=True, high_open=True)


def make_explainer(model: Any, method: str, score: str,
                   explainer_kwargs: Mapping[str, Any] | None) -> Explainer:
    """The attribution g as an explainer: signed (``abs=False``) unless the caller says otherwise.

    The paper's saliency map is the signed gradient; |g| would only flip signs of rows of H.
    """
    check_choice(method, "method", ATTRIBUTIONS)
    if not isinstance(explainer_kwargs, (Mapping, type(None))):
        raise TypeError(f"explainer_kwargs must be a dict or None, got {type(explainer_kwargs).__name__}")
    kwargs = dict(explainer_kwargs or {})
    if "score" in kwargs:
        raise ValueError("explainer_kwargs must not contain 'score'; pass score= directly")
    kwargs.setdefault("abs", False)
    return get_explainer(method, model, score=score, **kwargs)


def is_symmetric(explainer: Explainer, method: str) -> bool:
    """Plain signed saliency: H is the (symmetric) input Hessian of the score."""
    return (method == "saliency" and not explainer.abs and not explainer.normalize
            and explainer.reduce_channels is None)


def resolve_target(model: Any, x: torch.Tensor, target: object) -> torch.Tensor:
    """The explained class per sample (B,): given, or the prediction at x. Fixed for x + delta."""
    labels = prepare_target(target, x)
    if labels is None:
        return predict(model, x)
    with torch.no_grad():
        out = model(x.detach()[:1])
    if isinstance(out, torch.Tensor) and out.dim() == 2:
        check_target_range(labels, out.shape[1])
    return labels
