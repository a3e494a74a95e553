"""Sound saliency bounds (docs/spec.md §7): exact on models whose answer is known by hand, never
crossed by a sampled or attacked point of the ball, and clear errors for bad input."""

from __future__ import annotations

import math
import os

import pytest
import torch
from torch import nn

import r2et_fast
from r2et_fast.bounds import (
    SoundCertificate,
    certify,
    sound_certify,
    sound_precision_at_k,
    sound_saliency_bounds,
    sound_topk_radius,
)
from r2et_fast.models import MnistCNN, TabularMLP

from .sound_cases import ACTS, F64, ball_points, cnn, coordinate_pgd, exact_maps, mlp

DEEP = int(os.environ.get("R2ET_FAST_FUZZ_EXAMPLES", "0"))


def _x(b: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


# -- exact cases ---------------------------------------------------------------------------------

def test_linear_model_collapses_to_its_constant_saliency():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(6, 3))).double().eval()
    x = _x(4, 6)
    for norm in ("linf", "l2"):
        b = sound_saliency_bounds(model, x, 0.7, norm=norm, target=1)
        exact = model[1][0].weight[1].detach().abs().expand(4, -1)
        torch.testing.assert_close(b.lower, exact, rtol=1e-8, atol=0)
        torch.testing.assert_close(b.upper, exact, rtol=1e-8, atol=0)
        assert bool((b.lower <= exact).all() and (exact <= b.upper).all())
        # constant saliency: T_k never changes, the radius is the bracket's top
        cert = sound_certify(model, x, 2, eps=(0.1, 10.0), norm=norm, target=1, eps_max=5.0)
        assert torch.equal(cert.radius, torch.full((4,), 5.0, dtype=F64)) and bool(cert.radius_at_top.all())
        assert torch.equal(cert.precision_at_k, torch.ones(4, 2, dtype=F64))


def _one_unit(act: nn.Module, w: torch.Tensor, bias: float, a: float) -> nn.Module:
    model = nn.Sequential(nn.Linear(w.numel(), 1), act, nn.Linear(1, 1)).double().eval()
    with torch.no_grad():
        model[0].weight.copy_(w.view(1, -1))
        model[0].bias.fill_(bias)
        model[2].weight.fill_(a)
        model[2].bias.zero_()
    return model


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_one_hidden_unit_tanh_by_hand(norm):
    """s = a tanh(w.x'): I_i = |a w_i| sech^2(u), u = w.x' in [-eps ||w||_*, eps ||w||_*] at x = 0
    (||w||_1 for l_inf, ||w||_2 for l2). So L_i = |a w_i| sech^2(eps ||w||_*), U_i = |a w_i|, and
    T_k = {the k largest |w_i|} is certified while sech^2(eps ||w||_*) > |w|_(k+1) / |w|_(k)."""
    w = torch.tensor([3.0, -2.0, 1.0, 0.5], dtype=F64)
    model = _one_unit(nn.Tanh(), w, 0.0, -1.5)
    x = torch.zeros(1, 4, dtype=F64)
    dual = w.abs().sum() if norm == "linf" else w.norm()
    eps = 0.2
    b = sound_saliency_bounds(model, x, eps, norm=norm)
    sech2 = 1 / torch.cosh(eps * dual) ** 2
    torch.testing.assert_close(b.lower[0], 1.5 * w.abs() * sech2, rtol=1e-7, atol=0)
    torch.testing.assert_close(b.upper[0], 1.5 * w.abs(), rtol=1e-7, atol=0)
    for k in (1, 2, 3):
        ratio = float(w.abs()[k] / w.abs()[k - 1])
        want = math.acosh(1 / math.sqrt(ratio)) / float(dual)
        got = float(sound_topk_radius(model, x, k, norm=norm)[0])
        assert got <= want and got == pytest.approx(want, rel=1e-6)


