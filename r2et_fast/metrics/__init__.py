"""Batched explanation-similarity metrics as callables (Quantus style).

Hyper-parameters go to ``__init__``, data to ``__call__(a, b)``: two batches of explanations of
the same shape ``(B, ...)`` (flattened per sample) give one value per sample, shape ``(B,)``.
The functional forms are the ops in :mod:`r2et_fast.ops`.
"""

from r2et_fast.metrics._faithfulness import (
    DFFOT,
    DFFOTResult,
    FaithfulnessMetric,
    Sensitivity,
    dffot_grid,
)
from r2et_fast.metrics._prediction import prediction_auc, roc_auc
from r2et_fast.metrics._removal import COMP, FAITHFULNESS_METRICS, SUFF, removal_ks
from r2et_fast.metrics._similarity import (
    MSE,
    SIMILARITY_METRICS,
    Cosine,
    KendallTau,
    KendallTauTopK,
    Pearson,
    PrecisionAtK,
    SimilarityMetric,
    Spearman,
    rank_metrics,
)

__all__ = [
    "SimilarityMetric",
    "PrecisionAtK",
    "KendallTau",
    "KendallTauTopK",
    "Spearman",
    "Pearson",
    "MSE",
    "Cosine",
    "SIMILARITY_METRICS",
    "rank_metrics",
    "roc_auc",
    "prediction_auc",
    "Sensitivity",
    "FaithfulnessMetric",
    "DFFOT",
    "DFFOTResult",
    "COMP",
    "SUFF",
    "FAITHFULNESS_METRICS",
    "dffot_grid",
    "removal_ks",
]
