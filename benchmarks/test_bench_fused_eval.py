"""Explanations of an MLP without double backprop (issue #12, items 2-3): the fused saliency ops
against the generic autograd path, in one run, on Adult's MLP (CPU).

- ERAttack (the paper's default: all pairs, linear gaps, l2 steps, the valid box, early stop) over
  the whole Adult test split (9045 samples), 1000 steps: ``fused`` (the default: every step in one
  native call, ``fused_mlp_attack``), ``generic`` (the same attack under ``autograd_gradients()``:
  the Python loop, autograd's double backprop each step), and ``torch_compile``: the same step
  written functionally (``torch.func`` input gradients, the top-k mask of the clean map fixed, no
  per-step P@k or early stop, so it does less), compiled once outside the timed region and looped
  1000 times in Python: what a user would write.
- the whole Monte-Carlo thickness estimator (256 test samples, S = 8, T = 10): ``fused`` vs
  ``generic``.
Group = workload, name = way.
"""

from __future__ import annotations

import contextlib
import math

import pytest
import torch
import torch.nn.functional as F

import r2et_fast
from r2et_fast.attacks import ERAttack
from r2et_fast.datasets import load_tabular
from r2et_fast.experiments.protocol import data_box
from r2et_fast.explain import Saliency, _score
from r2et_fast.thickness import topk_thickness
from r2et_fast.train import TrainConfig, build_model

pytestmark = pytest.mark.skipif(not r2et_fast.native_available(), reason="native extension not built")
SAMPLES, STEPS, K, EPS, ALPHA = None, 1000, 8, 0.5, 0.01  # SAMPLES None: the whole test split


@pytest.fixture(scope="module")
def adult():
    data = load_tabular("adult")
    torch.manual_seed(0)
    return data, build_model(TrainConfig(), data.n_features).eval()


def fast_paths(on: bool):
    """on: the defaults (the fused attack loop, the fused detached saliency); off: autograd only."""
    return contextlib.nullcontext() if on else _score.autograd_gradients()


def compiled_attack(model, x0, y, lower, upper):
    """ERAttack's loop with its step compiled: maps |d CE / dx|, the all-pairs linear gap of the
    clean top-k set, an l2-normalised step, projection onto the l_inf ball and the box."""
    from torch.func import functional_call, grad

    params = {name: p.detach() for name, p in model.named_parameters()}
    n = x0.shape[1]

    def ce_sum(u):
        return F.cross_entropy(functional_call(model, params, (u,)), y, reduction="sum")

    def maps_of(z):
        return grad(ce_sum)(z).abs()

    def gap(z, top):
        maps = maps_of(z)
        return ((n - K) * (maps * top).sum() - K * (maps * (1 - top)).sum()) / (K * (n - K))

    def step(x_t, top):
        g = grad(gap)(x_t, top)
        x_next = x_t - ALPHA * g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return torch.minimum(torch.maximum(x_next.clamp(x0 - EPS, x0 + EPS), lower), upper)

    compiled = torch.compile(step, dynamic=False)
    clean = maps_of(x0)
    top = torch.zeros_like(clean).scatter(1, clean.topk(K, dim=1).indices, 1.0)
    compiled(x0, top)  # compile outside the timed region

    def run():
        x_t = x0
        for _ in range(STEPS):
            x_t = compiled(x_t, top)
        return x_t

    return run


@pytest.mark.parametrize("way", ["fused", "generic", "torch_compile"])
def test_er_attack(benchmark, adult, way):
    data, model = adult
    lower, upper = data_box(data)
    x, y = data.x_test[:SAMPLES], data.y_test[:SAMPLES]
    benchmark.group = f"ERAttack, {x.shape[0]} Adult test samples, {STEPS} steps"
    benchmark.name = way
    if way == "torch_compile":
        run = compiled_attack(model, x, y, lower, upper)
    else:
        attack = ERAttack(model, k=K, eps=EPS, alpha=ALPHA, steps=STEPS, lower=lower, upper=upper)

        def run():
            with fast_paths(way == "fused"):
                return attack(x, y)
    benchmark.pedantic(run, rounds=2, iterations=1, warmup_rounds=0)


@pytest.mark.parametrize("way", ["fused", "generic"])
def test_thickness_estimator(benchmark, adult, way):
    data, model = adult
    x, y = data.x_test[:256], data.y_test[:256]
    explainer = Saliency(model, score="loss")
    benchmark.group = "thickness estimator, Adult MLP, 256 samples, S = 8, T = 10"
    benchmark.name = way

    def run():
        with fast_paths(way == "fused"):
            return topk_thickness(explainer, x, K, eps=EPS, n_samples=8, n_path=10, target=y)
    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)


def test_compiled_step_is_the_attack():
    """The compiled anchor does what ERAttack does (same iterates, 5 steps, float64)."""
    data = load_tabular("adult")
    torch.manual_seed(0)
    model = build_model(TrainConfig(), data.n_features).eval().double()
    lower, upper = (t.double() for t in data_box(data))
    x, y = data.x_test[:64].double(), data.y_test[:64]
    global STEPS
    saved, STEPS = STEPS, 5
    try:
        anchor = compiled_attack(model, x, y, lower, upper)()
    finally:
        STEPS = saved
    result = ERAttack(model, k=K, eps=EPS, alpha=ALPHA, steps=5, lower=lower, upper=upper)(x, y)
    assert math.isclose(float((anchor - result.x_adv).abs().max()), 0.0, abs_tol=1e-9)
