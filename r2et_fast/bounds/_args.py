"""Argument checks and small shared helpers of ``r2et_fast.bounds``.

Every check raises ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind, bad value)
naming the offending argument.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from r2et_fast._validation import check_batch
from r2et_fast.explain import Explainer, get_explainer
from r2et_fast.explain._score import predict
from r2et_fast.explain._validation import check_model, check_target_range, prepare_target

METHODS = ("saliency", "gradxinput", "ig")
NORM_NAMES = ("l2", "linf")


def check_method(method: object) -> str:
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}; got {method!r}")
    return method


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


def check_eps(eps: object, name: str = "eps") -> float:
    """A finite real radius > 0."""
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(eps).__name__}")
    value = float(eps)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {eps!r}")
    return value


def check_x(x: object, model: object) -> torch.Tensor:
    """x: a finite float batch (B, ...); model: callable, and in eval mode if it is a Module.

    Eval mode matters twice: the per-sample products sum the batch (train-mode BatchNorm mixes
    samples) and the bounds describe a fixed function (train-mode dropout is random).
    """
    check_model(model)
    check_batch(x, "x")
    if isinstance(model, nn.Module) and model.training:
        raise ValueError("model must be in eval mode (call model.eval()) to compute the bounds")
    return x  # type: ignore[return-value]


def check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def check_tol(tol: object, dtype: torch.dtype) -> float:
    """None -> 1e-6 in float64, 1e-3 in float32 (products are only that accurate)."""
    if tol is None:
        return 1e-6 if dtype == torch.float64 else 1e-3
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 < float(tol) < 1:
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")
    return float(tol)


def make_explainer(model: Any, method: str, score: str,
                   explainer_kwargs: Mapping[str, Any] | None) -> Explainer:
    """The attribution g as an explainer: signed (``abs=False``) unless the caller says otherwise.

    The paper's saliency map is the signed gradient; |g| would only flip signs of rows of H.
    """
    check_method(method)
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