def test_one_hidden_unit_relu_by_hand():
    """ReLU unit active at x (u = 0.6): the saliency is |a w| until u can reach 0, at eps = u / ||w||_1."""
    w = torch.tensor([0.5, -0.2, 0.1], dtype=F64)
    model = _one_unit(nn.ReLU(), w, 0.6, 2.0)
    x = torch.zeros(1, 3, dtype=F64)
    got = float(sound_topk_radius(model, x, 1, norm="linf")[0])
    assert got <= 0.6 / 0.8 and got == pytest.approx(0.6 / 0.8, rel=1e-6)
    inside = sound_saliency_bounds(model, x, 0.7, norm="linf")
    torch.testing.assert_close(inside.lower, inside.upper, rtol=1e-8, atol=0)
    outside = sound_saliency_bounds(model, x, 0.8, norm="linf")
    assert torch.equal(outside.lower, torch.zeros_like(outside.lower))


def test_known_package_models_and_top_level_exports():
    model = TabularMLP(5, 2, 7, "softplus", 10.0).double().eval()
    b = r2et_fast.sound_saliency_bounds(model, _x(3, 5), 0.01, score="loss")
    assert b.lower.shape == (3, 5) and bool((b.lower <= b.upper).all())
    assert r2et_fast.SoundCertificate is SoundCertificate and SoundCertificate.kind == "sound"
    assert certify.__module__.endswith("_certify")


def test_first_order_record_is_labelled():
    model = mlp("softplus", d=5)
    cert = certify(model, _x(3, 5), 0.1, "l2", k=2)
    assert cert.kind == "first_order" and cert.to_dict()["kind"] == "first_order"
    assert cert.summary()["kind"] == "first_order"


# -- soundness: sampled and attacked points never leave [lower, upper] ---------------------------

CASES = [(kind, act) for kind in ("mlp", "cnn") for act in ACTS]


