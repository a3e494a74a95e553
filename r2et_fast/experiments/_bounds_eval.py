"""One setting of the bound experiment (docs/spec.md §7): certify a batch for one (norm, radius,
attribution) and, with attacks, compare the attacked deviations with the bounds."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from r2et_fast.bounds import certify, validate_bounds


@dataclass(frozen=True)
class AttackBudget:
    """The attacks of ``validate_bounds``: ``restarts`` random starts of PGD-``steps`` (and, under
    l_inf, of the ``topk_steps``-step top-k attack); 5 starts by default, the strong attack of the
    bound report."""

    restarts: int = 5
    steps: int = 20
    topk_steps: int = 200
    keep_label: bool = False
    seed: int = 0


def evaluate(model: nn.Module, x: torch.Tensor, eps: float, norm: str, method: str, k: int, *,
             validate: bool = True, budget: AttackBudget = AttackBudget(), lower: Any = None,
             upper: Any = None, explainer_kwargs: dict | None = None) -> dict:
    """Certificate (and, with ``validate``, the attacks) of one (norm, eps, method) on a batch.

    Returns a JSON-ready dict: ``summary`` (the table row), ``certificate`` (per-sample bounds) and,
    with ``validate``, the per-sample attacked values (``hat_t_e``, ``hat_t_c``, their values per
    restart ``hat_t_e_restarts`` / ``hat_t_c_restarts``, the float64 ``t_c``,
    ``hat_t_e_linear``, ``topk_changed``), plus ``seconds``.
    """
    began = time.perf_counter()
    if validate:
        report = validate_bounds(model, x, eps, norm, method, k, restarts=budget.restarts, steps=budget.steps,
                                 topk_steps=budget.topk_steps, lower=lower, upper=upper,
                                 keep_label=budget.keep_label, explainer_kwargs=explainer_kwargs,
                                 seed=budget.seed)
        out = report.to_dict()
    else:
        cert = certify(model, x, eps, norm, method, k, explainer_kwargs=explainer_kwargs, seed=budget.seed)
        out = {"summary": cert.summary(), "certificate": cert.to_dict()}
    out["seconds"] = time.perf_counter() - began
    return out


def gaps(record: dict) -> list[float]:
    """T_e - T^_e per sample of a validated record (< 0: the attack went beyond the bound)."""
    return [te - he for te, he in zip(record["certificate"]["t_e"], record["hat_t_e"])]


def select_runs(runs: Sequence[dict], **match: Any) -> list[dict]:
    """The run records whose fields equal ``match``."""
    return [r for r in runs if all(r[k] == v for k, v in match.items())]
