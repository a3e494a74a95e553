"""The other explanation attacks of docs/spec.md §5: MSE, top-k (Ghorbani et al.) and PGD on attributions."""

from __future__ import annotations

import torch

from r2et_fast._validation import check_positive_int
from r2et_fast.attacks._iterative import IterativeAttack
from r2et_fast.ops.ranking import topk_indices


class MSEAttack(IterativeAttack):
    """Maximises ||I(x') - I(x)||^2 under the same constraints as ERAttack.

    The objective's gradient vanishes at x' = x, so ``random_start`` defaults to True.
    """

    def __init__(self, model, *, random_start: bool = True, step_norm: str | None = "l2", **kwargs) -> None:
        super().__init__(model, random_start=random_start, step_norm=step_norm, **kwargs)

    def _loss(self, maps, clean, state):
        return -(maps - clean).square().sum(dim=1)

    def _fused_objective(self, clean, state):
        return _distance_objective(clean)


def _distance_objective(clean: torch.Tensor):
    none = clean.new_empty((clean.shape[0], 0), dtype=torch.int64)
    return "distance", none, none, "all", "linear"


class TopKAttack(IterativeAttack):
    """Ghorbani et al.'s top-k attack: minimises the total attribution of T_k(x), with sign steps
    in an l-inf ball (``norm="linf"``, ``step_norm="linf"`` by default)."""

    def __init__(self, model, *, norm: str = "linf", step_norm: str | None = "linf", **kwargs) -> None:
        super().__init__(model, norm=norm, step_norm=step_norm, **kwargs)

    def _prepare(self, clean):
        return topk_indices(clean, self.k, backend=self.backend)

    def _loss(self, maps, clean, top):
        return maps.gather(1, top).sum(dim=1)

    def _fused_objective(self, clean, top):
        return "sum", top, top.new_empty((top.shape[0], 0)), "all", "linear"


class AttributionPGD(IterativeAttack):
    """PGD on attributions: maximises ||g(x') - g(x)||_2 (l2 or l-inf ball), used to test the
    Wang & Kong bounds. Random start by default (the gradient vanishes at x' = x); no prediction
    constraint by default (``constraint="none"``); pass ``restarts`` > 1 to keep, per sample, the
    farthest of several seeded runs (seeds ``seed``, ``seed + 1``, ...), all in one call: the
    vanishing-gradient warning counts the samples that no restart could move."""

    def __init__(self, model, *, random_start: bool = True, constraint: str = "none", restarts: int = 1,
                 **kwargs) -> None:
        super().__init__(model, random_start=random_start, constraint=constraint, **kwargs)
        self.restarts = check_positive_int(restarts, "restarts")

    def _loss(self, maps, clean, state):
        return -(maps - clean).square().sum(dim=1)  # same maximiser as the norm, smooth at 0

    def _fused_objective(self, clean, state):
        return _distance_objective(clean)

    def _attack(self, x, y):
        # the restarts run inside one guarded call: one eval-mode switch and at most one warning,
        # for the samples that no restart could move
        best, best_dist, vanished = None, None, None
        seed = self.seed
        for r in range(self.restarts):
            self.seed = seed + r
            try:
                result, stuck = super()._attack(x, y)
            finally:
                self.seed = seed
            # None: not probed (a trusted call; then no restart probes)
            vanished = stuck if vanished is None or stuck is None else vanished & stuck
            dist = (result.adv_maps - result.clean_maps).norm(dim=1)
            if best is None:
                best, best_dist = result, dist
                continue
            better = dist > best_dist
            for name in ("x_adv", "manipulation_epoch", "label_kept", "steps_run", "adv_maps"):
                old, new = getattr(best, name), getattr(result, name)
                setattr(best, name, torch.where(self._view(better, old), new, old))
            best.precision_at_k = torch.where(better[None], result.precision_at_k, best.precision_at_k)
            best_dist = torch.maximum(best_dist, dist)
        return best, vanished
