"""r2et_fast: fast, tested tools for the stability of saliency explanations.

Public API: ranking and similarity ops (``r2et_fast.ops``, also re-exported here), batched metric
callables (``r2et_fast.metrics``), differentiable explanations (``r2et_fast.explain``), and the
backend switch (``set_backend``, ``use_backend``, ``backend``).
"""

from r2et_fast._backend import BACKENDS, backend, set_backend, use_backend
from r2et_fast._ops import native_available
from r2et_fast.ops import (
    cosine,
    hessian_fd_norm,
    kendall_tau,
    kendall_tau_topk,
    mse,
    pearson,
    precision_at_k,
    projected_step,
    ranks,
    spearman,
    topk_indices,
    topk_pair_gap,
)
from r2et_fast.thickness import ThicknessResult, topk_pair_agreement, topk_thickness

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "backend",
    "set_backend",
    "use_backend",
    "native_available",
    "topk_indices",
    "ranks",
    "precision_at_k",
    "kendall_tau",
    "kendall_tau_topk",
    "spearman",
    "pearson",
    "mse",
    "cosine",
    "topk_pair_gap",
    "hessian_fd_norm",
    "projected_step",
    "topk_pair_agreement",
    "topk_thickness",
    "ThicknessResult",
]
