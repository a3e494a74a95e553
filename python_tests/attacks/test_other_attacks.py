"""MSE, top-k and attribution-PGD attacks: each moves its objective the right way, never leaves
its ball or box, and PGD's restarts keep the farthest point per sample."""

from __future__ import annotations

import pytest
import torch

from r2et_fast.attacks import ATTACKS, AttributionPGD, MSEAttack, TopKAttack
from r2et_fast.explain import Saliency


@pytest.fixture(scope="module")
def smooth():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 24), torch.nn.Softplus(beta=3),
                                torch.nn.Linear(24, 2)).double()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(32, 10, generator=g, dtype=torch.float64)
    y = model(x).argmax(1)
    return model, x, y


def inside(result, x, eps, norm, lower=0.0, upper=1.0):
    d = (result.x_adv - x).flatten(1)
    size = d.norm(dim=1) if norm == "l2" else d.abs().amax(dim=1)
    in_box = (result.x_adv >= lower).all() and (result.x_adv <= upper).all()
    return bool((size <= eps + 1e-9).all() and in_box)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_mse_attack_moves_explanations(backend, smooth, norm):
    model, x, y = smooth
    result = MSEAttack(model, k=3, eps=0.2, alpha=0.02, steps=15, norm=norm, lower=0.0, upper=1.0,
                       backend=backend)(x, y)
    assert inside(result, x, 0.2, norm)
    assert bool(result.label_kept.all())
    moved = (result.adv_maps - result.clean_maps).square().sum(dim=1)
    assert float(moved.mean()) > 0


def test_topk_attack_lowers_the_top_k_mass(backend, smooth):
    model, x, y = smooth
    attack = TopKAttack(model, k=3, eps=0.1, alpha=0.01, steps=20, lower=0.0, upper=1.0, backend=backend)
    result = attack(x, y)
    assert inside(result, x, 0.1, "linf")
    top = result.clean_maps.topk(3, dim=1).indices
    before = result.clean_maps.gather(1, top).sum(dim=1)
    after = result.adv_maps.gather(1, top).sum(dim=1)
    assert float((after - before).mean()) < 0


def test_pgd_restarts_keep_the_farthest(backend, smooth):
    model, x, y = smooth
    explainer = Saliency(model, score="logit", abs=False)
    kw = dict(k=3, eps=0.3, alpha=0.05, steps=5, norm="l2", explainer=explainer, backend=backend)
    single = [AttributionPGD(model, seed=s, **kw)(x, y) for s in (0, 1, 2)]
    best = AttributionPGD(model, seed=0, restarts=3, **kw)(x, y)
    dists = torch.stack([(r.adv_maps - r.clean_maps).norm(dim=1) for r in single])
    torch.testing.assert_close((best.adv_maps - best.clean_maps).norm(dim=1), dists.max(dim=0).values)
    assert inside(best, x, 0.3, "l2", lower=-float("inf"), upper=float("inf"))


def test_registry_and_bad_arguments(smooth):
    model, x, y = smooth
    assert set(ATTACKS) == {"erattack", "mse", "topk", "pgd", "erattack_mo"}
    with pytest.raises(ValueError, match="restarts must be positive"):
        AttributionPGD(model, restarts=0)
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        MSEAttack(model, alpha=-0.1)
    with pytest.raises(ValueError, match="k must satisfy"):
        TopKAttack(model, k=10)(x, y)
