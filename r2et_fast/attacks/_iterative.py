"""The loop shared by the explanation attacks: projected steps on a per-sample objective of the
explanation, under a prediction-keeping constraint, recording P@k against the clean explanation at
every iterate."""

from __future__ import annotations

import torch

from r2et_fast._validation import (
    check_callable,
    check_choice,
    check_k,
    check_nonnegative_float,
    check_positive_int,
)
from r2et_fast.attacks._base import (
    AttackResult,
    box_tensor,
    check_budget,
    check_inputs,
    random_start,
)
from r2et_fast.explain import Explainer, Saliency
from r2et_fast.explain._score import TRAINING_SCORE
from r2et_fast.ops.attacks import projected_step
from r2et_fast.ops.ranking import precision_at_k

CONSTRAINTS = ("none", "early_stop", "gda", "hedge", "qp", "fixed")
LAGRANGIAN = ("gda", "hedge", "qp", "fixed")
DISTANCES = ("prob_l2", "kl", "margin")


class IterativeAttack:
    """Base class: subclasses define ``_prepare(clean) -> state`` and ``_loss(maps, clean, state)``,
    a (B,) objective of the flattened explanation that the attack *minimises*.

    Common parameters: ``k`` (the top-k set whose P@k is recorded), ``eps``, ``alpha``, ``steps``,
    ``norm`` (the ball: "l2" | "linf"), ``step_norm`` (step normalisation, default ``norm``),
    ``random_start`` (uniform point of the ball, seeded by ``seed``), ``constraint`` ("early_stop":
    a sample stops at its first prediction change and keeps the last point that kept it; "none";
    or a weighting of the objective and the prediction constraint c(x') = max(0, d(p(x), p(x')) -
    ``tolerance``), d = ``distance`` ("prob_l2": ||softmax difference||_2, "kl": KL(p(x) || p(x'))),
    with weights lambda on the simplex per sample: "gda" (lambda_c += eta c, renormalised),
    "hedge" (lambda_c *= exp(eta c), renormalised), "qp" (the min-norm point of the two gradients'
    hull while c > 0, the objective alone otherwise), "fixed" (equal weights); eta =
    ``constraint_eta``),
    ``explainer`` (default: gradient saliency of ``TRAINING_SCORE``, the loss at the label), the valid box
    [``lower``, ``upper``] and the ops ``backend``.
    """

    def __init__(self, model, *, k: int = 8, eps: float = 1.0, alpha: float = 1e-3, steps: int = 100,
                 norm: str = "linf", step_norm: str | None = None, random_start: bool = False,
                 constraint: str = "early_stop", explainer: Explainer | None = None, lower=None,
                 upper=None, seed: int = 0, backend: str | None = None, distance: str = "prob_l2",
                 tolerance: float = 0.0, constraint_eta: float = 1.0) -> None:
        check_callable(model, "model")
        check_budget(eps, alpha, steps, norm, step_norm)
        check_positive_int(k, "k")
        check_choice(constraint, "constraint", CONSTRAINTS)
        self.model, self.k, self.eps, self.alpha, self.steps = model, k, float(eps), float(alpha), steps
        self.norm, self.step_norm = norm, step_norm or norm
        self.random_start, self.seed = random_start, seed
        check_choice(distance, "distance", DISTANCES)
        check_nonnegative_float(tolerance, "tolerance")
        check_nonnegative_float(constraint_eta, "constraint_eta")
        self.constraint, self.distance = constraint, distance
        self.tolerance, self.constraint_eta = float(tolerance), float(constraint_eta)
        # The attacks explain what R2ET's training explains (TRAINING_SCORE, the authors' choice).
        self.explainer = explainer if explainer is not None else Saliency(model, score=TRAINING_SCORE)
        self.lower, self.upper, self.backend = lower, upper, backend

    # -- to override -------------------------------------------------------------------------------
    def _prepare(self, clean: torch.Tensor):
        return None

    def _loss(self, maps: torch.Tensor, clean: torch.Tensor, state) -> torch.Tensor:
        raise NotImplementedError

    # -- the loop ------------------------------------------------------------------------------------
    def _explain(self, x: torch.Tensor, y: torch.Tensor, create_graph: bool) -> torch.Tensor:
        return self.explainer.attribute(x, target=y, create_graph=create_graph).flatten(1)

    @torch.no_grad()
    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).argmax(dim=1)

    def _violation(self, x: torch.Tensor, p0: torch.Tensor) -> torch.Tensor:
        """c(x) = max(0, d(p(x0), p(x)) - tolerance) per sample, differentiable w.r.t. x."""
        logits = self.model(x)
        if self.distance == "margin":
            c0 = p0.argmax(dim=1, keepdim=True)
            own = logits.gather(1, c0).squeeze(1)
            rival = logits.scatter(1, c0, float("-inf")).max(dim=1).values
            return torch.relu(rival - own - self.tolerance)
        log_p = torch.log_softmax(logits, dim=1)
        if self.distance == "kl":
            d = (p0 * (p0.clamp_min(1e-30).log() - log_p)).sum(dim=1)
        else:
            d = (log_p.exp() - p0).norm(dim=1)
        return torch.relu(d - self.tolerance)

    def _weights(self, lam: torch.Tensor, c: torch.Tensor, g_obj: torch.Tensor,
                 g_con: torch.Tensor) -> torch.Tensor:
        """Per-sample weights (B, 2) of (objective, constraint) on the simplex."""
        eta = self.constraint_eta
        if self.constraint == "fixed":
            return torch.full_like(lam, 0.5)
        if self.constraint == "gda":
            lam = lam + eta * torch.stack([torch.zeros_like(c), c], dim=1)
        elif self.constraint == "hedge":
            lam = lam * torch.exp(eta * torch.stack([torch.zeros_like(c), c], dim=1))
        else:  # qp: min over a in [0, 1] of ||a g_obj + (1 - a) g_con||^2, while violated
            diff = g_obj - g_con
            a = ((-diff * g_con).sum(dim=1) / diff.square().sum(dim=1).clamp_min(1e-30)).clamp(0, 1)
            a = torch.where(c > 0, a, torch.ones_like(a))
            lam = torch.stack([a, 1 - a], dim=1)
        return lam / lam.sum(dim=1, keepdim=True)

    def _setup(self, x: torch.Tensor, y: torch.Tensor):
        """Checks, the box, the clean explanation and the clean prediction of a batch."""
        check_inputs(x, y)
        x0 = x.detach()
        lower, upper = box_tensor(self.lower, x0, "lower"), box_tensor(self.upper, x0, "upper")
        outside = (lower is not None and bool((x0 < lower).any())) or (
            upper is not None and bool((x0 > upper).any()))
        if outside:
            raise ValueError("x lies outside the box [lower, upper]")
        clean = self._explain(x0, y, create_graph=False)
        check_k(self.k, clean.shape[1])
        return x0, lower, upper, clean, self._predict(x0)

    def _finish(self, x_t: torch.Tensor, y: torch.Tensor, clean: torch.Tensor, precision: torch.Tensor,
                pred0: torch.Tensor, steps_run: torch.Tensor) -> AttackResult:
        """Record P@k at the returned point, the manipulation epoch and the label check."""
        final = self._explain(x_t, y, False)
        precision[-1] = precision_at_k(clean, final, self.k, backend=self.backend)
        moved = precision < 1
        never = torch.full((x_t.shape[0],), precision.shape[0], device=x_t.device)
        epoch = torch.where(moved.any(dim=0), moved.float().argmax(dim=0), never).to(torch.int64)
        return AttackResult(x_adv=x_t, precision_at_k=precision, manipulation_epoch=epoch,
                            label_kept=self._predict(x_t) == pred0, steps_run=steps_run,
                            clean_maps=clean, adv_maps=final)

    @staticmethod
    def _view(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return mask.view(-1, *([1] * (like.dim() - 1)))

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> AttackResult:
        """Attack the batch ``x`` whose explanations are taken at labels ``y``."""
        x0, lower, upper, clean, pred0 = self._setup(x, y)
        state = self._prepare(clean)
        lagrangian = self.constraint in LAGRANGIAN
        if lagrangian:
            with torch.no_grad():
                p0 = torch.softmax(self.model(x0), dim=1)
            lam = torch.tensor([0.5, 0.5], dtype=x0.dtype, device=x0.device).repeat(x0.shape[0], 1)

        x_t = x0.clone()
        if self.random_start and self.eps > 0:
            generator = torch.Generator().manual_seed(self.seed)
            x_t = random_start(x0, self.eps, self.norm, generator, lower, upper)
            if self.constraint == "early_stop":  # a start that changes the prediction is no start
                x_t = torch.where(self._view(self._predict(x_t) == pred0, x0), x_t, x0)

        batch = x0.shape[0]
        precision = torch.empty(self.steps + 1, batch, dtype=clean.dtype, device=x0.device)
        active = torch.ones(batch, dtype=torch.bool, device=x0.device)
        steps_run = torch.zeros(batch, dtype=torch.int64, device=x0.device)
        for t in range(self.steps):
            x_t.requires_grad_(True)
            maps = self._explain(x_t, y, create_graph=True)
            objective = self._loss(maps, clean, state).sum()
            if lagrangian:
                c = self._violation(x_t, p0)
                g_obj = torch.autograd.grad(objective, x_t)[0].flatten(1)
                (g_con,) = torch.autograd.grad(c.sum(), x_t, allow_unused=True)
                g_con = torch.zeros_like(g_obj) if g_con is None else g_con.flatten(1)
                lam = self._weights(lam, c.detach(), g_obj, g_con)
                grad = (lam[:, :1] * g_obj + lam[:, 1:] * g_con).view_as(x_t)
            else:
                (grad,) = torch.autograd.grad(objective, x_t)
            x_t = x_t.detach()
            precision[t] = precision_at_k(clean, maps.detach(), self.k, backend=self.backend)
            x_next = projected_step(x_t, grad, x0, self.alpha, self.eps, step_norm=self.step_norm,
                                    norm=self.norm, lower=lower, upper=upper, backend=self.backend)
            if self.constraint == "early_stop":
                active &= self._predict(x_next) == pred0
                x_next = torch.where(self._view(active, x0), x_next, x_t)
            steps_run += active
            x_t = x_next
        return self._finish(x_t, y, clean, precision, pred0, steps_run)
