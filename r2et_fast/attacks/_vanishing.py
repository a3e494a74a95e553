"""Detecting an attack that cannot move: the explanation's input gradient is exactly zero.

With the logit (or any prob/loss-free) saliency of a piecewise-linear model (ReLU, LeakyReLU,
max-pool) the saliency is constant inside each linear region, so its input gradient is zero
almost everywhere: every gradient step is zero, the attack returns ``x_adv == x`` and P@k = 1,
which looks like robustness and is not. The attacks check this at their first step and warn.
"""

from __future__ import annotations

import warnings

import torch

from r2et_fast._validation import values_trusted


class VanishingGradientWarning(UserWarning):
    """An attack's gradient is exactly zero for some samples, so it cannot move them."""


def input_grad(objective: torch.Tensor, x: torch.Tensor, retain_graph: bool = False) -> torch.Tensor:
    """d objective / dx, zeros where the objective does not depend on ``x`` at all (a linear
    model's saliency is a constant, with no graph to ``x``)."""
    if not objective.requires_grad:
        return torch.zeros_like(x)
    (grad,) = torch.autograd.grad(objective, x, retain_graph=retain_graph, allow_unused=True)
    return torch.zeros_like(x) if grad is None else grad


def probe_vanishing() -> bool:
    """Whether an attack call probes for vanishing gradients: not where the caller trusts the
    values (the Trainer's batches after the first of an epoch, AT's inner attack), since the probe
    and its warning read back to the host once per call. Asked before the call's steps, which run
    under their own ``trusted_values()``."""
    return not values_trusted()


def vanishing_samples(maps: torch.Tensor, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """(B,) bool: samples whose explanation ``maps`` (B, n) has a zero input Jacobian at ``x``.

    ``grad`` is the objective's input gradient, one row per sample. Only its exactly-zero rows are
    probed, so a working attack pays nothing; a zero row may still be an honest stationary point
    of the objective (the MSE attack at x' = x), so those rows are probed with one more backward
    pass of a fixed random combination of the maps, which is zero (almost surely) only when the
    whole Jacobian is. Needs the graph of ``maps`` (the caller retains it at that step).
    """
    zero = grad.flatten(1).abs().amax(dim=1) == 0
    if not bool(zero.any()):
        return zero
    # a fixed seed: the probe must not draw from (and so shift) the caller's global random stream
    probe = torch.randn(maps.shape, generator=torch.Generator().manual_seed(0), dtype=maps.dtype)
    jac = input_grad((maps * probe.to(maps.device)).sum(), x)
    return zero & (jac.flatten(1).abs().amax(dim=1) == 0)


def warn_vanishing(vanished: torch.Tensor | None, attack: str, stacklevel: int) -> None:
    """One :class:`VanishingGradientWarning` for a call, saying how many samples, why and what to do
    (``vanished`` None: the call did not probe, see :func:`probe_vanishing`)."""
    if vanished is None:
        return
    count = int(vanished.sum())
    if count == 0:
        return
    warnings.warn(
        f"{attack}: the explanation's input gradient is exactly zero for {count} of "
        f"{vanished.numel()} samples at the start point, so the attack's steps cannot move them "
        "(an unmoved x_adv and P@k = 1 there are no evidence of robustness). This is what the "
        "logit saliency (no softmax or loss in the score) of a piecewise-linear model (ReLU, "
        "LeakyReLU, max-pool) does: it is constant in each linear region. Remedy: pass "
        "surrogate_beta= (e.g. 10) to take the attack's gradient through a softplus copy of the "
        "model (Dombrowski et al. 2019), or explain score='loss' or 'prob'.",
        VanishingGradientWarning, stacklevel=stacklevel + 1)
