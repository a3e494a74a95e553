"""R2ETLoss: any regularised method of the papers as one loss call for a user's own training loop.

``loss = r2et_loss(model, x, y)`` computes exactly what the :class:`~r2et_fast.train.Trainer`
minimises for that method on that batch (the same method object builds it: same gap scaling, same
engines, same train-mode semantics), so a plain PyTorch loop gets R2ET by changing one line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn

from r2et_fast._device import compute_device, resolve_device, to_with
from r2et_fast._distributed import unwrap
from r2et_fast._validation import as_labels, check_batch, check_choice
from r2et_fast.engine import AUTO
from r2et_fast.explain._score import TRAINING_SCORE
from r2et_fast.ops.regularizers import PAIR_SELECTIONS
from r2et_fast.train._config import TrainConfig
from r2et_fast.train._methods import Method, _R2ETFamily, get_method, method_names

# Methods that change the model or the optimizer rather than the objective.
_NOT_A_LOSS = {"sp": "SP is CE on a model with softplus activations (build the model with them)",
               "wd": "WD is CE with the optimizer's weight decay (set weight_decay on the optimizer)"}


def loss_methods() -> tuple[str, ...]:
    """The methods R2ETLoss computes: every registered method but SP and WD."""
    return tuple(m for m in method_names() if m not in _NOT_A_LOSS)


class R2ETLoss(nn.Module):
    """The objective of a training method, as a loss module: ``loss = r2et_loss(model, x, y)``.

    Args:
        method: one of :func:`loss_methods` — ``"r2et"`` (default), ``"r2et_noh"``, ``"r2et_mm"``,
            ``"r2et_mm_noh"``, ``"est_h"``, ``"exact_h"``, ``"ssr"``, ``"at"`` (CE at an inner
            ERAttack's point) or ``"vanilla"`` (CE alone, for comparisons).
        pairs: the pair selection of the R2ET family's G_k ("all", "anchor", "mm"); None = the
            method's own ("all" for r2et, "mm" for r2et_mm).
        device: where the loss is computed (default: the model's device; given, a module model
            is moved there). ``x`` and ``y`` move there at each call; the loss is there.

    The other keyword arguments (k, lambda_gap, lambda_hess, lambda_reg, kappa, transform, n_pairs,
    adaptive, score, engine, backend, at_eps, at_alpha, at_steps, exact_h_max_features) are the
    method's hyper-parameters, with the meanings and defaults of :class:`~r2et_fast.train.TrainConfig`.
    ``lambda_gap`` weighs the *mean* pair gap (the trainer's scaling).

    Calling it with ``(model, x, y)`` returns the scalar loss (with its graph: ``loss.backward()``
    gives the parameter gradients); :attr:`parts` holds the last call's detached terms (ce, gap,
    hess, ...). ``y``: labels as the attacks take them (:func:`r2et_fast._validation.as_labels`:
    an integer tensor (B,), a Python int, a list of ints); for a single-output model (B, 1) labels are 0/1 and
    the task loss is BCE-with-logits. A model in training mode keeps its mode for the task loss;
    the explanation terms are computed in eval mode (docs/spec.md §3, "Train mode").
    """

    def __init__(self, method: str = "r2et", *, k: int = 8, lambda_gap: float = 0.3,
                 lambda_hess: float = 0.1, lambda_reg: float = 1.0, kappa: float = 1e-3,
                 pairs: str | None = None, transform: str = "linear", n_pairs: int | None = None,
                 adaptive: bool = False, score: str = TRAINING_SCORE, engine: str = AUTO,
                 backend: str | None = None, at_eps: float = 0.1, at_alpha: float = 0.05,
                 at_steps: int = 1, exact_h_max_features: int = 64, device=None) -> None:
        super().__init__()
        self.device = None if device is None else resolve_device(device)
        if method in _NOT_A_LOSS:
            raise ValueError(f"method {method!r} is not a loss: {_NOT_A_LOSS[method]}")
        check_choice(method, "method", loss_methods())
        check_choice(score, "score", ("logit", "prob", "loss"))
        self.config = TrainConfig(
            method=method, k=k, lambda_gap=lambda_gap, lambda_hess=lambda_hess, lambda_reg=lambda_reg,
            kappa=kappa, transform=transform, n_pairs=n_pairs, adaptive=adaptive, score=score,
            engine=engine, backend=backend, at_eps=at_eps, at_alpha=at_alpha, at_steps=at_steps,
            exact_h_max_features=exact_h_max_features)
        self.method: Method = get_method(self.config)
        if pairs is not None:
            if not isinstance(self.method, _R2ETFamily):
                raise ValueError(f"pairs applies to the R2ET family only, not to method {method!r}")
            check_choice(pairs, "pairs", PAIR_SELECTIONS)
            self.method.pairs = pairs
        self.pairs = getattr(self.method, "pairs", None)
        self.parts: dict[str, torch.Tensor] = {}
        self._calls = 0

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                step_seed: int | None = None) -> torch.Tensor:
        """The loss of ``model`` on the batch (x, y); ``step_seed`` seeds an inner attack (AT),
        by default the number of earlier calls."""
        if not callable(model):
            raise TypeError(f"model must be callable, got {type(model).__name__}")
        check_batch(x, "x")
        where = compute_device(self.device, unwrap(model), x)
        x, y = to_with(x, y, where)
        labels = as_labels(y, x)
        seed = self._calls if step_seed is None else step_seed
        self._calls += 1
        loss, self.parts = self.method(model, x, labels, step_seed=seed)
        return loss

    def extra_repr(self) -> str:
        fields = {f.name: getattr(self.config, f.name) for f in dataclasses.fields(self.config)}
        keep: Sequence[str] = ("method", "k", "lambda_gap", "lambda_hess", "score", "engine")
        return ", ".join(f"{n}={fields[n]!r}" for n in keep) + f", pairs={self.pairs!r}"


def r2et_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, method: str = "r2et", *,
              step_seed: int = 0, **hyper) -> torch.Tensor:
    """Function form of :class:`R2ETLoss`: ``R2ETLoss(method, **hyper)(model, x, y)``."""
    return R2ETLoss(method, **hyper)(model, x, y, step_seed=step_seed)
