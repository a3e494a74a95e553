"""The ``autograd`` engine: separate double-backprop passes, one per point (docs/spec.md §3).

g(x) comes from one pass, whose forward also gives the logits for the task loss; g(x + kappa v)
from a second pass. Without a step (R2ET\\H) the logits come from their own forward pass, so that
the task loss's graph stays apart from the explanation's, as the trainer has always computed it
(its recorded runs reproduce bit for bit). It runs any model that maps a batch to logits.
"""

from __future__ import annotations

import torch

from r2et_fast.engine._base import GradientEngine, Gradients, Model, hessian_direction
from r2et_fast.explain._score import score_gradient


def _leaf(x: torch.Tensor) -> torch.Tensor:
    return x if x.requires_grad else x.detach().requires_grad_()


class AutogradEngine(GradientEngine):
    name = "autograd"

    def preferred(self, model: Model, x: torch.Tensor) -> bool:
        # One 2B pass does not pay on a CPU: its cost grows with the batch like two B passes.
        return x.device.type != "cuda"

    def gradients(self, model: Model, x: torch.Tensor, target: torch.Tensor | None, *, score: str,
                  kappa: float | None = None) -> Gradients:
        if kappa is None:
            logits = model(x)
            g_x, target = score_gradient(model, _leaf(x), target, score, create_graph=True)
            return Gradients(logits=logits, target=target, g_x=g_x)
        g_x, target, logits = score_gradient(model, _leaf(x), target, score, create_graph=True,
                                             return_output=True)
        shifted = (x.detach() + kappa * hessian_direction(g_x)).requires_grad_()
        g_shift, _ = score_gradient(model, shifted, target, score, create_graph=True)
        return Gradients(logits=logits, target=target, g_x=g_x, g_shift=g_shift)
