"""The training methods of both papers, one class each (docs/spec.md §3, §4).

A method is built from a :class:`~r2et_fast.train.TrainConfig` (its hyper-parameters are read in
``__init__``) and called on a batch: ``method(model, x, y, step_seed=...)`` returns the loss to
minimise and its parts, detached tensors for the log. Methods also say what they change outside
the objective: the model's activation (SP) and the optimizer's weight decay (WD). New methods
register with :func:`register_method` and are then accepted by ``TrainConfig(method=...)``.

Under DistributedDataParallel (the Trainer in a torchrun launch) ``model`` is the DDP wrapper: the
double-backprop terms call it, so their input gradients (``autograd.grad(..., create_graph=True)``)
are taken inside each process and the one ``backward()`` of the loss is what DDP all-reduces. The
fused engine reads the weights of the module itself rather than calling it, and AT's inner attack
needs no parameter gradients: both see the unwrapped module, and :func:`_ddp_sync` gives DDP the
forward pass its reducer waits for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F

from r2et_fast import regularizers as R
from r2et_fast._distributed import unwrap
from r2et_fast.attacks import ERAttack
from r2et_fast.engine import compute_gradients, fused_objective, resolve_engine, task_logits
from r2et_fast.explain._score import autograd_gradients

if TYPE_CHECKING:
    from r2et_fast.train._config import TrainConfig

Parts = dict[str, torch.Tensor]


def task_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The mean task loss: cross-entropy, or BCE-with-logits for a single-output model (B, 1)
    whose labels are 0/1 (the loss score of :mod:`r2et_fast.explain._score`, averaged)."""
    if logits.dim() == 2 and logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], y.to(logits.dtype))
    return F.cross_entropy(logits, y)


class Method:
    """The objective of one training method; subclasses set ``name`` and ``label``."""

    name: ClassVar[str]
    label: ClassVar[str]  # the paper's name, for tables

    def __init__(self, cfg: TrainConfig) -> None:
        self.engine = cfg.engine
        self.score = cfg.score
        self.adaptive = cfg.adaptive
        self.backend = cfg.backend
        # Set by the Trainer under DDP: a shard's batch mean -> the whole batch's (an all-reduce),
        # so that the adaptive weights are those of the whole batch on every rank.
        self.batch_mean: Callable[[torch.Tensor], torch.Tensor] | None = None

    @staticmethod
    def activation(cfg: TrainConfig) -> str | None:
        """The activation the model is built with (None: the architecture's default)."""
        return cfg.activation

    def weight_decay(self) -> float:
        """Weight decay of the default optimizer."""
        return 0.0

    def fused(self, model, x: torch.Tensor) -> bool:
        """Whether this batch runs on the fused MLP objective (``engine="fused"``, or ``auto`` where
        the fused engine prefers the model); an explicit "fused" on another model raises, naming
        the layer."""
        fused = resolve_engine(self.engine, unwrap(model), x).name == "fused"
        if fused and self.adaptive and self.batch_mean is not None:
            # The fused op forms the adaptive weights from its own rows: under DDP, one shard's.
            if self.engine == "fused":
                raise ValueError("engine 'fused' computes adaptive weights per process, not over the "
                                 "whole batch of a data-parallel step: use engine='auto' or 'autograd'")
            return False
        return fused

    def weight(self, weight: float, ce: torch.Tensor, term: torch.Tensor) -> torch.Tensor | float:
        """lambda, or the authors' adaptive weight |lambda (CE + 1) / term| (both detached; |term|
        floored at 1e-12, so a term near 0 of either sign gives a large weight, never a negative one
        or one blown up by a clamp of a negative term)."""
        if not self.adaptive:
            return weight
        if self.batch_mean is not None:
            ce, term = self.batch_mean(ce.detach()), self.batch_mean(term.detach())
        return (weight * (ce.detach() + 1) / term.detach().abs().clamp_min(1e-12)).abs()

    def __call__(self, model, x: torch.Tensor, y: torch.Tensor, *, step_seed: int = 0
                 ) -> tuple[torch.Tensor, Parts]:
        ce = task_loss(model(x), y)
        return ce, {"ce": ce.detach()}


