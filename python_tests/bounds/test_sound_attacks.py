"""No attack breaks the sound certificate (docs/spec.md §7): every certified sample is attacked inside
its sound radius by ERAttack, the top-k attack, PGD on attributions (random starts, constraint off,
so the whole ball is open to them) and random search, and T_k must never change; at fixed radii the
certified P@k lower bound must never exceed the attacked P@k.

The default run makes >= 10,000 gradient-attack trials (sample x restart x attack) plus random
search; ``-m slow`` runs a larger version.
"""

from __future__ import annotations

import pytest
import torch

from r2et_fast.attacks import AttributionPGD, ERAttack, TopKAttack, VanishingGradientWarning
from r2et_fast.bounds import sound_certify
from r2et_fast.ops import precision_at_k

from .sound_cases import F64, ball_points, cnn, exact_maps, mlp

ATTACKS = (ERAttack, TopKAttack, AttributionPGD)
# (kind, activation, score): the loss score for piecewise-linear nets (their logit saliency is
# locally constant, no gradient for the attacks to follow), the logit for the smooth ones.
CONFIGS = [("mlp", "relu", "loss"), ("mlp", "leaky_relu", "loss"), ("mlp", "softplus", "logit"),
           ("mlp", "tanh", "logit"), ("mlp", "sigmoid", "loss"), ("cnn", "relu", "loss"),
           ("cnn", "softplus", "logit"), ("cnn", "tanh", "loss")]


def _setup(kind: str, act: str, n: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    if kind == "mlp":
        return mlp(act, d=6, widths=(10,), seed=seed), torch.randn(n, 6, generator=gen, dtype=F64), 2
    return cnn(act, seed=seed), torch.rand(n, 1, 8, 8, generator=gen, dtype=F64), 5


def _attacked_precision(model, x, y, eps: float, norm: str, score: str, k: int, restarts: int, steps: int,
                        seed: int) -> tuple[torch.Tensor, int]:
    """Per sample the lowest P@k any restart of any attack reached at any iterate, and the trials."""
    from .sound_cases import explainer

    rows, labels = x.repeat_interleave(restarts, dim=0), y.repeat_interleave(restarts)
    worst = torch.ones(x.shape[0], dtype=F64)
    for i, cls in enumerate(ATTACKS):
        attack = cls(model, k=k, eps=eps, alpha=2.5 * eps / steps, steps=steps, norm=norm, step_norm=norm,
                     random_start=True, constraint="none", explainer=explainer(model, score), seed=seed + i)
        res = attack(rows, labels)
        dist = (res.x_adv - rows).flatten(1)
        size = dist.abs().amax(dim=1) if norm == "linf" else dist.norm(dim=1)
        # in the ball up to the rounding of x' - x (an ulp of x, which the bounds' margins cover)
        assert bool((size <= eps * (1 + 1e-9) + 1e-14).all()), (cls.__name__, norm, float(size.max() / eps))
        pak = res.precision_at_k.amin(dim=0).view(x.shape[0], restarts).amin(dim=1)
        worst = torch.minimum(worst, pak.to(F64))
    return worst, len(ATTACKS) * rows.shape[0]


def _random_search(model, x, y, eps: torch.Tensor, norm: str, score: str, k: int, points: int,
                   seed: int) -> torch.Tensor:
    pts = ball_points(x, eps, norm, points, torch.Generator().manual_seed(seed))
    clean = exact_maps(model, x, y, score).repeat_interleave(points, dim=0)
    adv = exact_maps(model, pts, y.repeat_interleave(points), score)
    return precision_at_k(clean, adv, k).to(F64).view(x.shape[0], points).amin(dim=1)


def run_campaign(n_samples: int, restarts: int, steps: int, points: int, seeds: tuple[int, ...]) -> dict:
    trials = breaks = certified = random_points = broken_outside = 0
    checked_curves = 0
    for seed in seeds:
        for kind, act, score in CONFIGS:
            for norm in ("linf", "l2"):
                model, x, k = _setup(kind, act, n_samples, seed)
                grid = (0.01, 0.05)
                cert = sound_certify(model, x, k, eps=grid, norm=norm, score=score, eps_max=2.0)
                y = cert.target
                # inside the sound radius: T_k must survive everything
                for b in torch.nonzero(cert.radius > 0).flatten().tolist():
                    r = float(cert.radius[b])
                    worst, n = _attacked_precision(model, x[b:b + 1], y[b:b + 1], r, norm, score, k,
                                                   restarts, steps, seed + b)
                    rs = _random_search(model, x[b:b + 1], y[b:b + 1], cert.radius[b:b + 1], norm, score,
                                        k, points, seed + b)
                    breaks += int((worst < 1).sum()) + int((rs < 1).sum())
                    trials += n
                    random_points += points
                    certified += 1
                    # the same attacks far outside the radius do break T_k: they are not toothless
                    worst, _ = _attacked_precision(model, x[b:b + 1], y[b:b + 1], 30 * r, norm, score, k, 2,
                                                   steps, seed + b)
                    broken_outside += int((worst < 1).sum())
                # at fixed radii: certified P@k <= attacked P@k, for every sample
                for j, eps in enumerate(grid):
                    worst, _ = _attacked_precision(model, x, y, eps, norm, score, k, 2, steps, seed)
                    radii = torch.full((x.shape[0],), eps, dtype=F64)
                    rs = _random_search(model, x, y, radii, norm, score, k, points, seed)
                    bound = cert.precision_at_k[:, j]
                    assert bool((bound <= torch.minimum(worst, rs) + 1e-12).all()), (kind, act, norm, eps)
                    checked_curves += x.shape[0]
    return {"trials": trials, "breaks": breaks, "certified": certified, "random_points": random_points,
            "curve_checks": checked_curves, "broken_outside": broken_outside}


@pytest.mark.filterwarnings("ignore::r2et_fast.attacks.VanishingGradientWarning")
def test_no_attack_breaks_a_sound_certificate():
    out = run_campaign(n_samples=12, restarts=24, steps=12, points=64, seeds=(0,))
    print(out)  # the counts, with -s
    assert out["breaks"] == 0, out
    assert out["trials"] >= 10_000, out
    assert out["broken_outside"] >= out["certified"] // 4, out
    assert VanishingGradientWarning  # the piecewise-linear models may warn; that is not a break


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::r2et_fast.attacks.VanishingGradientWarning")
def test_no_attack_breaks_a_sound_certificate_deep():
    out = run_campaign(n_samples=24, restarts=32, steps=20, points=512, seeds=(1, 2, 3))
    print(out)  # the counts, with -s
    assert out["breaks"] == 0, out
    assert out["trials"] >= 100_000, out
    assert out["broken_outside"] > 0, out
