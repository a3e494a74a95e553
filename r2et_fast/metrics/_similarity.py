"""Similarity between a clean explanation I(x) and a perturbed one I(x'), one value per sample."""

from __future__ import annotations

from typing import cast

import torch

from r2et_fast import _validation as v
from r2et_fast import ops


def _flatten(t, name: str) -> torch.Tensor:
    v.check_tensor(t, name)
    if t.dim() < 2:
        raise ValueError(f"{name} must be a batch of explanations (B, ...), got shape {tuple(t.shape)}")
    return t.flatten(1)


class SimilarityMetric:
    """Base class: ``metric(a, b)`` flattens both batches per sample and applies ``op``."""

    name = ""
    uses_k = False

    def __init__(self, *, backend: str | None = None) -> None:
        self.backend = backend

    def _op(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self._op(_flatten(a, "a"), _flatten(b, "b"))

    def __repr__(self) -> str:
        params = {k: val for k, val in vars(self).items() if val is not None}
        return f"{type(self).__name__}({', '.join(f'{k}={val!r}' for k, val in params.items())})"


class _TopKMetric(SimilarityMetric):
    uses_k = True

    def __init__(self, k: int, *, backend: str | None = None) -> None:
        v.check_positive_int(k, "k")
        super().__init__(backend=backend)
        self.k = k


class PrecisionAtK(_TopKMetric):
    """P@k = |T_k(a) ∩ T_k(b)| / k."""

    name = "precision_at_k"

    def _op(self, a, b):
        return ops.precision_at_k(a, b, self.k, backend=self.backend)


class KendallTauTopK(_TopKMetric):
    """Kendall tau-b restricted to the top-k features of ``a``."""

    name = "kendall_tau_topk"

    def _op(self, a, b):
        return ops.kendall_tau_topk(a, b, self.k, backend=self.backend)


class KendallTau(SimilarityMetric):
    """Kendall tau-b over all features (ties handled)."""

    name = "kendall_tau"

    def _op(self, a, b):
        return ops.kendall_tau(a, b, backend=self.backend)


class Spearman(SimilarityMetric):
    """Spearman's rank correlation (average ranks for ties)."""

    name = "spearman"

    def _op(self, a, b):
        return ops.spearman(a, b, backend=self.backend)


class Pearson(SimilarityMetric):
    """Pearson correlation."""

    name = "pearson"

    def _op(self, a, b):
        return ops.pearson(a, b, backend=self.backend)


class MSE(SimilarityMetric):
    """Mean squared difference ||a - b||^2 / n."""

    name = "mse"

    def _op(self, a, b):
        return ops.mse(a, b, backend=self.backend)


class Cosine(SimilarityMetric):
    """Cosine similarity."""

    name = "cosine"

    def _op(self, a, b):
        return ops.cosine(a, b, backend=self.backend)


SIMILARITY_METRICS: tuple[type[SimilarityMetric], ...] = (
    PrecisionAtK, KendallTau, KendallTauTopK, Spearman, Pearson, MSE, Cosine)


def rank_metrics(a: torch.Tensor, b: torch.Tensor, k: int, *,
                 backend: str | None = None) -> dict[str, torch.Tensor]:
    """Every similarity metric between two batches of explanations, keyed by metric name."""
    metrics = [cast("type[_TopKMetric]", cls)(k, backend=backend) if cls.uses_k else cls(backend=backend)
               for cls in SIMILARITY_METRICS]
    return {m.name: m(a, b) for m in metrics}
