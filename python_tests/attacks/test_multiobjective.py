"""Multi-objective ERAttack: the min-norm point is right, every accepted step lowers every gap,
Pareto-critical samples stop, and the budget is respected."""

from __future__ import annotations

import pytest
import torch

from r2et_fast.attacks import MultiObjectiveERAttack, min_norm_point


def test_min_norm_point_known_cases():
    g = torch.tensor([[[1.0, 0.0], [0.0, 1.0]],        # hull segment: min-norm (0.5, 0.5)
                      [[1.0, 1.0], [2.0, 2.0]],        # both on a ray: the nearer one
                      [[1.0, 0.0], [-1.0, 0.0]]], dtype=torch.float64)  # opposite: 0 (critical)
    got = min_norm_point(g, iters=200)
    want = torch.tensor([[0.5, 0.5], [1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_min_norm_point_is_optimal_against_random_mixtures():
    g = torch.randn(4, 5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    v = min_norm_point(g, iters=500)
    w = torch.rand(4, 1000, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    w = w / w.sum(dim=2, keepdim=True)
    mixes = (w[:, :, :, None] * g[:, None]).sum(dim=2).norm(dim=2)
    assert bool((v.norm(dim=1) <= mixes.min(dim=1).values + 1e-6).all())


@pytest.fixture(scope="module")
def smooth():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Softplus(beta=3),
                                torch.nn.Linear(16, 2)).double()
    x = torch.rand(16, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    return model, x, model(x).argmax(1)


def test_attack_lowers_every_gap_within_budget(backend, smooth):
    model, x, y = smooth
    attack = MultiObjectiveERAttack(model, k=3, eps=0.3, alpha=0.1, steps=6, norm="linf", lower=0.0,
                                    upper=1.0, backend=backend)
    result = attack(x, y)
    assert bool(((result.x_adv - x).abs().amax(dim=1) <= 0.3 + 1e-9).all())
    assert bool(result.label_kept.all())
    from r2et_fast import ops

    _, hi, lo = ops.topk_pair_gap(result.clean_maps, 3, "anchor", return_indices=True)
    before = result.clean_maps.gather(1, hi) - result.clean_maps.gather(1, lo)
    after = result.adv_maps.gather(1, hi) - result.adv_maps.gather(1, lo)
    moved = result.steps_run > 0
    assert bool(moved.any())
    assert bool((after[moved] <= before[moved] + 1e-12).all())  # Armijo: no gap ever rises


def test_bad_pairs(smooth):
    model, _, _ = smooth
    with pytest.raises(ValueError, match="explicit pairs"):
        MultiObjectiveERAttack(model, pairs="all")
