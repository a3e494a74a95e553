"""The bound formulas, and that they bound (and, for a linear g, attain) the real deviations."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from r2et_fast.bounds import (
    abs_sum_p,
    attribution,
    certified_topk_radius,
    certify,
    cosine_bound,
    generalization_factor,
    l2_bound,
    linf_bound,
    lp_bound,
    top_singular,
)

from . import Quadratic, SoftplusMLP

T = torch.tensor
F64 = torch.float64


def test_euclidean_formulas():
    xi = T([0.0, 2.0, 3.0], dtype=F64)
    torch.testing.assert_close(l2_bound(xi, 0.5), T([0.0, 1.0, 1.5], dtype=F64))
    torch.testing.assert_close(lp_bound(xi, 0.5, 4, 16), l2_bound(xi, 0.5) * 16 ** 0.25)
    torch.testing.assert_close(lp_bound(xi, 0.5, math.inf, 16), l2_bound(xi, 0.5) * 4)
    torch.testing.assert_close(lp_bound(xi, 0.5, 2, 16), l2_bound(xi, 0.5))
    torch.testing.assert_close(linf_bound(T([4.0, 9.0], dtype=F64), 0.1), T([0.2, 0.3], dtype=F64))
    torch.testing.assert_close(l2_bound(xi, T([1.0, 2.0, 3.0], dtype=F64)), T([0.0, 4.0, 9.0], dtype=F64))


def test_cosine_bound_formula_and_applicability():
    t_e = T([0.0, 0.6, 1.0, 2.0, 0.1], dtype=F64)
    g = T([1.0, 1.0, 1.0, 1.0, 0.0], dtype=F64)
    cb = cosine_bound(t_e, g)
    assert cb.applicable.tolist() == [True, True, True, False, False]
    torch.testing.assert_close(cb.distance[:3], T([0.0, 0.2, 1.0], dtype=F64))  # 1 - sqrt(1 - .36) = .2
    torch.testing.assert_close(cb.angle_rad[:3], torch.asin(T([0.0, 0.6, 1.0], dtype=F64)))
    torch.testing.assert_close(cb.angle_deg[:3], T([0.0, math.degrees(math.asin(0.6)), 90.0], dtype=F64))
    # the angle form is the same bound: 1 - cos(angle) = distance
    torch.testing.assert_close(1 - torch.cos(cb.angle_rad), cb.distance)
    # not applicable: the trivial bound (any direction)
    assert cb.distance[3:].tolist() == [2.0, 2.0] and cb.angle_deg[3:].tolist() == [180.0, 180.0]


def test_cosine_bound_is_accurate_for_small_ratios():
    # 1 - sqrt(1 - r^2) ~ r^2 / 2 = 5e-11 at r = 1e-5: the naive form gives 0 in float32 (and
    # loses digits in float64); the bound is computed without that cancellation
    for dtype in (torch.float32, F64):
        cb = cosine_bound(T([1e-5], dtype=dtype), T([1.0], dtype=dtype))
        assert float(cb.distance) == pytest.approx(0.5e-10, rel=1e-6)


def test_generalization_factor():
    xi = T([1.0, 1.0, 0.0, 0.0], dtype=F64)
    dev = T([0.05, 0.2, 0.0, 0.1], dtype=F64)
    c = generalization_factor(dev, xi, 0.1)
    assert c.tolist() == [1.0, pytest.approx(2.0), 1.0, math.inf]


def test_topk_radius_by_hand():
    g = T([[3.0, -2.0, 1.0, 0.5], [1.0, -1.0, 0.2, 0.1], [1.0, 0.5, 0.2, 0.1]], dtype=F64)
    rate = T([1.0, 1.0, 0.0], dtype=F64)
    r = certified_topk_radius(g, 2, rate)
    # |g| sorted descending: radius = (I_(2) - I_(3)) / (sqrt(2) rate)
    torch.testing.assert_close(r[:2], T([1.0, 0.8], dtype=F64) / math.sqrt(2))
    assert r[2].item() == math.inf  # no first-order change at all
    # k = 1: row 1 has a tie at the boundary (|1| = |-1|), which no radius certifies
    torch.testing.assert_close(certified_topk_radius(g, 1, rate)[:2], T([1 / math.sqrt(2), 0.0], dtype=F64))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: l2_bound(T([-1.0]), 0.1), "xi_max"),
        (lambda: l2_bound(T([[1.0]]), 0.1), "xi_max"),
        (lambda: l2_bound(T([1.0]), 0.0), "eps"),
        (lambda: l2_bound(T([1.0]), -1.0), "eps"),
        (lambda: l2_bound(T([1.0]), float("nan")), "eps"),
        (lambda: lp_bound(T([1.0]), 0.1, 1.5, 4), "p"),
        (lambda: lp_bound(T([1.0]), 0.1, 3, 0), "n_features"),
        (lambda: linf_bound(T([float("nan")]), 0.1), "abs_sum_p"),
        (lambda: cosine_bound(T([1.0]), T([1.0, 2.0])), "same shape"),
        (lambda: certified_topk_radius(T([[1.0, 2.0]]), 2, T([1.0])), "k"),
        (lambda: certified_topk_radius(T([[1.0, 2.0]]), 0, T([1.0])), "k"),
        (lambda: certified_topk_radius(T([1.0, 2.0]), 1, T([1.0])), "attribution"),
    ],
)
def test_plain_functions_reject_bad_values(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call", [lambda: l2_bound([1.0], 0.1), lambda: l2_bound(T([1.0]), "a"),
                                  lambda: certified_topk_radius(T([[1.0, 2.0]]), 1.0, T([1.0]))])
def test_plain_functions_reject_bad_types(call):
    with pytest.raises(TypeError):
        call()


# --- a quadratic score: the saliency g = A x + b is linear, so the l2 bound is attained ------------

@pytest.fixture(scope="module")
def quad():
    model = Quadratic(d=6)
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(3), dtype=F64)
    return model, x, torch.zeros(5, dtype=torch.long)


@pytest.mark.parametrize("eps", [1e-3, 0.1, 1.0])
def test_l2_bound_is_attained_for_a_quadratic_score(quad, eps):
    model, x, target = quad
    cert = certify(model, x, eps, "l2", "saliency", k=2, target=target)
    torch.testing.assert_close(cert.xi_max, torch.linalg.svdvals(model.a).max().expand(5), rtol=1e-10, atol=0)
    g0 = attribution(model, x, "saliency", target)
    for sign in (1.0, -1.0):
        dev = (attribution(model, x + sign * eps * cert.v_max, "saliency", target) - g0).norm(dim=1)
        torch.testing.assert_close(dev, cert.t_e, rtol=1e-9, atol=0)  # equality at +-eps v_max
    torch.testing.assert_close(cert.c, torch.ones(5, dtype=F64), rtol=1e-9, atol=0)
    # and no other direction of the ball does better; the cosine bound holds as well
    delta = torch.randn(100, 5, 6, generator=torch.Generator().manual_seed(4), dtype=F64)
    delta = eps * delta / delta.norm(dim=2, keepdim=True)
    for d in delta:
        g1 = attribution(model, x + d, "saliency", target)
        assert bool(((g1 - g0).norm(dim=1) <= cert.t_e * (1 + 1e-12)).all())
        cos = torch.nn.functional.cosine_similarity(g1, g0, dim=1)
        ok = ~cert.cosine_applicable | (1 - cos <= cert.t_c + 1e-12)
        assert bool(ok.all())


def test_linf_bound_dominates_every_box_corner_for_a_quadratic_score(quad):
    model, x, target = quad
    eps = 0.3
    cert = certify(model, x, eps, "linf", "saliency", k=2, target=target)
    p = model.a @ model.a
    torch.testing.assert_close(cert.abs_sum_p, p.abs().sum().expand(5))
    g0 = attribution(model, x, "saliency", target)
    corners = T(list(itertools.product([-eps, eps], repeat=6)), dtype=F64)
    worst = torch.stack([(attribution(model, x[i] + corners, "saliency", target[:1].expand(64)) - g0[i])
                         .norm(dim=1).max() for i in range(5)])
    assert bool((worst <= cert.t_e * (1 + 1e-12)).all())
    # the l_p relaxation is valid too (and here looser or equal)
    assert bool((worst <= lp_bound(cert.xi_max, eps, math.inf, 6) * (1 + 1e-12)).all())


def test_topk_certificate_holds_for_a_linear_attribution(quad):
    model, x, target = quad
    cert = certify(model, x, 1e-3, "l2", "saliency", k=2, target=target)
    g0 = attribution(model, x, "saliency", target)
    top0 = g0.abs().topk(2, dim=1).indices.sort(dim=1).values
    gen = torch.Generator().manual_seed(5)
    for _ in range(50):  # random points strictly inside each sample's certified radius
        d = torch.randn(5, 6, generator=gen, dtype=F64)
        d = 0.999 * cert.topk_radius[:, None].clamp(max=10.0) * d / d.norm(dim=1, keepdim=True)
        top1 = attribution(model, x + d, "saliency", target).abs().topk(2, dim=1).indices.sort(dim=1).values
        assert torch.equal(top1, top0)


# --- a smooth MLP: for tiny balls the first-order bounds hold (up to O(eps) relative) --------------

@pytest.mark.parametrize(("method", "ekw"), [("saliency", {}), ("gradxinput", {}), ("ig", {"n_steps": 6})])
def test_bounds_hold_on_tiny_balls(method, ekw):
    model = SoftplusMLP(d=6, hidden=10, classes=3, seed=1)
    x = torch.rand(4, 6, generator=torch.Generator().manual_seed(6), dtype=F64)
    eps = 1e-4
    res = top_singular(model, x, method, explainer_kwargs=ekw)
    target = res.target
    g0 = res.attribution
    t_e = l2_bound(res.xi_max, eps)
    gen = torch.Generator().manual_seed(7)
    d = torch.randn(64, 4, 6, generator=gen, dtype=F64)
    d = torch.cat([eps * d / d.norm(dim=2, keepdim=True), eps * torch.stack([res.v_max, -res.v_max])])
    devs = torch.stack([(attribution(model, x + di, method, target, explainer_kwargs=ekw) - g0).norm(dim=1)
                        for di in d])
    assert bool((devs <= t_e * (1 + 1e-3)).all())
    torch.testing.assert_close(devs[-2:].amax(dim=0), t_e, rtol=1e-3, atol=0)  # attained at +-eps v_max
    # l_inf: every corner of the box stays under eps sqrt(sum |P_ij|)
    t_inf = linf_bound(abs_sum_p(model, x, method, target, explainer_kwargs=ekw), eps)
    corners = T(list(itertools.product([-eps, eps], repeat=6)), dtype=F64)
    for i in range(4):
        g1 = attribution(model, x[i] + corners, method, target[i : i + 1].expand(64), explainer_kwargs=ekw)
        assert float((g1 - g0[i]).norm(dim=1).max()) <= float(t_inf[i]) * (1 + 1e-3)
