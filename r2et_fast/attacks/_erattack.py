"""ERAttack: the explanation ranking attack of R2ET (docs/spec.md §5)."""

from __future__ import annotations

import torch

from r2et_fast.attacks._iterative import IterativeAttack
from r2et_fast.ops.regularizers import GAP_TRANSFORMS, PAIR_SELECTIONS, pair_gap_at, topk_pair_gap


class ERAttack(IterativeAttack):
    """Pushes the top-k features of an explanation out of the top-k, keeping the prediction.

    Minimises the pair-gap sum G over pairs fixed from the clean explanation (T_k and the pairs do
    not move), by T projected steps x <- Proj(x - alpha * normalise(grad G)) onto the eps-ball
    around x (``norm``) and the valid box. The whole batch moves at once.

    Args (besides those of :class:`IterativeAttack`):
        pairs, n_pairs, transform: the pair set of the objective (docs/spec.md §5: "all" by default;
            "anchor" with N = k matches the authors' evaluation code).
        step_norm: defaults to "l2" here (the paper's l2-normalised steps).
    """

    def __init__(self, model, *, pairs: str = "all", n_pairs: int | None = None,
                 transform: str = "linear", step_norm: str | None = "l2", **kwargs) -> None:
        super().__init__(model, step_norm=step_norm, **kwargs)
        if pairs not in PAIR_SELECTIONS:
            raise ValueError(f"pairs must be one of {PAIR_SELECTIONS}, got {pairs!r}")
        if transform not in GAP_TRANSFORMS:
            raise ValueError(f"transform must be one of {GAP_TRANSFORMS}, got {transform!r}")
        self.pairs, self.n_pairs, self.transform = pairs, n_pairs, transform

    def _prepare(self, clean: torch.Tensor):
        _, hi, lo = topk_pair_gap(clean, self.k, self.pairs, self.transform, self.n_pairs,
                                  return_indices=True, backend=self.backend)
        return hi, lo

    def _loss(self, maps, clean, state):
        return pair_gap_at(maps, *state, self.pairs, self.transform)

    def _fused_objective(self, clean, state):
        hi, lo = state
        return "pair_gap", hi, lo, self.pairs, self.transform
