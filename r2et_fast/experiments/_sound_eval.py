"""The sound certificate of a batch next to attacks and the first-order certificate (docs/spec.md §7).

For a model and test samples: the sound top-k radius and certified P@k curve
(:func:`r2et_fast.bounds.sound_certify`), the attacked P@k at the same radii (ERAttack, the top-k
attack and PGD on attributions, random starts, no label constraint: the certificate does not need
one), the attacks run inside each sample's sound radius (they must never change T_k) and at its
first-order radius (which they may), and the first-order radii of :func:`r2et_fast.bounds.certify`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from r2et_fast.attacks import AttributionPGD, ERAttack, TopKAttack, VanishingGradientWarning
from r2et_fast.bounds import VanishingJacobianWarning, certify, sound_certify
from r2et_fast.explain import GradientXInput, Saliency

ATTACKS = {"erattack": ERAttack, "topk": TopKAttack, "pgd": AttributionPGD}


@dataclass(frozen=True)
class SoundBudget:
    """The attacks' budget: random starts per attack, steps (alpha = 2.5 eps / steps), seed."""

    restarts: int = 3
    steps: int = 20
    seed: int = 0


DEFAULT_BUDGET = SoundBudget()


def _piecewise_linear(model: nn.Module) -> bool:
    return any(isinstance(m, (nn.ReLU, nn.LeakyReLU)) for m in model.modules())


def worst_precision(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str, k: int,
                    score: str, method: str, budget: SoundBudget, lower: Any = None, upper: Any = None
                    ) -> torch.Tensor:
    """(B,) the lowest P@k that any restart of any attack reached at any of its iterates."""
    cls = Saliency if method == "saliency" else GradientXInput
    explainer = cls(model, score=score, abs=True)
    # a piecewise-linear model's logit saliency has no input gradient: step through a softplus copy
    beta = 10.0 if score == "logit" and _piecewise_linear(model) else None
    rows, labels = x.repeat_interleave(budget.restarts, dim=0), y.repeat_interleave(budget.restarts)
    worst = torch.ones(x.shape[0], dtype=torch.float64)
    for i, attack_cls in enumerate(ATTACKS.values()):
        attack = attack_cls(model, k=k, eps=eps, alpha=2.5 * eps / budget.steps, steps=budget.steps,
                            norm=norm, step_norm=norm, random_start=True, constraint="none",
                            explainer=explainer, lower=lower, upper=upper, seed=budget.seed + i,
                            surrogate_beta=beta)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VanishingGradientWarning)
            res = attack(rows, labels)
        pak = res.precision_at_k.amin(dim=0).view(x.shape[0], budget.restarts).amin(dim=1)
        worst = torch.minimum(worst, pak.double().cpu())
    return worst


def _per_sample_breaks(model, x, y, radii: torch.Tensor, norm, k, score, method, budget, lower, upper
                       ) -> tuple[int, int, int]:
    """(samples attacked, samples whose T_k changed, attack trials) at each sample's own radius."""
    attacked = broken = 0
    for b in range(x.shape[0]):
        r = float(radii[b])
        if not (0 < r < math.inf):
            continue
        worst = worst_precision(model, x[b:b + 1], y[b:b + 1], r, norm, k, score, method, budget, lower,
                                upper)
        attacked += 1
        broken += int(worst[0] < 1)
    return attacked, broken, attacked * budget.restarts * len(ATTACKS)


def _median(t: torch.Tensor) -> float:
    return float(t.double().median()) if t.numel() else math.nan


def sound_evaluate(model: nn.Module, x: torch.Tensor, eps: Sequence[float], norm: str, k: int, *,
                   score: str = "logit", method: str = "saliency", budget: SoundBudget = DEFAULT_BUDGET,
                   lower: Any = None, upper: Any = None, eps_max: float = 1.0, iterations: int = 30,
                   attack: bool = True) -> dict[str, Any]:
    """JSON-ready record: ``sound`` (the :class:`SoundCertificate`), ``first_order`` (radii and
    how often attacks broke them), ``attacked`` (P@k per sample and curve) and ``summary``."""
    cert = sound_certify(model, x, k, eps=eps, norm=norm, score=score, method=method, eps_max=eps_max,
                         iterations=iterations)
    y = cert.target
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VanishingJacobianWarning)
        first = certify(model, x, max(max(eps), 1e-3), norm, method, k, y, score=score)
    if any(issubclass(w.category, VanishingJacobianWarning) for w in caught):
        notes.append("first-order: xi_max = 0 on some samples (piecewise-linear model), so their "
                     "first-order radius is infinite, which is not robustness")
    fo_radius = first.topk_radius.double().cpu()
    record: dict[str, Any] = {"sound": cert.to_dict(),
                              "first_order": {"kind": "first_order", "radius": fo_radius.tolist()},
                              "notes": notes}
    summary: dict[str, Any] = {
        "n_samples": int(x.shape[0]), "k": k, "norm": norm, "score": score, "method": method,
        "median_sound_radius": _median(cert.radius), "median_first_order_radius": _median(fo_radius),
        "sound_certified_pak": [float(v) for v in cert.curve],
        "first_order_certified_share": [float((e < fo_radius).double().mean()) for e in cert.eps],
        "sound_topk_certified_share": [float((e <= cert.radius).double().mean()) for e in cert.eps],
        "eps": list(cert.eps)}
    if attack:
        attacked = torch.stack([worst_precision(model, x, y, e, norm, k, score, method, budget, lower, upper)
                                if e > 0 else torch.ones(x.shape[0], dtype=torch.float64) for e in cert.eps],
                               dim=1)
        n_in, broke_in, trials_in = _per_sample_breaks(model, x, y, cert.radius, norm, k, score, method,
                                                       budget, lower, upper)
        n_fo, broke_fo, trials_fo = _per_sample_breaks(model, x, y, fo_radius, norm, k, score, method,
                                                       budget, lower, upper)
        record["attacked"] = {"precision_at_k": attacked.tolist(), "curve": attacked.mean(dim=0).tolist(),
                              "budget": {"restarts": budget.restarts, "steps": budget.steps,
                                         "seed": budget.seed, "attacks": list(ATTACKS)}}
        record["first_order"].update(attacked=n_fo, broken=broke_fo, trials=trials_fo)
        summary.update(attacked_pak=[float(v) for v in attacked.mean(dim=0)],
                       sound_attacked=n_in, sound_broken=broke_in, sound_trials=trials_in,
                       first_order_attacked=n_fo, first_order_broken=broke_fo, first_order_trials=trials_fo,
                       bound_above_attack=int((cert.precision_at_k > attacked + 1e-12).sum()))
    record["summary"] = summary
    return record
