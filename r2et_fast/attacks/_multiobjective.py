"""Multi-objective ERAttack (docs/spec.md §5): every pair gap is its own objective. The step direction is
minus the minimum-norm point of the convex hull of their gradients (Fliege–Svaiter / MGDA), found
per sample by Frank–Wolfe; the step length by Armijo backtracking on all gaps at once; a sample
stops at a Pareto-critical point (the min-norm point vanishes)."""

from __future__ import annotations

import torch

from r2et_fast._validation import trusted_values
from r2et_fast.attacks._base import AttackResult
from r2et_fast.attacks._iterative import IterativeAttack, all_finite, raise_unless_finite
from r2et_fast.attacks._vanishing import input_grad, probe_vanishing, vanishing_samples
from r2et_fast.ops.attacks import projected_step
from r2et_fast.ops.ranking import precision_at_k
from r2et_fast.ops.regularizers import topk_pair_gap


def min_norm_point(grads: torch.Tensor, iters: int = 50) -> torch.Tensor:
    """Per sample, the minimum-norm point of the convex hull of the rows of ``grads`` (B, P, n),
    by Frank–Wolfe with exact line search on the Gram matrix. Returns (B, n)."""
    batch, count, _ = grads.shape
    gram = grads @ grads.transpose(1, 2)  # (B, P, P)
    lam = torch.full((batch, count), 1.0 / count, dtype=grads.dtype, device=grads.device)
    for _ in range(iters):
        m_lam = (gram @ lam[:, :, None])[:, :, 0]  # (B, P): g_p . v
        t = m_lam.argmin(dim=1)
        vv = (lam * m_lam).sum(dim=1)  # ||v||^2
        vg = m_lam.gather(1, t[:, None])[:, 0]  # v . g_t
        gg = gram.gather(1, t[:, None, None].expand(-1, 1, count))[:, 0].gather(1, t[:, None])[:, 0]
        # minimise ||(1 - s) v + s g_t||^2 over s in [0, 1]
        s = ((vv - vg) / (vv - 2 * vg + gg).clamp_min(1e-30)).clamp(0, 1)
        lam = (1 - s)[:, None] * lam
        lam.scatter_add_(1, t[:, None], s[:, None])
    return (lam[:, :, None] * grads).sum(dim=1)


