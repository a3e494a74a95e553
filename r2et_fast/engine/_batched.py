"""The ``batched`` engine: x and x + kappa v in one double-backprop pass over 2B rows (docs/spec.md §3).

v needs only the sign of g(x), so a first-order pass without a graph fixes it (and the explained
class); then one forward/backward over the concatenated batch gives both gradients and the logits
at x. Fewer, larger kernels: the choice for a GPU. A model whose rows interact (train-mode
BatchNorm) sees a batch of 2B rows here, so its statistics differ from the autograd engine's.
"""

from __future__ import annotations

import torch

from r2et_fast.engine._base import GradientEngine, Gradients, Model, hessian_direction
from r2et_fast.explain._score import score_gradient


def _rows_interact(model: Model) -> bool:
    """Whether the model mixes the rows of a batch: a BatchNorm layer in training mode."""
    modules = model.modules() if isinstance(model, torch.nn.Module) else ()
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training for m in modules)


class BatchedEngine(GradientEngine):
    name = "batched"

    def preferred(self, model: Model, x: torch.Tensor) -> bool:
        # auto keeps train-mode batch statistics what the autograd engine gives (batches of B rows)
        return x.device.type == "cuda" and not _rows_interact(model)

    def gradients(self, model: Model, x: torch.Tensor, target: torch.Tensor | None, *, score: str,
                  kappa: float | None = None) -> Gradients:
        if kappa is None:
            z = x if x.requires_grad else x.detach().requires_grad_()
            g_x, target, logits = score_gradient(model, z, target, score, create_graph=True,
                                                 return_output=True)
            return Gradients(logits=logits, target=target, g_x=g_x)
        probe = x.detach().requires_grad_()
        g0, target = score_gradient(model, probe, target, score, create_graph=False)
        both = torch.cat([x, x.detach() + kappa * hessian_direction(g0)]).detach().requires_grad_()
        g, _, logits = score_gradient(model, both, torch.cat([target, target]), score, create_graph=True,
                                      return_output=True)
        b = x.shape[0]
        return Gradients(logits=logits[:b], target=target, g_x=g[:b], g_shift=g[b:])