def _ddp_sync(model, x: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
    """``loss`` plus zero times a one-row forward pass of ``model`` when it is a DDP wrapper: an
    objective that does not call the wrapper (the fused engine) would leave DDP's reducer without
    its forward pass, and the gradients un-reduced. The zero term changes no gradient."""
    if unwrap(model) is model:
        return loss
    return loss + 0.0 * model(x[:1]).sum()


_REGISTRY: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: make ``cls`` a training method named ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def method_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def method_labels() -> dict[str, str]:
    return {name: cls.label for name, cls in _REGISTRY.items()}


def method_class(name: str) -> type[Method]:
    if name not in _REGISTRY:
        raise ValueError(f"method must be one of {method_names()}, got {name!r}")
    return _REGISTRY[name]


def get_method(cfg: TrainConfig) -> Method:
    """The method ``cfg.method`` with the hyper-parameters of ``cfg``."""
    return method_class(cfg.method)(cfg)


@register_method
class Vanilla(Method):
    name, label = "vanilla", "Vanilla"


@register_method
class WeightDecay(Method):
    name, label = "wd", "WD"

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__(cfg)
        self.decay = cfg.weight_decay

    def weight_decay(self) -> float:
        return self.decay


@register_method
class SoftplusModel(Method):
    """SP: the same objective on a model whose activations are softplus(beta)."""

    name, label = "sp", "SP"

    @staticmethod
    def activation(cfg: TrainConfig) -> str | None:
        return "softplus"


@register_method
class EstimatedHessian(Method):
    """Est-H: CE + lambda_hess * Ĥ, the finite-difference Hessian norm."""

    name, label = "est_h", "Est-H"

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__(cfg)
        self.lambda_hess, self.kappa = cfg.lambda_hess, cfg.kappa

    def __call__(self, model, x: torch.Tensor, y: torch.Tensor, *, step_seed: int = 0
                 ) -> tuple[torch.Tensor, Parts]:
        if self.fused(model, x):
            loss, parts = fused_objective(unwrap(model), x, y, score=self.score, kappa=self.kappa,
                                          lambda_hess=self.lambda_hess, with_gap=False, with_hessian=True,
                                          adaptive=self.adaptive, backend=self.backend)
            return _ddp_sync(model, x, loss), parts
        h, grads = R.hessian_norm(model, x, y, score=self.score, kappa=self.kappa, engine=self.engine,
                                  backend=self.backend)
        h = h.mean()
        ce = task_loss(task_logits(model, x, grads), y)
        return ce + self.weight(self.lambda_hess, ce, h) * h, {"ce": ce.detach(), "hess": h.detach()}


@register_method
class ExactHessian(Method):
    """Exact-H: CE + lambda_reg * ||H||_F with the exact input Hessian (small inputs only)."""

    name, label = "exact_h", "Exact-H"

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__(cfg)
        self.lambda_reg, self.max_features = cfg.lambda_reg, cfg.exact_h_max_features

    def __call__(self, model, x: torch.Tensor, y: torch.Tensor, *, step_seed: int = 0
                 ) -> tuple[torch.Tensor, Parts]:
        ce = task_loss(model(x), y)
        h = R.exact_hessian_norm(model, x, y, self.score, max_features=self.max_features).mean()
        return ce + self.weight(self.lambda_reg, ce, h) * h, {"ce": ce.detach(), "hess_exact": h.detach()}


@register_method
class SSR(Method):
    """SSR: CE + lambda_reg * the largest eigenvalue of the CE input Hessian's linear part."""

    name, label = "ssr", "SSR"

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__(cfg)
        self.lambda_reg = cfg.lambda_reg

    def __call__(self, model, x: torch.Tensor, y: torch.Tensor, *, step_seed: int = 0
                 ) -> tuple[torch.Tensor, Parts]:
        ce = task_loss(model(x), y)
        s = R.ssr_term(model, x).mean()
        return ce + self.weight(self.lambda_reg, ce, s) * s, {"ce": ce.detach(), "ssr": s.detach()}


@register_method
class AdversarialTraining(Method):
    """AT: CE at the point an inner ERAttack (at_steps steps) moves each sample to."""

    name, label = "at", "AT"

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__(cfg)
        self.k, self.eps, self.alpha, self.steps = cfg.k, cfg.at_eps, cfg.at_alpha, cfg.at_steps

    def __call__(self, model, x: torch.Tensor, y: torch.Tensor, *, step_seed: int = 0
                 ) -> tuple[torch.Tensor, Parts]:
        attack = ERAttack(unwrap(model), k=self.k, eps=self.eps, alpha=self.alpha, steps=self.steps,
                          norm="linf", step_norm="l2", constraint="none", seed=step_seed,
                          backend=self.backend)
        # engine="autograd": the inner attack differentiates by autograd too (no fused saliency)
        with autograd_gradients() if self.engine == "autograd" else contextlib.nullcontext():
            x_adv = attack(x, y).x_adv.detach()
        ce = task_loss(model(x_adv), y)
        return ce, {"ce": ce.detach()}


class _R2ETFamily(Method):
    """R2ET: CE - lambda_gap * G_k (+ lambda_hess * Ĥ unless the variant drops it)."""

    default_pairs: ClassVar[str] = "all"
    with_hessian: ClassVar[bool] = True

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__(cfg)
        self.k, self.kappa, self.transform = cfg.k, cfg.kappa, cfg.transform
        self.lambda_gap, self.lambda_hess = cfg.lambda_gap, cfg.lambda_hess
        self.n_pairs = cfg.n_pairs
        self.pairs: str = self.default_pairs  # R2ETLoss(pairs=...) may choose another selection

    def __call__(self, model, x: torch.Tensor, y: torch.Tensor, *, step_seed: int = 0
                 ) -> tuple[torch.Tensor, Parts]:
        if self.fused(model, x):
            loss, fparts = fused_objective(unwrap(model), x, y, score=self.score, k=self.k, pairs=self.pairs,
                                           transform=self.transform, n_pairs=self.n_pairs, kappa=self.kappa,
                                           lambda_gap=self.lambda_gap, lambda_hess=self.lambda_hess,
                                           with_hessian=self.with_hessian, adaptive=self.adaptive,
                                           backend=self.backend)
            return _ddp_sync(model, x, loss), fparts
        parts: Parts = {}
        if self.with_hessian:
            h, grads = R.hessian_norm(model, x, y, score=self.score, kappa=self.kappa, engine=self.engine,
                                      backend=self.backend)
            h = h.mean()
        else:
            grads = compute_gradients(model, x, y, score=self.score, engine=self.engine)
        ce = task_loss(task_logits(model, x, grads), y)
        parts["ce"] = ce.detach()
        loss = ce
        if self.with_hessian:
            parts["hess"] = h.detach()
            loss = loss + self.weight(self.lambda_hess, ce, h) * h
        gap = R.mean_pair_gap(grads.g_x.abs(), self.k, self.pairs, self.transform, self.n_pairs,
                              backend=self.backend)
        parts["gap"] = gap.detach()
        return loss - self.weight(self.lambda_gap, ce, gap) * gap, parts


@register_method
class R2ET(_R2ETFamily):
    name, label = "r2et", "R2ET"


@register_method
class R2ETNoHessian(_R2ETFamily):
    name, label, with_hessian = "r2et_noh", "R2ET\\H", False


@register_method
class R2ETMinMax(_R2ETFamily):
    name, label, default_pairs = "r2et_mm", "R2ET-mm", "mm"


@register_method
class R2ETMinMaxNoHessian(_R2ETFamily):
    name, label, default_pairs, with_hessian = "r2et_mm_noh", "R2ET-mm\\H", "mm", False
