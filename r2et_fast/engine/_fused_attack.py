"""The fused attack loop as the fast path of the explanation attacks (docs/spec.md §5).

``attacks._iterative.IterativeAttack`` asks :func:`fused_attack_steps` before its generic loop; it
answers for a gradient-saliency explainer (``Saliency`` of the attacked model, no channel reduction
or normalisation) of an MLP :func:`~r2et_fast.engine._mlp_spec.recognize_mlp` accepts, on the CPU,
under the constraints "none" and "early_stop", without a surrogate, for the attacks that state
their objective (``_fused_objective``): one native call runs every step
(``ops.fused_attack.fused_mlp_attack``). Elsewhere, under ``explain._score.autograd_gradients()``
(``engine="autograd"``) or with the reference backend it declines and the generic loop runs.
CUDA declines too until the kernels have run on a GPU.
"""

from __future__ import annotations

import torch

from r2et_fast import _ops
from r2et_fast.engine._fused_saliency import recognised_net
from r2et_fast.explain import Saliency
from r2et_fast.explain._score import fast_paths_allowed
from r2et_fast.ops.fused_attack import AttackLoopResult, fused_mlp_attack

_CONSTRAINTS = ("none", "early_stop")


def fused_attack_steps(attack, x0: torch.Tensor, y: torch.Tensor, x_start: torch.Tensor,
                       lower: torch.Tensor | None, upper: torch.Tensor | None, clean: torch.Tensor,
                       pred0: torch.Tensor, objective: tuple[str, torch.Tensor, torch.Tensor, str, str]
                       ) -> AttackLoopResult | None:
    """The attack's steps from ``x_start`` by the fused op, or None where it does not apply.

    ``objective``: (kind, hi, lo, pairs, transform) as the op takes them. Returns the op's result
    with x_adv in the shape of x0 and the maps flattened (B, n), as the generic loop's."""
    explainer = attack.explainer
    if (attack.surrogate_beta is not None or attack.constraint not in _CONSTRAINTS
            or attack.backend == "reference" or not fast_paths_allowed() or type(explainer) is not Saliency
            or explainer.model is not attack.model or explainer.reduce_channels is not None
            or explainer.normalize):
        return None
    net = recognised_net(attack.model, x0, y)
    if net is None or not _ops.has_kernel("fused_mlp_attack", "cpu"):
        return None
    flat = x0.reshape(x0.shape[0], -1)
    # the generic loop's vanishing probe (attacks._vanishing): the same fixed draw
    probe = torch.randn(flat.shape, generator=torch.Generator().manual_seed(0), dtype=flat.dtype)
    kind, hi, lo, pairs, transform = objective
    x_adv, *rest = fused_mlp_attack(
        flat, x_start.reshape(flat.shape), y, pred0, clean, hi, lo,
        None if lower is None else lower.reshape(-1), None if upper is None else upper.reshape(-1), probe,
        *net.args(), explainer.score, bool(explainer.abs), kind, pairs, transform, attack.k, attack.eps,
        attack.alpha, attack.steps, attack.norm, attack.step_norm, attack.constraint == "early_stop",
        backend=attack.backend)
    return (x_adv.reshape(x0.shape), *rest)  # type: ignore[return-value]
