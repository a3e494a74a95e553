"""What a gradient engine computes, and the registry that names the engines (docs/spec.md §3).

An engine owns one job: for a model, a batch x and the explained classes, the logits at x (with
their graph, for the task loss), g(x) = ds/dx and, when a finite-difference step kappa is given,
g(x + kappa v) with v = sign(g(x)) / sqrt(n). Both gradients keep their graph (double backprop),
so any objective built from them is differentiable w.r.t. the model's parameters.

Engines differ in *how* they compute this (which passes, which batching), not in *what*: for a
model whose rows are independent (any model in eval mode; no train-mode BatchNorm) every engine
agrees with the others to floating-point rounding. A model whose rows interact sees a different
batch under each engine (see ``BatchedEngine``). The ops ``backend`` (native kernel or reference
twin) is a separate choice.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch

from r2et_fast._validation import check_batch
from r2et_fast.explain._score import SCORES

Model = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Gradients:
    """The engine's result for one batch.

    logits: the model's output at x (B, C), with its graph; target: the explained classes (B,);
    g_x: g(x) (B, ...); g_shift: g(x + kappa v) (B, ...), or None when no step was asked for;
    eval_mode: the passes ran with a training model switched to eval mode (see
    :mod:`r2et_fast.engine._modes`), so ``logits`` are eval-mode logits and a task loss in the
    model's own mode takes its logits from :func:`~r2et_fast.engine.task_logits`.
    """

    logits: torch.Tensor
    target: torch.Tensor
    g_x: torch.Tensor
    g_shift: torch.Tensor | None = None
    eval_mode: bool = False


def check_request(model: Model, x: torch.Tensor, score: str, kappa: float | None = None, *,
                  needs_kappa: bool = False) -> None:
    """The arguments of a gradient request: a callable model, a finite non-empty float batch, a
    known score and, when given (or needed), a positive finite kappa; errors name the argument."""
    if not callable(model):
        raise TypeError(f"model must be callable, got {type(model).__name__}")
    check_batch(x, "x")
    if score not in SCORES:
        raise ValueError(f"score must be one of {tuple(SCORES)}, got {score!r}")
    if (kappa is not None or needs_kappa) and not (
            isinstance(kappa, (int, float)) and not isinstance(kappa, bool) and 0 < kappa < math.inf):
        raise ValueError(f"kappa must be a positive finite number, got {kappa!r}")


def hessian_direction(grad: torch.Tensor) -> torch.Tensor:
    """v = sign(g) / sqrt(n) per sample (n = features per sample); detached."""
    return torch.sign(grad.detach()) / math.sqrt(grad[0].numel())


class GradientEngine(ABC):
    """One way of computing :class:`Gradients`. Subclasses register with :func:`register_engine`."""

    name: ClassVar[str]

    def unsupported(self, model: Model, x: torch.Tensor) -> str | None:
        """Why this engine cannot run ``model`` on ``x`` (a message naming the cause), or None."""
        return None

    def preferred(self, model: Model, x: torch.Tensor) -> bool:
        """Whether ``engine="auto"`` should pick this engine for ``model`` on ``x``."""
        return False

    @abstractmethod
    def gradients(self, model: Model, x: torch.Tensor, target: torch.Tensor | None, *, score: str,
                  kappa: float | None = None) -> Gradients:
        """Logits, g(x) and, with ``kappa``, g(x + kappa v); ``target`` None = the predicted class."""


# name -> (priority, engine); "auto" tries the engines by decreasing priority.
_REGISTRY: dict[str, tuple[int, GradientEngine]] = {}
AUTO = "auto"


def register_engine(engine: GradientEngine, *, priority: int = 0) -> GradientEngine:
    """Make ``engine`` selectable by its name; ``auto`` consults it before lower priorities."""
    if not isinstance(engine, GradientEngine):
        raise TypeError(f"engine must be a GradientEngine, got {type(engine).__name__}")
    if engine.name == AUTO:
        raise ValueError(f"engine name {AUTO!r} is reserved")
    _REGISTRY[engine.name] = (priority, engine)
    return engine


def engine_names() -> tuple[str, ...]:
    """Every name ``engine=`` accepts: ``"auto"`` then the registered engines."""
    return (AUTO, *_REGISTRY)


def check_engine(name: object, argument: str = "engine") -> str:
    """``name`` if it names an engine, else a ValueError naming the argument."""
    if not isinstance(name, str) or (name != AUTO and name not in _REGISTRY):
        raise ValueError(f"{argument} must be one of {engine_names()}, got {name!r}")
    return name


def get_engine(name: str) -> GradientEngine:
    """The registered engine called ``name`` (not ``"auto"``: see :func:`resolve_engine`)."""
    check_engine(name)
    if name == AUTO:
        raise ValueError("'auto' is resolved per model and input: use resolve_engine")
    return _REGISTRY[name][1]


def resolve_engine(name: str, model: Model, x: torch.Tensor) -> GradientEngine:
    """The engine a call with ``engine=name`` runs on for ``model`` and ``x``.

    ``auto`` takes the highest-priority engine that prefers this model and input and supports it;
    an explicitly named engine that cannot run the model raises a ValueError saying why.
    """
    check_engine(name)
    if name != AUTO:
        engine = _REGISTRY[name][1]
        reason = engine.unsupported(model, x)
        if reason is not None:
            raise ValueError(f"engine {name!r} cannot run this model: {reason}")
        return engine
    ranked = sorted(_REGISTRY.values(), key=lambda item: -item[0])
    for _, engine in ranked:
        if engine.preferred(model, x) and engine.unsupported(model, x) is None:
            return engine
    for _, engine in ranked:  # nothing prefers it: the first engine that can run it
        if engine.unsupported(model, x) is None:
            return engine
    raise ValueError("no registered gradient engine can run this model")