def _model(kind: str, act: str, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    if kind == "mlp":
        return mlp(act, seed=seed), _x(6, 6, seed)
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return cnn(act, seed=seed), x


def violations(model, x, eps, norm, score, method, lower, upper, n_points=40, pgd=True) -> int:
    """How many sampled or PGD-attacked values fall outside [lower, upper] (per feature)."""
    gen = torch.Generator().manual_seed(1)
    target = torch.as_tensor(r2et_fast.bounds._args.resolve_target(model, x, None))
    e = torch.full((x.shape[0],), eps, dtype=F64)
    pts = ball_points(x, e, norm, n_points, gen)
    maps = exact_maps(model, pts, target.repeat_interleave(n_points), score, method)
    maps = maps.view(x.shape[0], n_points, -1)
    bad = int(((maps < lower.unsqueeze(1)) | (maps > upper.unsqueeze(1))).sum())
    if pgd:
        top = ((lower + upper) / 2).argmax(dim=1)
        other = torch.randint(lower.shape[1], (x.shape[0],), generator=gen)
        for coords in (top, other):
            for sign in (1.0, -1.0):
                adv = coordinate_pgd(model, x, e, norm, score, target, coords, sign, method=method, gen=gen)
                m = exact_maps(model, adv, target, score, method)
                bad += int(((m < lower) | (m > upper)).sum())
    return bad


@pytest.mark.parametrize("kind, act", CASES)
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_bounds_hold_on_the_ball(kind, act, norm):
    model, x = _model(kind, act)
    for score, method, eps in (("logit", "saliency", 0.05), ("loss", "saliency", 0.2),
                               ("loss", "gradxinput", 0.1)):
        b = sound_saliency_bounds(model, x, eps, norm=norm, score=score, method=method)
        assert bool((b.lower >= 0).all() and (b.lower <= b.upper).all())
        assert violations(model, x, eps, norm, score, method, b.lower, b.upper) == 0


@pytest.mark.parametrize("kind, act", [("mlp", "tanh"), ("mlp", "relu"), ("cnn", "softplus")])
def test_the_soundness_check_catches_shrunk_bounds(kind, act):
    """The check of the check: bounds pulled in to 30% of their width are caught."""
    model, x = _model(kind, act)
    b = sound_saliency_bounds(model, x, 0.3, norm="linf", score="loss")
    mid, half = (b.lower + b.upper) / 2, (b.upper - b.lower) / 2
    assert violations(model, x, 0.3, "linf", "loss", "saliency", mid - 0.3 * half, mid + 0.3 * half) > 0


def test_certified_precision_and_radius_agree():
    model, x = _model("mlp", "softplus")
    cert = sound_certify(model, x, 3, eps=(0.0, 1e-4, 1e-2, 0.1), norm="l2", score="loss")
    assert bool((cert.precision_at_k[:, 0] == 1).all())  # eps = 0: the clean top-k is itself
    assert bool((cert.precision_at_k[:, :-1] >= cert.precision_at_k[:, 1:]).all())  # widening bounds
    inside = torch.tensor(cert.eps[2]) <= cert.radius
    assert bool((cert.precision_at_k[inside, 2] == 1).all())
    single = sound_precision_at_k(model, x, 1e-2, 3, norm="l2", score="loss")
    torch.testing.assert_close(single, cert.precision_at_k[:, 2])
    torch.testing.assert_close(sound_topk_radius(model, x, 3, norm="l2", score="loss"), cert.radius)
    summary = cert.summary()
    assert summary["kind"] == "sound"
    assert summary["median_radius"] == pytest.approx(float(cert.radius.median()))
    record = cert.to_dict()
    assert record["kind"] == "sound" and len(record["radius"]) == 6 and len(record["curve"]) == 4


hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@hypothesis.settings(max_examples=max(200, DEEP), deadline=None, derandomize=True)
@hypothesis.given(act=st.sampled_from(sorted(ACTS)), depth=st.integers(1, 3), width=st.integers(1, 6),
                  d=st.integers(2, 5), classes=st.integers(1, 4), seed=st.integers(0, 10_000),
                  scale=st.floats(0.3, 3.0), eps=st.floats(0.0, 1.0), norm=st.sampled_from(["linf", "l2"]),
                  score=st.sampled_from(["logit", "loss"]),
                  method=st.sampled_from(["saliency", "gradxinput"]))
def test_fuzz_bounds_hold(act, depth, width, d, classes, seed, scale, eps, norm, score, method):
    model = mlp(act, d=d, widths=(width,) * depth, classes=classes, seed=seed, scale=scale)
    x = _x(3, d, seed) * scale
    b = sound_saliency_bounds(model, x, eps, norm=norm, score=score, method=method)
    assert violations(model, x, eps, norm, score, method, b.lower, b.upper, n_points=24, pgd=False) == 0


@hypothesis.settings(max_examples=max(60, DEEP // 4), deadline=None, derandomize=True)
@hypothesis.given(act=st.sampled_from(sorted(ACTS)), channels=st.integers(1, 3), out=st.integers(1, 4),
                  kernel=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 1),
                  dilation=st.integers(1, 2), pool=st.integers(1, 2), ceil=st.booleans(),
                  include_pad=st.booleans(), seed=st.integers(0, 10_000), eps=st.floats(0.0, 0.5),
                  norm=st.sampled_from(["linf", "l2"]), score=st.sampled_from(["logit", "loss"]))
def test_fuzz_cnn_bounds_hold(act, channels, out, kernel, stride, padding, dilation, pool, ceil, include_pad,
                              seed, eps, norm, score):
    """Convolutions and pools of every stride, padding and rounding mode: their transposes must fit."""
    torch.manual_seed(seed)
    side = 7
    body = nn.Sequential(nn.Conv2d(channels, out, kernel, stride, padding, dilation), ACTS[act](),
                         nn.AvgPool2d(pool, pool, padding=pool // 2, ceil_mode=ceil,
                                      count_include_pad=include_pad))
    with torch.no_grad():
        width = body(torch.zeros(1, channels, side, side)).numel()
    model = nn.Sequential(body, nn.Flatten(), nn.Linear(width, 3)).double().eval()
    x = torch.rand(2, channels, side, side, generator=torch.Generator().manual_seed(seed), dtype=F64)
    b = sound_saliency_bounds(model, x, eps, norm=norm, score=score)
    assert violations(model, x, eps, norm, score, "saliency", b.lower, b.upper, n_points=16, pgd=False) == 0


def test_bounds_are_tight_at_the_centre():
    """At eps = 0 the interval is the exact map up to the rounding margin, for MLPs and CNNs."""
    for kind, act in CASES:
        model, x = _model(kind, act)
        for score in ("logit", "loss"):
            b = sound_saliency_bounds(model, x, 0.0, score=score)
            exact = exact_maps(model, x, b.target, score)
            assert bool((b.lower <= exact).all() and (exact <= b.upper).all())
            assert float((b.upper - b.lower).max()) <= 1e-7 * max(1.0, float(exact.abs().max()))


# -- errors ------------------------------------------------------------------------------------------

def test_bad_input_is_refused_by_name():
    model, x = _model("mlp", "tanh")
    with pytest.raises(ValueError, match="x contains NaN"):
        sound_saliency_bounds(model, torch.full_like(x, math.nan), 0.1)
    with pytest.raises(ValueError, match="x must be a non-empty batch"):
        sound_saliency_bounds(model, x[:0], 0.1)
    with pytest.raises(ValueError, match="x must be a non-empty batch"):
        sound_saliency_bounds(model, x[0], 0.1)
    with pytest.raises(ValueError, match="eps must be finite and >= 0"):
        sound_saliency_bounds(model, x, -0.1)
    with pytest.raises(ValueError, match="eps must be a number or a per-sample tensor"):
        sound_saliency_bounds(model, x, torch.ones(2, dtype=F64))
    with pytest.raises(TypeError, match="eps must be"):
        sound_saliency_bounds(model, x, "0.1")
    with pytest.raises(ValueError, match="norm must be one of"):
        sound_saliency_bounds(model, x, 0.1, norm="l1")
    with pytest.raises(ValueError, match="score must be one of"):
        sound_saliency_bounds(model, x, 0.1, score="prob")
    with pytest.raises(ValueError, match="method must be one of"):
        sound_saliency_bounds(model, x, 0.1, method="ig")
    with pytest.raises(ValueError, match="target must lie in"):
        sound_saliency_bounds(model, x, 0.1, target=7)
    for k in (0, 6):
        with pytest.raises(ValueError, match="k must satisfy"):
            sound_topk_radius(model, x, k)
    with pytest.raises(ValueError, match="eps_max must be a finite number > 0"):
        sound_topk_radius(model, x, 2, eps_max=0.0)
    with pytest.raises(ValueError, match="eps must be a non-empty sequence"):
        sound_certify(model, x, 2, eps=())
    with pytest.raises(ValueError, match="eval mode"):
        sound_saliency_bounds(model.train(), x, 0.1)


@pytest.mark.parametrize("layer, fragment", [
    (nn.MaxPool2d(2), "MaxPool2d.*argmax"),
    (nn.BatchNorm2d(1), "BatchNorm2d.*not supported"),
])
def test_unsupported_layers_are_named(layer, fragment):
    width = 2 * 3 * 3 if "Max" in fragment else 72
    model = nn.Sequential(nn.Conv2d(1, 2, 3), layer, nn.Flatten(), nn.Linear(width, 2))
    model = model.double().eval()
    with pytest.raises(ValueError, match=fragment):
        sound_saliency_bounds(model, torch.rand(1, 1, 8, 8, dtype=F64), 0.1)


def test_functional_models_are_refused():
    with pytest.raises(ValueError, match="MnistCNN.*max pooling.*avgpool_cnn"):
        sound_saliency_bounds(MnistCNN().double().eval(), torch.rand(1, 1, 28, 28, dtype=F64), 0.1)
    with pytest.raises(ValueError, match="model must be an nn.Module"):
        sound_saliency_bounds(lambda t: t, _x(2, 3), 0.1)
