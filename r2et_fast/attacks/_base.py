"""Shared attack machinery: the result record, budget checks, random starts and the box (labels and
the model's mode: :func:`r2et_fast.engine.eval_mode`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from r2et_fast._validation import NORMS, check_choice, check_int, check_nonnegative_float


@dataclass
class AttackResult:
    """What an attack returns, per sample.

    Attributes:
        x_adv: the adversarial inputs, shape of x.
        precision_at_k: (steps + 1, B) P@k between the clean explanation and the explanation at each
            iterate (row 0: the start point).
        manipulation_epoch: (B,) int64, the first iteration at which a feature of T_k(x) left the
            top-k; ``steps + 1`` when it never did within the budget.
        label_kept: (B,) bool, the real model's prediction at ``x_adv`` (argmax, or 1[z > 0] for a
            single output) equals its clean prediction.
        steps_run: (B,) int64, iterations each sample actually moved (early stop freezes it).
        clean_maps, adv_maps: (B, n) flattened explanations at x and at ``x_adv``, of the real
            model and explainer (also with ``surrogate_beta``).
    """

    x_adv: torch.Tensor
    precision_at_k: torch.Tensor
    manipulation_epoch: torch.Tensor
    label_kept: torch.Tensor
    steps_run: torch.Tensor
    clean_maps: torch.Tensor | None = None
    adv_maps: torch.Tensor | None = None

    @property
    def final_precision_at_k(self) -> torch.Tensor:
        """(B,) P@k at the returned point."""
        return self.precision_at_k[-1]


def check_budget(eps, alpha, steps, norm: str, step_norm: str | None) -> None:
    check_nonnegative_float(eps, "eps")
    check_nonnegative_float(alpha, "alpha")
    check_int(steps, "steps", 0)
    check_choice(norm, "norm", NORMS)
    if step_norm is not None:
        check_choice(step_norm, "step_norm", NORMS)


def box_tensor(bound, x: torch.Tensor, name: str) -> torch.Tensor | None:
    """None, a number or a tensor broadcastable to one sample -> a tensor of one sample's shape."""
    if bound is None:
        return None
    t = torch.as_tensor(bound, dtype=x.dtype, device=x.device)
    try:
        return t.expand(x.shape[1:]).clone()
    except RuntimeError as exc:
        raise ValueError(f"{name} must broadcast to one sample of shape {tuple(x.shape[1:])}") from exc


def random_start(x0: torch.Tensor, eps: float, norm: str, generator: torch.Generator,
                 lower: torch.Tensor | None, upper: torch.Tensor | None) -> torch.Tensor:
    """A point drawn uniformly from the eps-ball around each sample, clamped to the box."""
    flat = x0.flatten(1)
    noise = torch.rand(flat.shape, generator=generator, dtype=flat.dtype).to(flat.device)
    if norm == "linf":
        delta = (2 * noise - 1) * eps
    else:  # uniform in the l2 ball: a Gaussian direction, radius eps * U^(1/n)
        direction = torch.randn(flat.shape, generator=generator, dtype=flat.dtype).to(flat.device)
        direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-12)
        radius = eps * noise[:, :1] ** (1.0 / flat.shape[1])
        delta = direction * radius
    out = (flat + delta).view_as(x0)
    if lower is not None:
        out = torch.maximum(out, lower)
    if upper is not None:
        out = torch.minimum(out, upper)
    return out
