"""Plain-PyTorch twins of every native kernel.

They are the oracle for the kernel tests and the baseline of the benchmarks: batched and vectorised
as far as plain PyTorch allows, and written to be read. They assume validated input (the public
wrappers in ``r2et_fast.ops`` check it).
"""

from r2et_fast.reference.attacks import projected_step
from r2et_fast.reference.ranking import (
    kendall_tau,
    kendall_tau_topk,
    precision_at_k,
    ranks,
    spearman,
    topk_indices,
)
from r2et_fast.reference.regularizers import hessian_fd_norm, topk_pair_gap
from r2et_fast.reference.similarity import cosine, mse, pearson
from r2et_fast.reference.thickness import topk_pair_agreement

__all__ = [
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
]
