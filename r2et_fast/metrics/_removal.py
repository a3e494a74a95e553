"""Removal curves COMP and SUFF (docs/spec.md §6): the change of the explained class's score when
the top-k features are removed (COMP) or are all that is kept (SUFF), averaged over k.

The conventions (model output, explained class, ranking, attribution layout, removal) are those of
:mod:`r2et_fast.metrics._faithfulness`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

from r2et_fast import _distributed
from r2et_fast import _validation as v
from r2et_fast.metrics._faithfulness import (
    DEFAULT_BATCH_SIZE,
    DFFOT,
    K_MODES,
    PERCENTS,
    SENSITIVITY_SCORES,
    FaithfulnessMetric,
    _inference,
    _removed,
)


def _check_k_spec(K):
    if isinstance(K, str):
        if K not in K_MODES:
            raise ValueError(f"K must be one of {K_MODES} or a sequence of ints, got {K!r}")
        return K
    if not isinstance(K, Sequence) or len(K) == 0:
        raise TypeError(f"K must be one of {K_MODES} or a non-empty sequence of ints, got {K!r}")
    for k in K:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise TypeError(f"K must hold ints, got {type(k).__name__}")
        if k < 1:
            raise ValueError(f"K must hold feature counts >= 1, got {k}")
    return tuple(int(k) for k in K)


def removal_ks(K, n: int, tabular: bool = True) -> list[int]:
    """The feature counts k averaged over by COMP/SUFF for ``n`` features.

    ``"all"``: 1..n. ``"percent"``: {1, 5, 10, 20, 50}% of n, rounded half up, at least 1, duplicates
    dropped. ``"auto"``: ``"all"`` for tabular inputs (``x`` 2-D), ``"percent"`` otherwise. A sequence
    of ints is used as given (each in 1..n).
    """
    v.check_positive_int(n, "n")
    K = _check_k_spec(K)
    if K == "auto":
        K = "all" if tabular else "percent"
    if K == "all":
        return list(range(1, n + 1))
    if K == "percent":
        return sorted({max(1, (p * n + 50) // 100) for p in PERCENTS})
    bad = [k for k in K if k > n]
    if bad:
        raise ValueError(f"K must lie in 1..n_features (n_features = {n}), got {bad}")
    return list(K)


class _RemovalCurve(FaithfulnessMetric):
    keep = False

    def __init__(self, *, K="auto", score: str = "prob", baseline=0.0,
                 batch_size: int = DEFAULT_BATCH_SIZE, backend: str | None = None, device=None) -> None:
        self.K = _check_k_spec(K)
        v.check_choice(score, "score", SENSITIVITY_SCORES)
        self.score = score
        super().__init__(baseline=baseline, batch_size=batch_size, backend=backend, device=device)

    def _scores(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.score == "prob":
            logits = torch.softmax(logits, dim=1)
        return logits.gather(1, target.unsqueeze(1)).squeeze(1)

    def __call__(self, model, x: torch.Tensor, attributions: torch.Tensor, target=None) -> torch.Tensor:
        x, attributions, target = self._place(model, x, attributions, target)
        with _inference(model):
            s = self._setup(model, x, attributions, target)
            b, n = s.ranks.shape
            ks = torch.tensor(removal_ks(self.K, n, tabular=x.dim() == 2), dtype=torch.int64,
                              device=x.device)
            clean = self._scores(s.logits, s.target)
            k_step = max(1, self.batch_size // b)
            b_step = min(b, self.batch_size)

            # the sample blocks are independent: under a torchrun launch they are split over the
            # ranks, each summed over the k chunks in the single-process order (so exactly equal)
            def block(b0: int) -> torch.Tensor:
                rows = slice(b0, b0 + b_step)
                total = torch.zeros_like(clean[rows])
                for k0 in range(0, len(ks), k_step):
                    chunk = ks[k0:k0 + k_step]
                    batch = _removed(x[rows], s.ranks[rows], chunk, s.mask_shape, s.baseline, self.keep)
                    scores = self._scores(self._evaluate(model, batch),
                                          s.target[rows].repeat(len(chunk))).view(len(chunk), -1)
                    total += (clean[rows].unsqueeze(0) - scores).abs().sum(dim=0)
                return total

            total = torch.cat([t.to(x.device) for t in _distributed.map_items(range(0, b, b_step), block)])
        return total / len(ks)


class COMP(_RemovalCurve):
    """Comprehensiveness: mean over k in K of |f_c(x) − f_c(x without its top-k features)|.

    ``f_c`` is the softmax probability of class ``c`` (``score="prob"``, default) or its logit
    (``score="logit"``). K: see :func:`removal_ks` (default ``"auto"``: 1..n for tabular ``x``,
    {1, 5, 10, 20, 50}% of n otherwise). Higher is more faithful.
    """

    name = "comp"
    keep = False


class SUFF(_RemovalCurve):
    """Sufficiency: mean over k in K of |f_c(x) − f_c(x with only its top-k features kept)|.

    Same options as :class:`COMP`. Lower is more faithful; keeping all n features gives 0.
    """

    name = "suff"
    keep = True


FAITHFULNESS_METRICS: tuple[type[FaithfulnessMetric], ...] = (DFFOT, COMP, SUFF)
