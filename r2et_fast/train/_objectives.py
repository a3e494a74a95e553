"""The per-batch objective of every training method (SPEC §3, §4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from r2et_fast import regularizers as R
from r2et_fast.attacks import ERAttack
from r2et_fast.train._config import TrainConfig


def _adapt(weight: float, ce: torch.Tensor, term: torch.Tensor, cfg: TrainConfig) -> torch.Tensor | float:
    """The authors' adaptive weight |lambda (CE + 1) / term|, both detached; else lambda."""
    if not cfg.adaptive:
        return weight
    return (weight * (ce.detach() + 1) / term.detach().clamp_min(1e-12)).abs()


def mean_pair_gap(saliency: torch.Tensor, cfg: TrainConfig, pairs: str) -> torch.Tensor:
    """G_k averaged over its pairs and over the batch (ranking detached)."""
    n = saliency[0].numel()
    k = cfg.k
    n_pairs = cfg.n_pairs if pairs == "mm" else None
    count = k * (n - k) if pairs == "all" else (n_pairs or min(k, n - k))
    return R.pair_gap(saliency, k, pairs, cfg.transform, n_pairs, backend=cfg.backend).mean() / count


def exact_hessian_norm(model, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """Frobenius norm of the exact input Hessian of the score, per sample (n backward passes)."""
    n = x[0].numel()
    if n > cfg.exact_h_max_features:
        raise ValueError(f"Exact-H computes n = {n} Hessian rows per batch; refusing above "
                         f"exact_h_max_features = {cfg.exact_h_max_features} (use Est-H or R2ET)")
    z = x.detach().requires_grad_()
    g = R.explanation_gradient(model, z, y, cfg.score).flatten(1)
    rows = [torch.autograd.grad(g[:, i].sum(), z, create_graph=True)[0].flatten(1) for i in range(n)]
    return torch.stack(rows, dim=1).flatten(1).norm(dim=1)


def ssr_term(model, x: torch.Tensor) -> torch.Tensor:
    """Largest eigenvalue of J^T A J (the CE input Hessian of a locally linear net), per sample.

    With A = diag(p) - p p^T = B^T B, B = diag(sqrt p)(I - 1 p^T), the non-zero eigenvalues of
    J^T A J are those of the C x C matrix M = (B J)(B J)^T, M_cd = sqrt(p_c p_d) (J_c - Jbar).(J_d - Jbar)
    with Jbar = sum_c p_c J_c. M has rank <= C - 1: for two classes lambda_max = trace M, which is
    smooth (an eigen-solver's gradient is not where eigenvalues meet).
    """
    z = x.detach().requires_grad_()
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


def objective(model, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, step_seed: int
              ) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one batch for ``cfg.method`` and its parts (floats) for the log."""
    method = cfg.method
    if method == "at":
        attack = ERAttack(model, k=cfg.k, eps=cfg.at_eps, alpha=cfg.at_alpha, steps=cfg.at_steps,
                          norm="linf", step_norm="l2", constraint="none", seed=step_seed,
                          backend=cfg.backend)
        x_adv = attack(x, y).x_adv.detach()
        ce = F.cross_entropy(model(x_adv), y)
        return ce, {"ce": ce.item()}
    with_h = method == "est_h" or (method.startswith("r2et") and not method.endswith("_noh"))
    if with_h:  # the native path takes the logits at x from its batched pass for x and x + kappa v
        h, g, logits = R.hessian_norm(model, x, y, score=cfg.score, kappa=cfg.kappa, backend=cfg.backend,
                                      return_logits=True)
        h = h.mean()
    else:
        logits = model(x)
    ce = F.cross_entropy(logits, y)
    parts = {"ce": ce.item()}
    loss = ce
    if method in ("vanilla", "wd", "sp"):
        return loss, parts
    if method == "est_h":
        parts["hess"] = h.item()
        return loss + _adapt(cfg.lambda_hess, ce, h, cfg) * h, parts
    if method == "exact_h":
        h = exact_hessian_norm(model, x, y, cfg).mean()
        parts["hess_exact"] = h.item()
        return loss + _adapt(cfg.lambda_reg, ce, h, cfg) * h, parts
    if method == "ssr":
        s = ssr_term(model, x).mean()
        parts["ssr"] = s.item()
        return loss + _adapt(cfg.lambda_reg, ce, s, cfg) * s, parts
    # the R2ET family
    pairs = "mm" if method.startswith("r2et_mm") else "all"
    if with_h:
        parts["hess"] = h.item()
        loss = loss + _adapt(cfg.lambda_hess, ce, h, cfg) * h
    else:
        g = R.explanation_gradient(model, x, y, cfg.score)
    gap = mean_pair_gap(g.abs(), cfg, pairs)
    parts["gap"] = gap.item()
    return loss - _adapt(cfg.lambda_gap, ce, gap, cfg) * gap, parts
