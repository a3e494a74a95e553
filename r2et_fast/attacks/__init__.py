"""Attacks on explanations (docs/spec.md §5): batched, with ``eps``, ``alpha``, ``steps``, ``norm`` and
``random_start`` as in the usual PGD-style APIs. Each returns an :class:`AttackResult`."""

from r2et_fast.attacks._base import AttackResult
from r2et_fast.attacks._erattack import ERAttack
from r2et_fast.attacks._iterative import CONSTRAINTS, IterativeAttack
from r2et_fast.attacks._multiobjective import MultiObjectiveERAttack, min_norm_point
from r2et_fast.attacks._others import AttributionPGD, MSEAttack, TopKAttack

ATTACKS = {"erattack": ERAttack, "mse": MSEAttack, "topk": TopKAttack, "pgd": AttributionPGD,
           "erattack_mo": MultiObjectiveERAttack}

__all__ = ["AttackResult", "IterativeAttack", "ERAttack", "MSEAttack", "TopKAttack", "AttributionPGD",
           "MultiObjectiveERAttack", "min_norm_point", "CONSTRAINTS", "ATTACKS"]