class MultiObjectiveERAttack:
    """Lowers every pair gap h_p = I_hi - I_lo (pairs fixed from the clean explanation) at once.

    Args:
        model, k, eps, norm, lower, upper, explainer, backend, surrogate_beta: as for
            :class:`ERAttack` (:class:`~r2et_fast.attacks.IterativeAttack`): any differentiable
            attribution as ``explainer``, labels of any integer kind, eval mode for the call,
            single-output models, the vanishing-gradient warning.
        alpha: the first step length tried by Armijo backtracking (halved up to ``backtracks``
            times; a sample whose every try fails does not move that iteration).
        steps: maximum iterations. pairs / n_pairs: "anchor" (default, N = k) or "mm".
        armijo_c: sufficient-decrease constant; critical_tol: a sample whose min-norm direction
            is shorter than this is Pareto-critical and stops.

    The prediction (of the real model) is kept: a trial point that changes it is rejected like
    an Armijo failure. With ``surrogate_beta`` the directions *and* the Armijo test use the
    surrogate's gaps (the real gaps of a piecewise-linear model are locally constant, so no
    sufficient decrease could ever be seen); P@k and the returned maps are the real ones.
    """

    def __init__(self, model, *, k: int = 8, eps: float = 1.0, alpha: float = 0.05, steps: int = 50,
                 norm: str = "linf", pairs: str = "anchor", n_pairs: int | None = None,
                 armijo_c: float = 1e-4, backtracks: int = 6, critical_tol: float = 1e-9,
                 fw_iters: int = 50, explainer=None, lower=None, upper=None,
                 backend: str | None = None, surrogate_beta: float | None = None) -> None:
        if pairs not in ("anchor", "mm"):
            raise ValueError(f"pairs must be 'anchor' or 'mm' (explicit pairs), got {pairs!r}")
        self._base = IterativeAttack(model, k=k, eps=eps, alpha=alpha, steps=steps, norm=norm,
                                     explainer=explainer, lower=lower, upper=upper, backend=backend,
                                     surrogate_beta=surrogate_beta)
        self.pairs, self.n_pairs = pairs, n_pairs
        self.armijo_c, self.backtracks, self.critical_tol = armijo_c, backtracks, critical_tol
        self.fw_iters = fw_iters

    def __call__(self, x: torch.Tensor, y) -> AttackResult:
        """Attack ``x`` at labels ``y`` (as for :meth:`IterativeAttack.__call__`)."""
        return self._base._guarded(x, y, self._attack, type(self).__name__)

    def _attack(self, x: torch.Tensor, y: torch.Tensor) -> tuple[AttackResult, torch.Tensor | None]:
        x0, lower, upper, clean, pred0, _ = self._base._setup(x, y)
        probe = probe_vanishing()  # asked before the steps' own trusted_values() below
        # as IterativeAttack's: the steps read back only the line search's early exit
        with trusted_values():
            result, vanished, finite = self._steps(x0, y, lower, upper, clean, pred0, probe)
        raise_unless_finite(finite, type(self).__name__)
        return result, vanished

    def _steps(self, x0: torch.Tensor, y: torch.Tensor, lower: torch.Tensor | None,
               upper: torch.Tensor | None, clean: torch.Tensor, pred0: torch.Tensor, probe: bool
               ) -> tuple[AttackResult, torch.Tensor | None, torch.Tensor]:
        b = self._base
        surrogate = b._surrogate_attribution()
        _, hi, lo = topk_pair_gap(clean, b.k, self.pairs, "linear", self.n_pairs,
                                  return_indices=True, backend=b.backend)

        def gaps(maps):
            return maps.gather(1, hi) - maps.gather(1, lo)

        def search_maps(z):  # the maps whose gaps the steps descend (real, or the surrogate's)
            return b._explain(z, y, False) if surrogate is None else surrogate(z, y, False).flatten(1)

        batch = x0.shape[0]
        precision = torch.empty(b.steps + 1, batch, dtype=clean.dtype, device=x0.device)
        active = torch.ones(batch, dtype=torch.bool, device=x0.device)
        steps_run = torch.zeros(batch, dtype=torch.int64, device=x0.device)
        vanished = torch.zeros(batch, dtype=torch.bool, device=x0.device) if probe else None
        finite = all_finite(clean)
        x_t = x0.clone()
        for t in range(b.steps):
            x_t.requires_grad_(True)
            maps, real_maps = b._step_maps(x_t, y, surrogate)
            h = gaps(maps)
            count = h.shape[1]
            # the graph is kept after the last pair at the first step, for the vanishing check
            keep = t == 0 and probe
            grads = torch.stack([input_grad(h[:, p].sum(), x_t, retain_graph=p + 1 < count or keep)
                                 .flatten(1) for p in range(count)], dim=1)
            if t == 0 and probe:
                vanished = vanishing_samples(maps, x_t, grads.flatten(1))
            x_t, h = x_t.detach(), h.detach()
            finite &= all_finite(real_maps, grads)
            precision[t] = precision_at_k(clean, real_maps, b.k, backend=b.backend)
            d = -min_norm_point(grads, self.fw_iters)  # descends every gap (first order)
            d_sq = d.square().sum(dim=1)
            active &= d_sq.sqrt() > self.critical_tol
            length = torch.full((batch,), b.alpha, dtype=x0.dtype, device=x0.device)
            accepted = torch.zeros(batch, dtype=torch.bool, device=x0.device)
            x_new = x_t.clone()
            for attempt in range(self.backtracks + 1):
                todo = active & ~accepted
                # the early exit of the line search, its one host read per try after the first: a
                # first try with no sample left to move changes nothing (no sample takes it), so it
                # is not worth a read; a step where every sample accepts its first try reads once
                if attempt > 0 and not bool(todo.any()):
                    break
                moved_x = x_t + torch.where(todo, length, 0)[:, None].view(-1, *([1] * (x0.dim() - 1))) \
                    * d.view_as(x_t)
                # a zero step with the fused kernel is a pure projection onto the ball and the box
                trial = projected_step(moved_x, torch.zeros_like(x_t), x0, 0.0, b.eps, step_norm="l2",
                                       norm=b.norm, lower=lower, upper=upper, backend=b.backend)
                h_trial = gaps(search_maps(trial))
                ok = (h_trial <= h - self.armijo_c * (length * d_sq)[:, None]).all(dim=1)
                ok &= b._predict(trial) == pred0
                newly = todo & ok
                x_new = torch.where(b._view(newly, x0), trial, x_new)
                accepted |= newly
                length = torch.where(todo & ~ok, length / 2, length)
            steps_run += accepted
            x_t = x_new
        result = b._finish(x_t, y, clean, precision, pred0, steps_run)
        assert result.adv_maps is not None  # _finish always records them
        return result, vanished, finite & all_finite(result.adv_maps)
