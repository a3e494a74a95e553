"""The loop shared by the explanation attacks: projected steps on a per-sample objective of the
explanation, under a prediction-keeping constraint, recording P@k against the clean explanation at
every iterate."""

from __future__ import annotations

from collections.abc import Callable

import torch

from r2et_fast._device import compute_device, resolve_device, to_with
from r2et_fast._validation import (
    as_labels,
    check_batch,
    check_callable,
    check_choice,
    check_k,
    check_label_range,
    check_model_output,
    check_nonnegative_float,
    check_positive_int,
    trusted_values,
    values_trusted,
)
from r2et_fast.attacks._base import AttackResult, box_tensor, check_budget, random_start
from r2et_fast.attacks._surrogate import check_surrogate_beta, softplus_surrogate
from r2et_fast.attacks._vanishing import input_grad, probe_vanishing, vanishing_samples, warn_vanishing
from r2et_fast.engine._fused_attack import fused_attack_steps
from r2et_fast.engine._modes import eval_mode, modules_of
from r2et_fast.explain import Saliency
from r2et_fast.explain._attribution import AttributionFn, as_attribution, attribution_model, rebind
from r2et_fast.explain._score import TRAINING_SCORE, input_gradients_only, predicted_class
from r2et_fast.ops.attacks import projected_step
from r2et_fast.ops.ranking import precision_at_k

# (kind, hi, lo, pairs, transform): see ops.fused_attack.fused_mlp_attack
FusedObjective = tuple[str, torch.Tensor, torch.Tensor, str, str]

CONSTRAINTS = ("none", "early_stop", "gda", "hedge", "qp", "fixed")
LAGRANGIAN = ("gda", "hedge", "qp", "fixed")
DISTANCES = ("prob_l2", "kl", "margin")

# An attack's body on checked inputs: (x, labels) -> (result, the (B,) vanished mask or None).
AttackRun = Callable[[torch.Tensor, torch.Tensor], tuple[AttackResult, torch.Tensor | None]]


# a (B, 1) output is the logit z of class 1; as [0, z] its softmax is [1 - sigmoid(z), sigmoid(z)]
def two_class(out: torch.Tensor) -> torch.Tensor:
    """Scores (B, C) with C >= 2 for the prediction constraints: (B, 1) logits z become [0, z]."""
    return torch.cat([torch.zeros_like(out), out], dim=1) if out.shape[1] == 1 else out


# The steps run under trusted_values(): they read nothing back to the host. The ops' finiteness
# checks of each iterate's maps and gradient (the native kernels keep theirs) become this flag on
# the device, read once after the loop, so a model that is not finite near x is still an error.
def all_finite(*tensors: torch.Tensor) -> torch.Tensor:
    """A 0-d bool on the device: every value of ``tensors`` is finite."""
    flags = [torch.isfinite(t.detach()).all() for t in tensors]
    return torch.stack(flags).all() if len(flags) > 1 else flags[0]


def raise_unless_finite(finite: torch.Tensor, attack: str) -> None:
    """The error for a loop whose :func:`all_finite` flag came out False (one host read; none
    where the caller trusts the values, as the Trainer does after its first batch)."""
    if not values_trusted() and not bool(finite):
        raise ValueError(f"{attack}: the explanation or its input gradient contains NaN or Inf at an "
                         "iterate (the model is not finite near x)")


