"""The spectral core: the largest singular value of H = dg/dx without forming H.

g is an attribution map (saliency, gradient x input, IG) of a model's score at a fixed class,
flattened to (B, m); x is a batch (B, ...) with n features per sample; J = dg/dx is m x n per
sample (the paper's H = J^T, so its P = H H^T is our J^T J, an n x n matrix over input features).

Products with J reuse one graph: g is computed once with ``create_graph=True`` and every
``J^T u`` is one backward pass through it (for saliency this is the Hessian-vector product by
double backprop). ``J v`` uses the double-vjp trick (differentiate J^T u, which is linear in u,
with respect to u). Samples are independent in eval mode, so one product of the batch sum gives
every sample's product at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from r2et_fast._validation import check_positive_int
from r2et_fast.explain._score import EXPLAINER_SCORE

from ._args import (
    check_tol,
    check_x,
    is_symmetric,
    make_explainer,
    resolve_target,
)

SOLVERS = ("lanczos", "exact")


@dataclass
class SpectralResult:
    """Top singular triplet of J = dg/dx per sample.

    Attributes:
        xi_max: (B,) the largest singular value of J (the paper's xi_max).
        v_max: the unit right singular vector, shaped like x (sign arbitrary).
        attribution: (B, m) the flattened attribution g(x).
        target: (B,) int64 the explained class.
        iterations: (B,) int64 Lanczos iterations each sample needed (exact: m products).
        converged: (B,) bool, the Lanczos residual met ``tol`` (always True for exact).
        solver: "lanczos" or "exact".
    """

    xi_max: torch.Tensor
    v_max: torch.Tensor
    attribution: torch.Tensor
    target: torch.Tensor
    iterations: torch.Tensor
    converged: torch.Tensor
    solver: str


class Linearization:
    """g at x with its graph kept, for batched products with J = dg/dx."""

    def __init__(self, explainer, x: torch.Tensor, target: torch.Tensor) -> None:
        self.x = x.detach().clone().requires_grad_(True)
        g = explainer.attribute(self.x, target=target, create_graph=True)
        self.g = g.flatten(1)
        self.value = self.g.detach()
        self.batch, self.n, self.m = x.shape[0], self.x[0].numel(), self.g.shape[1]
        self._jvp_graph: tuple[torch.Tensor, torch.Tensor | None] | None = None

    def _zeros(self, *shape: int) -> torch.Tensor:
        return self.x.new_zeros(*shape)

    def vjp(self, u: torch.Tensor) -> torch.Tensor:
        """J^T u: (B, m) -> (B, n)."""
        if not self.g.requires_grad:  # g does not depend on anything: J = 0
            return self._zeros(self.batch, self.n)
        (out,) = torch.autograd.grad(self.g, self.x, u, retain_graph=True, allow_unused=True)
        return self._zeros(self.batch, self.n) if out is None else out.flatten(1)

    def vjp_batched(self, us: torch.Tensor) -> torch.Tensor:
        """J^T u for a stack of c directions: (c, B, m) -> (c, B, n), vmapped by autograd."""
        if not self.g.requires_grad:
            return self._zeros(us.shape[0], self.batch, self.n)
        try:
            (out,) = torch.autograd.grad(self.g, self.x, us, retain_graph=True, allow_unused=True,
                                         is_grads_batched=True)
        except RuntimeError:  # an op without a batching rule: one product at a time
            return torch.stack([self.vjp(u) for u in us])
        return self._zeros(us.shape[0], self.batch, self.n) if out is None else out.flatten(2)

    def jvp(self, v: torch.Tensor) -> torch.Tensor:
        """J v: (B, n) -> (B, m), as d/du <J^T u, v> (the graph of J^T u is built once)."""
        if self._jvp_graph is None:
            u = torch.zeros_like(self.value, requires_grad=True)
            w = None
            if self.g.requires_grad:
                with torch.enable_grad():
                    (w,) = torch.autograd.grad(self.g, self.x, u, create_graph=True, allow_unused=True)
            self._jvp_graph = (u, w)
        u, w = self._jvp_graph
        if w is None or not w.requires_grad:
            return self._zeros(self.batch, self.m)
        (out,) = torch.autograd.grad(w, u, v.view_as(w), retain_graph=True, allow_unused=True)
        return self._zeros(self.batch, self.m) if out is None else out

    def jacobian(self, chunk_size: int = 64) -> torch.Tensor:
        """The full J (B, m, n), ``chunk_size`` rows (batched vjps with unit vectors) at a time."""
        jac = self._zeros(self.batch, self.m, self.n)
        eye = torch.eye(self.m, dtype=self.x.dtype, device=self.x.device)
        for start in range(0, self.m, chunk_size):
            stop = min(self.m, start + chunk_size)
            us = eye[start:stop, None, :].expand(-1, self.batch, -1).contiguous()
            jac[:, start:stop] = self.vjp_batched(us).transpose(0, 1)
        return jac


def lanczos_top(matvec: Callable[[torch.Tensor], torch.Tensor], v0: torch.Tensor, max_iter: int,
                tol: float, absolute: bool):
    """Batched Lanczos with full re-orthogonalisation for the extreme eigenpair of a symmetric A.

    Args:
        matvec: A v for a batch (B, n) -> (B, n), one independent operator per row.
        v0: (B, n) start vectors.
        max_iter: iteration cap (also capped at n, where the Krylov space is full).
        tol: a sample stops when the Ritz residual |beta_j s_j| <= tol * |theta|.
        absolute: pick the Ritz value of largest |theta| (indefinite A) instead of the largest.

    Returns:
        (theta (B,) float64, vector (B, n), iterations (B,) int64, converged (B,) bool).
    """
    batch, n = v0.shape
    dims = min(max_iter, n)
    dev = v0.device
    basis = v0.new_zeros(batch, dims, n)
    alpha = torch.zeros(batch, dims, dtype=torch.float64, device=dev)
    beta = torch.zeros(batch, dims, dtype=torch.float64, device=dev)
    theta = torch.zeros(batch, dtype=torch.float64, device=dev)
    vec = torch.zeros_like(v0)
    iters = torch.full((batch,), dims, dtype=torch.int64, device=dev)
    done = torch.zeros(batch, dtype=torch.bool, device=dev)
    tiny = torch.finfo(v0.dtype).tiny
    q = v0 / v0.norm(dim=1, keepdim=True).clamp_min(tiny)

    def ritz(s: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        r = torch.bmm(s.to(v0.dtype)[:, None, :], active)[:, 0]
        return r / r.norm(dim=1, keepdim=True).clamp_min(tiny)

    for j in range(dims):
        basis[:, j] = q
        w = matvec(q)
        alpha[:, j] = (w * q).sum(dim=1).double()
        active = basis[:, : j + 1]
        for _ in range(2):  # classical Gram-Schmidt twice keeps the basis orthonormal
            w = w - torch.bmm(torch.bmm(w[:, None, :], active.transpose(1, 2)), active)[:, 0]
        b = w.norm(dim=1)
        beta[:, j] = b.double()
        tri = (torch.diag_embed(alpha[:, : j + 1]) + torch.diag_embed(beta[:, :j], 1)
               + torch.diag_embed(beta[:, :j], -1))
        evals, evecs = torch.linalg.eigh(tri)
        idx = (evals.abs() if absolute else evals).argmax(dim=1)
        th = evals.gather(1, idx[:, None])[:, 0]
        s = evecs.gather(2, idx[:, None, None].expand(-1, j + 1, 1))[:, :, 0]
        resid = beta[:, j] * s[:, -1].abs()
        conv = (resid <= tol * th.abs()) | (j + 1 == n)
        take = conv & ~done
        if j + 1 == dims:
            take = ~done  # the cap: report the last Ritz pair, not converged
        if bool(take.any()):
            theta = torch.where(take, th, theta)
            vec = torch.where(take[:, None], ritz(s, active), vec)
            iters = torch.where(take, j + 1, iters)
        done |= conv
        if bool(done.all()):
            break
        q = torch.where(b[:, None] > tiny, w / b[:, None].clamp_min(tiny), 0.0)
    return theta, vec, iters, done


def _check_size(n: int, max_features: int) -> None:
    if n > max_features:
        raise ValueError(
            f"x has {n} features per sample, above max_features={max_features}: the exact route "
            f"builds the full {n} x {n} Jacobian per sample; raise max_features to allow it")


def _prepare(model, x, method, target, score, explainer_kwargs):
    check_x(x, model)
    explainer = make_explainer(model, method, score, explainer_kwargs)
    return explainer, resolve_target(model, x, target)


def attribution(model: Any, x: torch.Tensor, method: str = "saliency", target: Any = None, *,
                score: str = EXPLAINER_SCORE,
                explainer_kwargs: Mapping[str, Any] | None = None) -> torch.Tensor:
    """The attribution g(x) used by the bounds, flattened to (B, m) and detached.

    Signed by default (``abs=False``); ``target`` None explains the predicted class.
    """
    explainer, labels = _prepare(model, x, method, target, score, explainer_kwargs)
    return explainer.attribute(x.detach(), target=labels).flatten(1)


def top_singular(model: Any, x: torch.Tensor, method: str = "saliency", target: Any = None, *,
                 score: str = EXPLAINER_SCORE, explainer_kwargs: Mapping[str, Any] | None = None,
                 solver: str = "lanczos", tol: float | None = None, max_iter: int = 100,
                 seed: int = 0, chunk_size: int = 64, max_features: int = 4096) -> SpectralResult:
    """xi_max and v_max of J = dg/dx per sample, without forming J (``solver="lanczos"``).

    For the plain signed saliency, J is the symmetric input Hessian of the score: Lanczos runs on
    J itself (one Hessian-vector product per iteration) and xi_max = max |eigenvalue|. Otherwise
    (gradient x input, IG, or saliency with ``abs``/``normalize``/``reduce_channels``) Lanczos
    runs on J^T J (one J v and one J^T u per iteration) and xi_max = sqrt(lambda_max).
    The Lanczos value is a Ritz value, never above the true xi_max (up to rounding) and within
    about ``tol`` of it once converged; use a smaller ``tol`` or ``solver="exact"`` where the bound
    must not be low at all.

    Args:
        model: callable (B, ...) -> (B, C) scores, in eval mode.
        x: float batch (B, ...).
        method: "saliency" | "gradxinput" | "ig".
        target: explained class (int, (B,) LongTensor, or None for the prediction at x).
        score: "logit" | "prob" | "loss" (see ``r2et_fast.explain``).
        explainer_kwargs: extra explainer hyper-parameters (e.g. ``{"n_steps": 16}`` for IG);
            ``abs`` defaults to False.
        solver: "lanczos" (matrix-free) or "exact" (full J by batched vjps, then an SVD; small n,
            the test oracle).
        tol: relative Ritz-residual tolerance (default 1e-6 in float64, 1e-3 in float32).
        max_iter: Lanczos iteration cap. seed: seed of the random start vectors.
        chunk_size: rows of J per batched vjp (exact route). max_features: the exact route
            refuses larger n.
    """
    explainer, labels = _prepare(model, x, method, target, score, explainer_kwargs)
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}; got {solver!r}")
    max_iter = check_positive_int(max_iter, "max_iter")
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    max_features = check_positive_int(max_features, "max_features")
    tol = check_tol(tol, x.dtype)
    lin = Linearization(explainer, x, labels)
    batch = x.shape[0]
    if solver == "exact":
        _check_size(max(lin.n, lin.m), max_features)
        _, sv, vh = torch.linalg.svd(lin.jacobian(chunk_size), full_matrices=False)
        return SpectralResult(
            xi_max=sv[:, 0], v_max=vh[:, 0, :].reshape(x.shape), attribution=lin.value, target=labels,
            iterations=torch.full((batch,), lin.m, dtype=torch.int64, device=x.device),
            converged=torch.ones(batch, dtype=torch.bool, device=x.device), solver=solver)
    generator = torch.Generator().manual_seed(int(seed))
    v0 = torch.randn(batch, lin.n, generator=generator, dtype=x.dtype).to(x.device)
    symmetric = is_symmetric(explainer, method) and lin.m == lin.n
    if symmetric:
        theta, vec, iters, conv = lanczos_top(lin.vjp, v0, max_iter, tol, absolute=True)
        xi = theta.abs()
    else:
        theta, vec, iters, conv = lanczos_top(lambda v: lin.vjp(lin.jvp(v)), v0, max_iter, tol,
                                              absolute=False)
        xi = theta.clamp_min(0).sqrt()
    return SpectralResult(xi_max=xi.to(x.dtype), v_max=vec.reshape(x.shape), attribution=lin.value,
                          target=labels, iterations=iters, converged=conv, solver=solver)


def attribution_jacobian(model: Any, x: torch.Tensor, method: str = "saliency", target: Any = None, *,
                         score: str = EXPLAINER_SCORE, explainer_kwargs: Mapping[str, Any] | None = None,
                         chunk_size: int = 64, max_features: int = 4096) -> torch.Tensor:
    """The full J = dg/dx, (B, m, n), by batched vjps (``chunk_size`` rows at a time).

    Refuses n > ``max_features`` (it holds B * m * n numbers).
    """
    explainer, labels = _prepare(model, x, method, target, score, explainer_kwargs)
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    _check_size(x[0].numel(), check_positive_int(max_features, "max_features"))
    return Linearization(explainer, x, labels).jacobian(chunk_size)


def abs_sum_p(model: Any, x: torch.Tensor, method: str = "saliency", target: Any = None, *,
              score: str = EXPLAINER_SCORE, explainer_kwargs: Mapping[str, Any] | None = None,
              chunk_size: int = 64, max_features: int = 4096, max_elements: int = 2**25) -> torch.Tensor:
    """sum_ij |P_ij| per sample, P = J^T J (n x n over input features): the l_inf bound's term.

    J is built by batched vjps, a group of samples at a time so that J holds at most about
    ``max_elements`` numbers, and P a block of columns at a time (P[:, cols] = J^T J[:, cols]), so
    memory stays bounded. Refuses n > ``max_features``.
    """
    explainer, labels = _prepare(model, x, method, target, score, explainer_kwargs)
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    max_elements = check_positive_int(max_elements, "max_elements")
    n = x[0].numel()
    _check_size(n, check_positive_int(max_features, "max_features"))
    out = x.new_zeros(x.shape[0])
    group = max(1, max_elements // (n * n))
    for s0 in range(0, x.shape[0], group):
        jac = Linearization(explainer, x[s0 : s0 + group], labels[s0 : s0 + group]).jacobian(chunk_size)
        cols = max(1, max_elements // (jac.shape[0] * n))
        jt = jac.transpose(1, 2)
        for c0 in range(0, n, cols):
            out[s0 : s0 + group] += (jt @ jac[:, :, c0 : c0 + cols]).abs().sum(dim=(1, 2))
    return out
