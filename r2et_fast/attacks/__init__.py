"""Attacks on explanations (docs/spec.md §5): batched, with ``eps``, ``alpha``, ``steps``, ``norm`` and
``random_start`` as in the usual PGD-style APIs. Each returns an :class:`AttackResult`.

Every attack takes any differentiable attribution as ``explainer=``, labels of any integer kind,
runs the model in eval mode (its modes restored, no buffer changed), handles single-output models,
warns with :class:`VanishingGradientWarning` when its gradient vanishes (a piecewise-linear model's
logit saliency) and offers ``surrogate_beta=`` (a softplus copy of the model for the gradient)."""

from r2et_fast.attacks._base import AttackResult
from r2et_fast.attacks._erattack import ERAttack
from r2et_fast.attacks._iterative import CONSTRAINTS, IterativeAttack
from r2et_fast.attacks._multiobjective import MultiObjectiveERAttack, min_norm_point
from r2et_fast.attacks._others import AttributionPGD, MSEAttack, TopKAttack
from r2et_fast.attacks._surrogate import SoftLeakyReLU, softplus_surrogate
from r2et_fast.attacks._vanishing import VanishingGradientWarning

ATTACKS = {"erattack": ERAttack, "mse": MSEAttack, "topk": TopKAttack, "pgd": AttributionPGD,
           "erattack_mo": MultiObjectiveERAttack}

__all__ = ["AttackResult", "IterativeAttack", "ERAttack", "MSEAttack", "TopKAttack", "AttributionPGD",
           "MultiObjectiveERAttack", "min_norm_point", "CONSTRAINTS", "ATTACKS",
           "VanishingGradientWarning", "softplus_surrogate", "SoftLeakyReLU"]
