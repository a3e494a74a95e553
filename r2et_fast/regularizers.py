"""R2ET's regularisers and the baselines' terms, evaluated on a model (docs/spec.md §3, §4).

- ``explanation_gradient``: g(x) = ds/dx, differentiable (double backprop), the raw material of the
  saliency I(x) = |g(x)|;
- ``gradients_at_shift``: g(x) and g(x + kappa v), v = sign(g(x)) / sqrt(n), and the logits at x,
  computed by a gradient engine (``engine=``, see :mod:`r2et_fast.engine`);
- ``hessian_norm``: Ĥ(x) = ||g(x + kappa v) - g(x)||_2 / kappa per sample (fused op);
- ``pair_gap`` / ``mean_pair_gap``: G_k of the saliency (op ``r2et_fast.ops.topk_pair_gap``);
- ``exact_hessian_norm`` (Exact-H) and ``ssr_term`` (SSR), the baselines' terms.

A model in training mode is explained in eval mode: no extra BatchNorm update, no dropout noise
in the explanation terms (:mod:`r2et_fast.engine._modes`); the task loss is the caller's, in the
model's own mode (``engine.task_logits``).

``engine`` chooses the algorithm that computes the gradients; ``backend`` chooses between the
native kernels and the reference twins of the ops applied to them. The two are independent.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from r2et_fast import engine as _engine
from r2et_fast.engine import check_request, explanation_mode, hessian_direction
from r2et_fast.explain._score import TRAINING_SCORE, score_gradient

# the wrappers' own module: r2et_fast.ops fills its namespace at import, which a type checker can't see
from r2et_fast.ops.regularizers import hessian_fd_norm, topk_pair_gap

Model = Callable[[torch.Tensor], torch.Tensor]

__all__ = ["TRAINING_SCORE", "explanation_gradient", "hessian_direction", "gradients_at_shift",
           "hessian_norm", "pair_gap", "mean_pair_gap", "exact_hessian_norm", "ssr_term"]


def explanation_gradient(model: Model, x: torch.Tensor, target: torch.Tensor | None,
                         score: str = TRAINING_SCORE, create_graph: bool = True) -> torch.Tensor:
    """g(x) = ds/dx for the score s at ``target`` (the label; None = predicted class)."""
    check_request(model, x, score)
    z = x if x.requires_grad else x.detach().requires_grad_()
    with explanation_mode(model):
        return score_gradient(model, z, target, score, create_graph)[0]


def gradients_at_shift(model: Model, x: torch.Tensor, target: torch.Tensor | None, *,
                       score: str = TRAINING_SCORE, kappa: float = 1e-3,
                       engine: str = _engine.AUTO) -> _engine.Gradients:
    """Logits at x, g(x) and g(x + kappa v), all differentiable w.r.t. the model's parameters."""
    if kappa is None:  # compute_gradients checks everything else, kappa included when given
        raise ValueError("kappa must be a positive finite number, got None")
    return _engine.compute_gradients(model, x, target, score=score, kappa=kappa, engine=engine)


def hessian_norm(model: Model, x: torch.Tensor, target: torch.Tensor | None, *,
                 score: str = TRAINING_SCORE, kappa: float = 1e-3, engine: str = _engine.AUTO,
                 backend: str | None = None) -> tuple[torch.Tensor, _engine.Gradients]:
    """(Ĥ(x) per sample (B,), the engine's :class:`~r2et_fast.engine.Gradients`).

    The gradients come back too, so a caller (R2ET) builds the saliency |g(x)| and the task loss
    from the same passes.
    """
    grads = gradients_at_shift(model, x, target, score=score, kappa=kappa, engine=engine)
    if grads.g_shift is None:
        raise RuntimeError(f"engine {engine!r} returned no g(x + kappa v)")
    h = hessian_fd_norm(grads.g_x.flatten(1), grads.g_shift.flatten(1), kappa, backend=backend)
    return h, grads


def pair_gap(saliency: torch.Tensor, k: int, pairs: str = "all", transform: str = "linear",
             n_pairs: int | None = None, *, backend: str | None = None) -> torch.Tensor:
    """G_k of a batch of saliency maps (B, ...), flattened per sample; see ``ops.topk_pair_gap``."""
    if not isinstance(saliency, torch.Tensor) or saliency.dim() < 2:
        raise ValueError("saliency must be a batch of maps (B, ...)")
    return topk_pair_gap(saliency.flatten(1), k, pairs, transform, n_pairs, backend=backend)


def mean_pair_gap(saliency: torch.Tensor, k: int, pairs: str = "all", transform: str = "linear",
                  n_pairs: int | None = None, *, backend: str | None = None) -> torch.Tensor:
    """G_k averaged over its pairs and over the batch (ranking detached).

    Dividing by the number of pairs keeps the weight of -G_k independent of k and n.
    """
    n = saliency[0].numel()
    n_pairs = n_pairs if pairs == "mm" else None
    count = k * (n - k) if pairs == "all" else (n_pairs or min(k, n - k))
    return pair_gap(saliency, k, pairs, transform, n_pairs, backend=backend).mean() / count


def exact_hessian_norm(model: Model, x: torch.Tensor, y: torch.Tensor, score: str = TRAINING_SCORE, *,
                       max_features: int = 64) -> torch.Tensor:
    """Frobenius norm of the exact input Hessian of the score, per sample (n backward passes)."""
    n = x[0].numel()
    if n > max_features:
        raise ValueError(f"Exact-H computes n = {n} Hessian rows per batch; refusing above "
                         f"exact_h_max_features = {max_features} (use Est-H or R2ET)")
    z = x.detach().requires_grad_()
    with explanation_mode(model):
        g = explanation_gradient(model, z, y, score).flatten(1)
        rows = [torch.autograd.grad(g[:, i].sum(), z, create_graph=True)[0].flatten(1) for i in range(n)]
    return torch.stack(rows, dim=1).flatten(1).norm(dim=1)


def ssr_term(model: Model, x: torch.Tensor) -> torch.Tensor:
    """Largest eigenvalue of J^T A J (the CE input Hessian of a locally linear net), per sample.

    With A = diag(p) - p p^T = B^T B, B = diag(sqrt p)(I - 1 p^T), the non-zero eigenvalues of
    J^T A J are those of the C x C matrix M = (B J)(B J)^T, M_cd = sqrt(p_c p_d) (J_c - Jbar).(J_d - Jbar)
    with Jbar = sum_c p_c J_c. M has rank <= C - 1: for two classes lambda_max = trace M, which is
    smooth (an eigen-solver's gradient is not where eigenvalues meet).
    """
    z = x.detach().requires_grad_()
    with explanation_mode(model):
        logits = model(z)
    classes = logits.shape[1]
    jac = torch.stack([torch.autograd.grad(logits[:, c].sum(), z, create_graph=True)[0].flatten(1)
                       for c in range(classes)], dim=1)  # (B, C, n)
    p = torch.softmax(logits, dim=1)
    centred = jac - (p[:, :, None] * jac).sum(dim=1, keepdim=True)
    if classes == 2:
        return (p * centred.square().sum(dim=2)).sum(dim=1)
    root = p.clamp_min(1e-12).sqrt()
    m = root[:, :, None] * (centred @ centred.transpose(1, 2)) * root[:, None, :]
    return torch.linalg.eigvalsh(m)[:, -1]
