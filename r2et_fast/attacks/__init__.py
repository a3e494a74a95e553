"""Attacks on explanations (SPEC §5): batched, with ``eps``, ``alpha``, ``steps``, ``norm`` and
``random_start`` as in the usual PGD-style APIs. Each returns an :class:`AttackResult`."""

from r2et_fast.attacks._base import AttackResult
from r2et_fast.attacks._erattack import CONSTRAINTS, ERAttack

__all__ = ["AttackResult", "ERAttack", "CONSTRAINTS"]
