"""The Monte-Carlo top-k thickness estimator (docs/spec.md §2): exact 1 where the explanation never changes,
smaller for larger neighbourhoods of a nonlinear model, reproducible from the seed alone, and path
points that lie where they should."""

from __future__ import annotations

import pytest
import torch

from python_tests.conftest import requires_native
from r2et_fast.explain import Saliency
from r2et_fast.thickness import ThicknessResult, topk_thickness


def linear_setup(batch=6, shape=(12,), classes=3):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(torch.Size(shape).numel(), classes))
    model = model.double()
    x = torch.randn(batch, *shape, generator=g, dtype=torch.float64)
    return model, x


def nonlinear_setup(batch=8, n=16):
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(n, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32),
                                torch.nn.Tanh(), torch.nn.Linear(32, 3)).double()
    x = torch.randn(batch, n, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    return model, x


def explain_fn(model, x, score="logit"):
    y = model(x).argmax(dim=1)
    explainer = Saliency(model, score=score)
    return lambda z, index: explainer.attribute(z, target=y[index])


@pytest.mark.parametrize("kwargs", [
    {"distribution": "uniform", "eps": 1.0, "norm": "linf"},
    {"distribution": "uniform", "eps": 1.0, "norm": "l2"},
    {"distribution": "gaussian", "sigma": 2.0},
])
def test_constant_explanation_has_thickness_one(kwargs, backend):
    # A linear model's logit gradient is its weight row: the map never changes.
    model, x = linear_setup(shape=(2, 3, 2))
    result = topk_thickness(explain_fn(model, x), x, 4, n_samples=5, n_path=4, batch_size=32,
                            backend=backend, **kwargs)
    assert isinstance(result, ThicknessResult)
    assert result.per_sample.shape == (x.shape[0],) and result.per_sample.dtype == torch.float64
    assert bool((result.per_sample == 1).all()) and result.model_level == 1.0


def test_points_equal_to_x_give_one():
    model, x = nonlinear_setup()
    points = x.unsqueeze(1).repeat(1, 3, 1)
    result = topk_thickness(explain_fn(model, x), x, 5, distribution="points", points=points, n_path=3)
    assert bool((result.per_sample == 1).all())


def test_thickness_decreases_with_eps(backend):
    model, x = nonlinear_setup()
    fn = explain_fn(model, x)
    levels = [topk_thickness(fn, x, 5, eps=eps, n_samples=24, n_path=6, backend=backend).model_level
              for eps in (0.02, 0.5, 4.0)]
    # Averaged over 8 samples x 24 x 6 path points, the drops are far beyond Monte-Carlo noise.
    assert levels[0] > levels[1] + 0.005 > levels[2] + 0.02, levels
    assert levels[2] < 0.97 and levels[0] > 0.99


def test_seed_reproducible_and_private_rng():
    model, x = nonlinear_setup()
    fn = explain_fn(model, x)
    state = torch.get_rng_state()
    a = topk_thickness(fn, x, 5, eps=1.0, n_samples=6, n_path=4, seed=7)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    b = topk_thickness(fn, x, 5, eps=1.0, n_samples=6, n_path=4, seed=7, batch_size=5)
    c = topk_thickness(fn, x, 5, eps=1.0, n_samples=6, n_path=4, seed=8)
    assert torch.equal(a.per_sample, b.per_sample)  # independent of the batching
    assert not torch.equal(a.per_sample, c.per_sample)
    assert a.model_level == pytest.approx(float(a.per_sample.mean()))


@requires_native
def test_backends_agree():
    model, x = nonlinear_setup()
    fn = explain_fn(model, x, score="loss")
    kw = {"eps": 1.5, "n_samples": 4, "n_path": 3, "norm": "l2"}
    native = topk_thickness(fn, x, 4, backend="native", **kw)
    reference = topk_thickness(fn, x, 4, backend="reference", **kw)
    assert torch.equal(native.per_sample, reference.per_sample)  # exact counts on both


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_path_points_and_index(norm):
    """Rows handed to explain_fn lie on segments from x[index] into the eps-ball, and every
    (sample, end point, t) appears once."""
    model, x = linear_setup(batch=5, shape=(2, 4))
    seen = []

    def fn(z, index):
        seen.append((z.clone(), index.clone()))
        return z.flatten(1).abs() + index[:, None].to(z.dtype)  # any per-row map

    eps, n_samples, n_path = 0.3, 4, 3
    topk_thickness(fn, x, 2, eps=eps, n_samples=n_samples, n_path=n_path, norm=norm, batch_size=7)
    z = torch.cat([s[0] for s in seen[1:]])  # seen[0]: the clean explanation of x
    index = torch.cat([s[1] for s in seen[1:]])
    assert torch.equal(seen[0][0], x) and torch.equal(seen[0][1], torch.arange(5))
    assert z.shape == (5 * n_samples * n_path, 2, 4) and all(len(s[1]) <= 7 for s in seen)
    assert torch.equal(torch.bincount(index), torch.full((5,), n_samples * n_path))
    d = (z - x[index]).flatten(1)
    dist = d.abs().amax(1) if norm == "linf" else d.norm(dim=1)
    assert bool((dist <= eps + 1e-12).all()) and bool((dist > 0).all())


def test_given_points_are_the_segment_ends():
    model, x = linear_setup(batch=3, shape=(4,))
    points = torch.randn(3, 2, 4, dtype=torch.float64)
    seen = []

    def fn(z, index):
        seen.append(z.clone())
        return z.abs()

    topk_thickness(fn, x, 2, distribution="points", points=points, n_path=2)
    z = torch.cat(seen[1:]).view(2, 2, 3, 4)  # (S, T, B, ...)
    torch.testing.assert_close(z[:, 1], points.transpose(0, 1))  # t = T: the end points
    torch.testing.assert_close(z[:, 0], (x[:, None] + 0.5 * (points - x[:, None])).transpose(0, 1))


def test_bad_arguments():
    model, x = linear_setup(batch=2, shape=(6,))
    fn = explain_fn(model, x)
    bad = [
        ({"distribution": "box"}, ValueError, "distribution must be one of"),
        ({"norm": "l1"}, ValueError, "norm must be one of"),
        ({"eps": -1.0}, ValueError, "eps must be a finite number"),
        ({"sigma": float("nan")}, ValueError, "sigma must be a finite number"),
        ({"n_path": 0}, ValueError, "n_path must be positive"),
        ({"n_samples": 2.5}, TypeError, "n_samples must be an int"),
        ({"batch_size": 0}, ValueError, "batch_size must be positive"),
        ({"distribution": "points"}, ValueError, "needs points"),
        ({"distribution": "points", "points": x}, ValueError, "points must have shape"),
        ({"distribution": "points", "points": x[:, None].float()}, TypeError, "points must have the dtype"),
        ({"distribution": "points", "points": x[:, None], "n_samples": 3}, ValueError, "n_samples"),
        ({"points": x[:, None]}, ValueError, "only used with distribution='points'"),
    ]
    for kwargs, exc, pattern in bad:
        with pytest.raises(exc, match=pattern):
            topk_thickness(fn, x, 2, **kwargs)
    with pytest.raises(ValueError, match="k must satisfy"):
        topk_thickness(fn, x, 6)
    with pytest.raises(TypeError, match="explain_fn must be callable"):
        topk_thickness(None, x, 2)
    with pytest.raises(ValueError, match="x contains NaN"):
        topk_thickness(fn, x * float("nan"), 2)
    with pytest.raises(ValueError, match="one map per input row"):
        topk_thickness(lambda z, i: z[:1], x, 2)
    with pytest.raises(ValueError, match="explain_fn returned NaN or Inf"):
        topk_thickness(lambda z, i: z * float("inf"), x, 2)


# ---- Explainers and Captum adapters: the sample's class along its paths ------------------------------

THICK = {"eps": 1.5, "n_samples": 3, "n_path": 3, "batch_size": 16}


def test_explainer_equals_the_function_with_clean_targets():
    model, x = nonlinear_setup()
    want = topk_thickness(explain_fn(model, x), x, 5, **THICK)  # targets: the clean prediction
    got = topk_thickness(Saliency(model), x, 5, **THICK)
    assert torch.equal(got.per_sample, want.per_sample)
    # not the prediction at each path point (which changes along these paths)
    per_point = topk_thickness(lambda z, index: Saliency(model).attribute(z), x, 5, **THICK)
    assert not torch.equal(per_point.per_sample, got.per_sample)


def test_explicit_targets_are_repeated_along_the_paths():
    model, x = nonlinear_setup()
    target = (model(x).argmax(dim=1) + 1) % 3
    explainer = Saliency(model)
    got = topk_thickness(explainer, x, 5, target=target, **THICK)
    want = topk_thickness(lambda z, index: explainer.attribute(z, target=target[index]), x, 5, **THICK)
    assert torch.equal(got.per_sample, want.per_sample)
    assert not torch.equal(got.per_sample, topk_thickness(explainer, x, 5, **THICK).per_sample)
    by_int = topk_thickness(explainer, x, 5, target=1, **THICK)
    ones = torch.ones(x.shape[0], dtype=torch.long)
    assert torch.equal(by_int.per_sample, topk_thickness(explainer, x, 5, target=ones, **THICK).per_sample)


def test_captum_adapter_equals_our_explainer():
    captum_attr = pytest.importorskip("captum.attr")
    from r2et_fast.explain import IntegratedGradients, from_captum

    model, x = nonlinear_setup(batch=4)
    adapter = from_captum(captum_attr.IntegratedGradients(model), n_steps=4, method="riemann_right")
    ours = IntegratedGradients(model, n_steps=4, method="riemann_right")
    got = topk_thickness(adapter, x, 5, **THICK)
    assert torch.equal(got.per_sample, topk_thickness(ours, x, 5, **THICK).per_sample)
    assert float(got.per_sample.min()) < 1  # the maps do change along the paths


def test_target_with_a_plain_function_is_an_error():
    model, x = nonlinear_setup()
    with pytest.raises(ValueError, match="target is only used with an Explainer or a from_captum"):
        topk_thickness(explain_fn(model, x), x, 5, target=0, **THICK)
    with pytest.raises(ValueError, match="target must have shape"):
        topk_thickness(Saliency(model), x, 5, target=torch.zeros(3, dtype=torch.long), **THICK)