class IterativeAttack:
    """Base class: subclasses define ``_prepare(clean) -> state`` and ``_loss(maps, clean, state)``,
    a (B,) objective of the flattened explanation that the attack *minimises*.

    Common parameters: ``k`` (the top-k set whose P@k is recorded), ``eps``, ``alpha``, ``steps``,
    ``norm`` (the ball: "l2" | "linf"), ``step_norm`` (step normalisation, default ``norm``),
    ``random_start`` (uniform point of the ball, seeded by ``seed``), ``constraint`` ("early_stop":
    a sample stops at its first prediction change and keeps the last point that kept it; "none";
    or a weighting of the objective and the prediction constraint c(x') = max(0, d(p(x), p(x')) -
    ``tolerance``), d = ``distance`` ("prob_l2": ||softmax difference||_2, "kl": KL(p(x) || p(x')),
    "margin": how far the best rival logit passes the clean class's), with weights lambda on the
    simplex per sample: "gda" (lambda_c += eta c, renormalised), "hedge" (lambda_c *= exp(eta c),
    renormalised), "qp" (the min-norm point of the two gradients' hull while c > 0, the objective
    alone otherwise), "fixed" (equal weights); eta = ``constraint_eta``), the valid box
    [``lower``, ``upper``] and the ops ``backend``. ``device``: where the attack runs (default the
    model's device, else that of ``x``; a module model is moved to a given device): ``x`` and
    ``y`` move there at each call, and the result's tensors are there.

    ``explainer``: any differentiable attribution (:mod:`r2et_fast.explain._attribution`): an
    :class:`~r2et_fast.explain.Explainer`, a plain callable ``f(x, target) -> maps`` (B, ...) built
    with ``create_graph=True`` (the steps differentiate the maps w.r.t. x), or a Captum adapter.
    Default: gradient saliency of ``TRAINING_SCORE`` (the loss at the label, the authors' choice).

    ``surrogate_beta`` (None: off): take the steps' gradient through a softplus copy of the model
    (every ``nn.ReLU`` module -> ``nn.Softplus(beta)``, every ``nn.LeakyReLU(a)`` module -> ``a x +
    (1 - a) softplus_beta(x)``; functional activations cannot be swapped, see
    :mod:`r2et_fast.attacks._surrogate`), explained by ``rebind(explainer, copy)`` (Dombrowski et
    al. 2019). Only the objective's gradient uses it: the clean explanation, P@k at every iterate,
    the prediction checks and constraint, and the returned maps are always those of the real model
    and explainer. The copy is made at each call, so it follows later changes of the weights.

    A call ``attack(x, y)``, as torchattacks does, puts the model (and the explainer's model, when
    an Explainer or adapter explains another ``nn.Module``) in eval mode for the whole call and
    restores every submodule's own ``training`` flag afterwards, even on an exception; no buffer is
    changed (train-mode BatchNorm would mix the rows of a batch and update its running statistics;
    Dropout would make the explanation random). A model that is not an ``nn.Module`` (a plain function, maybe
    wrapping one) has no mode the attack can see: switch it yourself.

    Single-output models (B, 1), the logit of class 1, work throughout: the prediction is 1[z > 0]
    and the constraints' probabilities [1 - sigmoid(z), sigmoid(z)], exactly as for the 2-logit
    model [0, z].

    When the explanation's input gradient is exactly zero at the start point for some samples (the
    logit saliency of a piecewise-linear model), the call warns once with a
    :class:`~r2et_fast.attacks.VanishingGradientWarning`: those samples cannot move.
    """

    def __init__(self, model, *, k: int = 8, eps: float = 1.0, alpha: float = 1e-3, steps: int = 100,
                 norm: str = "linf", step_norm: str | None = None, random_start: bool = False,
                 constraint: str = "early_stop", explainer: object | None = None, lower=None,
                 upper=None, seed: int = 0, backend: str | None = None, distance: str = "prob_l2",
                 tolerance: float = 0.0, constraint_eta: float = 1.0,
                 surrogate_beta: float | None = None, device=None) -> None:
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
        self.explainer = explainer if explainer is not None else Saliency(model, score=TRAINING_SCORE)
        as_attribution(self.explainer, "explainer")  # refuse a non-attribution now, not mid-call
        self.surrogate_beta = check_surrogate_beta(surrogate_beta, model)
        if self.surrogate_beta is not None:
            rebind(self.explainer, model, "explainer")  # a plain callable cannot follow the copy
        self.lower, self.upper, self.backend = lower, upper, backend
        self.device = None if device is None else resolve_device(device, model)

    # -- to override -------------------------------------------------------------------------------
    def _prepare(self, clean: torch.Tensor):
        return None

    def _fused_objective(self, clean: torch.Tensor, state) -> FusedObjective | None:
        """The objective as the fused loop takes it, ``(kind, hi, lo, pairs, transform)`` (see
        ``ops.fused_attack.fused_mlp_attack``), or None: the generic loop runs."""
        return None

    def _loss(self, maps: torch.Tensor, clean: torch.Tensor, state) -> torch.Tensor:
        raise NotImplementedError

    # -- the pieces ----------------------------------------------------------------------------------
    def _explain(self, x: torch.Tensor, y: torch.Tensor, create_graph: bool) -> torch.Tensor:
        """The real explanation, flattened (B, n)."""
        return as_attribution(self.explainer, "explainer")(x, y, create_graph).flatten(1)

    def _surrogate_attribution(self) -> AttributionFn | None:
        """The explainer of a fresh softplus copy of the model, or None without ``surrogate_beta``."""
        if self.surrogate_beta is None:
            return None
        surrogate = softplus_surrogate(self.model, self.surrogate_beta)
        return as_attribution(rebind(self.explainer, surrogate, "explainer"), "explainer")

    def _step_maps(self, x_t: torch.Tensor, y: torch.Tensor, surrogate: AttributionFn | None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """(maps to differentiate, the real maps, detached) at ``x_t``, both flattened (B, n).
        Only x_t's gradient is taken: a fast path may hold the weights fixed."""
        with input_gradients_only():
            if surrogate is None:
                maps = self._explain(x_t, y, create_graph=True)
                return maps, maps.detach()
            maps = surrogate(x_t, y, True).flatten(1)
        return maps, self._explain(x_t.detach(), y, create_graph=False)

    @torch.no_grad()
    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        return predicted_class(check_model_output(self.model(x), x.shape[0]))

    def _violation(self, x: torch.Tensor, p0: torch.Tensor) -> torch.Tensor:
        """c(x) = max(0, d(p(x0), p(x)) - tolerance) per sample, differentiable w.r.t. x; ``p0``
        (B, max(C, 2)) are the clean probabilities (softmax of :func:`two_class` of the output)."""
        logits = two_class(self.model(x))
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
        """The box, the clean output, prediction and explanation of a batch (labels ``y`` int64).

        Returns ``(x0, lower, upper, clean maps, clean prediction, clean output (B, C))``."""
        x0 = x.detach()
        lower, upper = box_tensor(self.lower, x0, "lower"), box_tensor(self.upper, x0, "upper")
        if not values_trusted():  # once per call: the steps' projections trust the box
            for name, bound in (("lower", lower), ("upper", upper)):
                if bound is not None and bool(torch.isnan(bound).any()):
                    raise ValueError(f"{name} contains NaN")
            outside = (lower is not None and bool((x0 < lower).any())) or (
                upper is not None and bool((x0 > upper).any()))
            if outside:
                raise ValueError("x lies outside the box [lower, upper]")
        with torch.no_grad():
            out0 = check_model_output(self.model(x0), x0.shape[0])
        check_label_range(y, out0.shape[1])
        clean = self._explain(x0, y, create_graph=False)
        check_k(self.k, clean.shape[1])
        return x0, lower, upper, clean, predicted_class(out0), out0

    def _finish(self, x_t: torch.Tensor, y: torch.Tensor, clean: torch.Tensor, precision: torch.Tensor,
                pred0: torch.Tensor, steps_run: torch.Tensor) -> AttackResult:
        """Record P@k at the returned point, the manipulation epoch and the label check."""
        final = self._explain(x_t, y, False)
        precision[-1] = precision_at_k(clean, final, self.k, backend=self.backend)
        return self._result(x_t, clean, final, precision, self._predict(x_t) == pred0, steps_run)

    @staticmethod
    def _result(x_t: torch.Tensor, clean: torch.Tensor, final: torch.Tensor, precision: torch.Tensor,
                kept: torch.Tensor, steps_run: torch.Tensor) -> AttackResult:
        moved = precision < 1
        never = torch.full((x_t.shape[0],), precision.shape[0], device=x_t.device)
        epoch = torch.where(moved.any(dim=0), moved.float().argmax(dim=0), never).to(torch.int64)
        return AttackResult(x_adv=x_t, precision_at_k=precision, manipulation_epoch=epoch, label_kept=kept,
                            steps_run=steps_run, clean_maps=clean, adv_maps=final)

    def _fusable(self) -> bool:
        """Whether the fused loop runs exactly this attack: the class that states the objective
        (``_fused_objective``) also defines the pieces it replaces (or leaves them to this base)."""
        owner = _owner(type(self), "_fused_objective")
        replaced = ("_loss", "_prepare", "_step_maps", "_explain", "_predict", "_finish",
                    "_surrogate_attribution")
        return owner is not IterativeAttack and all(
            name not in vars(self) and _owner(type(self), name) in (owner, IterativeAttack)
            for name in replaced)

    @staticmethod
    def _view(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return mask.view(-1, *([1] * (like.dim() - 1)))

    def _guarded(self, x, y, run: AttackRun, name: str) -> AttackResult:
        """Check ``x``, turn ``y`` into labels, run ``run(x, labels) -> (result, vanished)`` with the
        models in eval mode, then warn once if any sample's gradient vanished (``vanished`` None:
        not probed, see :func:`probe_vanishing`)."""
        check_batch(x, "x")
        where = compute_device(self.device, self.model, x)
        x, y = to_with(x, y, where)
        labels = as_labels(y, x)
        with eval_mode(modules_of(self.model, attribution_model(self.explainer))):
            result, vanished = run(x, labels)
        warn_vanishing(vanished, name, stacklevel=3)  # -> _guarded -> __call__ -> the caller
        return result

    # -- the loop ------------------------------------------------------------------------------------
    def __call__(self, x: torch.Tensor, y) -> AttackResult:
        """Attack the batch ``x`` whose explanations are taken at labels ``y``: an integer tensor
        (B,) or 0-d of any integer dtype on the device of x, a Python int (every sample) or a
        list/tuple of B ints (see :func:`~r2et_fast._validation.as_labels`)."""
        return self._guarded(x, y, self._attack, type(self).__name__)

    def _attack(self, x: torch.Tensor, y: torch.Tensor) -> tuple[AttackResult, torch.Tensor | None]:
        """The steps; returns the result and the (B,) mask of samples whose gradient vanished."""
        x0, lower, upper, clean, pred0, out0 = self._setup(x, y)
        probe = probe_vanishing()  # asked before the steps' own trusted_values() below
        with trusted_values():
            result, vanished, finite = self._steps(x0, y, lower, upper, clean, pred0, out0, probe)
        raise_unless_finite(finite, type(self).__name__)
        return result, vanished

    def _steps(self, x0: torch.Tensor, y: torch.Tensor, lower: torch.Tensor | None,
               upper: torch.Tensor | None, clean: torch.Tensor, pred0: torch.Tensor, out0: torch.Tensor,
               probe: bool) -> tuple[AttackResult, torch.Tensor | None, torch.Tensor]:
        """The loop from the checked start of :meth:`_setup`: (result, vanished, the finite flag)."""
        surrogate = self._surrogate_attribution()
        state = self._prepare(clean)
        lagrangian = self.constraint in LAGRANGIAN
        if lagrangian:
            p0 = torch.softmax(two_class(out0), dim=1)
            lam = torch.tensor([0.5, 0.5], dtype=x0.dtype, device=x0.device).repeat(x0.shape[0], 1)

        x_t = x0.clone()
        if self.random_start and self.eps > 0:
            generator = torch.Generator().manual_seed(self.seed)
            x_t = random_start(x0, self.eps, self.norm, generator, lower, upper)
            if self.constraint == "early_stop":  # a start that changes the prediction is no start
                x_t = torch.where(self._view(self._predict(x_t) == pred0, x0), x_t, x0)

        fused = None if lagrangian or not self._fusable() else self._fused_objective(clean, state)
        if fused is not None:
            fast = fused_attack_steps(self, x0, y, x_t, lower, upper, clean, pred0, fused)
            if fast is not None:  # the kernel raises on non-finite maps and directions itself
                x_adv, fast_precision, fast_steps, final, kept, stuck = fast
                return (self._result(x_adv, clean, final, fast_precision, kept, fast_steps),
                        stuck if probe else None, torch.ones((), dtype=torch.bool, device=x0.device))

        batch = x0.shape[0]
        precision = torch.empty(self.steps + 1, batch, dtype=clean.dtype, device=x0.device)
        active = torch.ones(batch, dtype=torch.bool, device=x0.device)
        steps_run = torch.zeros(batch, dtype=torch.int64, device=x0.device)
        vanished = torch.zeros(batch, dtype=torch.bool, device=x0.device) if probe else None
        finite = all_finite(clean)
        for t in range(self.steps):
            x_t.requires_grad_(True)
            maps, real_maps = self._step_maps(x_t, y, surrogate)
            objective = self._loss(maps, clean, state).sum()
            # at the first step the graph is kept, should the vanishing check need to probe it
            grad = input_grad(objective, x_t, retain_graph=t == 0 and probe)
            if t == 0 and probe:
                vanished = vanishing_samples(maps, x_t, grad)
            if lagrangian:
                c = self._violation(x_t, p0)
                g_obj, g_con = grad.flatten(1), input_grad(c.sum(), x_t).flatten(1)
                lam = self._weights(lam, c.detach(), g_obj, g_con)
                grad = (lam[:, :1] * g_obj + lam[:, 1:] * g_con).view_as(x_t)
            x_t = x_t.detach()
            finite &= all_finite(real_maps, grad)
            precision[t] = precision_at_k(clean, real_maps, self.k, backend=self.backend)
            x_next = projected_step(x_t, grad, x0, self.alpha, self.eps, step_norm=self.step_norm,
                                    norm=self.norm, lower=lower, upper=upper, backend=self.backend)
            if self.constraint == "early_stop":
                active &= self._predict(x_next) == pred0
                x_next = torch.where(self._view(active, x0), x_next, x_t)
            steps_run += active
            x_t = x_next
        result = self._finish(x_t, y, clean, precision, pred0, steps_run)
        assert result.adv_maps is not None  # _finish always records them
        return result, vanished, finite & all_finite(result.adv_maps)


def _owner(cls: type, name: str) -> type:
    """The class of ``cls``'s MRO that defines attribute ``name``."""
    return next(c for c in cls.__mro__ if name in vars(c))
