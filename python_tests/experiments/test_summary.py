"""The budget curves and the uncertainty summaries of `reproduce` (docs/spec.md §9): the curve is taken
on the stated eps grid, its area is the log-eps trapezoid of a hand computation, and the bootstrap
intervals hold their point estimate, are seeded and match the normal approximation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from r2et_fast.datasets import make_tabular
from r2et_fast.experiments import _studies, _summary
from r2et_fast.experiments._specs import get_spec
from r2et_fast.experiments.reproduce import ReproduceConfig, budget
from r2et_fast.train import TrainConfig
from r2et_fast.train._checkpoint import build_model


def test_log_eps_auc_is_the_hand_trapezoid():
    # eps 1, 2, 8: log-intervals of log 2 and 2 log 2 (total 3 log 2); P@k 1, 0.5, 0
    # area / range = (0.75 * 1 + 0.25 * 2) / 3, where the linear-eps trapezoid gives 2.25 / 7
    assert _summary.log_eps_auc([1.0, 2.0, 8.0], [1.0, 0.5, 0.0]) == pytest.approx(1.25 / 3, abs=1e-12)
    # the unit does not matter (a constant factor on eps), and a flat curve is its own value
    assert _summary.log_eps_auc([0.1, 0.2, 0.8], [1.0, 0.5, 0.0]) == pytest.approx(1.25 / 3, abs=1e-12)
    assert _summary.log_eps_auc([0.01, 0.3, 5.0], [0.7, 0.7, 0.7]) == pytest.approx(0.7)
    for eps, values in (([1.0], [1.0]), ([2.0, 1.0], [1.0, 0.0]), ([1.0, 2.0], [1.0])):
        with pytest.raises(ValueError):
            _summary.log_eps_auc(eps, values)


def _tiny():
    data = make_tabular(n_samples=200, n_features=12, seed=0)
    model = build_model(TrainConfig(method="vanilla", arch="mlp", hidden=8), 12, 2).to(data.x_test.dtype)
    return model.eval(), data


def test_budget_curve_attacks_at_each_stated_eps(monkeypatch):
    model, data = _tiny()
    spec = get_spec("compas")  # tabular protocol, eps = 1, the data's box
    cfg = ReproduceConfig.quick_defaults(eps_multipliers=(0.25, 0.5, 1.0, 4.0), budget_steps=6,
                                         budget_samples=12, steps=20)
    b = budget(spec, cfg)
    calls = []
    run_attack = _studies.run_attack

    def spy(attack_cls, model, data, spec, c, cfg, x, y, **kw):
        calls.append((attack_cls.__name__, c.eps, c.alpha, c.steps, len(x)))
        return run_attack(attack_cls, model, data, spec, c, cfg, x, y, **kw)

    monkeypatch.setattr(_studies, "run_attack", spy)
    curve = _studies.budget_curve(model, data, spec, b, cfg)
    wanted = [b.eps * m for m in (0.25, 0.5, 1.0, 4.0)]
    assert curve["eps"] == pytest.approx(wanted) and curve["multipliers"] == [0.25, 0.5, 1.0, 4.0]
    for name in ("ERAttack", "MSEAttack"):
        mine = [c for c in calls if c[0] == name]
        assert [c[1] for c in mine] == pytest.approx(wanted)
        # budget_steps steps whose length scales with eps: every path is eps long (tabular: alpha *
        # steps = eps at the protocol's budget)
        assert all(steps == 6 and n == 12 and alpha * steps == pytest.approx(eps)
                   for _, eps, alpha, steps, n in mine)
    assert curve["steps"] == 6
    # never more steps than Table 1's attack
    short = budget(spec, dataclasses.replace(cfg, steps=4))
    assert {c.steps for c in _studies.curve_budgets(short, cfg)} == {4}
    for key in ("precision_at_k_erattack", "precision_at_k_mse"):
        assert len(curve[key]) == 4 and all(0.0 <= v <= 1.0 for v in curve[key])
        assert curve[f"auc_{key}"] == pytest.approx(_summary.log_eps_auc(wanted, curve[key]))


def test_eps_multipliers_are_validated():
    ReproduceConfig(eps_multipliers=())  # no curves
    for bad in ((1.0,), (0.0, 1.0), (1.0, 0.5), (0.5, 0.5, 1.0)):
        with pytest.raises(ValueError, match="eps_multipliers"):
            ReproduceConfig(eps_multipliers=bad)


def test_bootstrap_interval_holds_the_mean_is_seeded_and_has_the_normal_width():
    values = np.random.default_rng(5).random(400)
    lo, hi = _summary.percentile_interval([values], 1000, seed=0)
    assert lo < values.mean() < hi
    assert _summary.percentile_interval([values], 1000, seed=0) == [lo, hi]  # seeded
    assert _summary.percentile_interval([values], 1000, seed=1) != [lo, hi]
    # the mean's standard error: the 95 % interval is about 2 * 1.96 * sd / sqrt(n) wide
    assert hi - lo == pytest.approx(2 * 1.96 * values.std() / math.sqrt(len(values)), rel=0.15)
    # several seeds: the interval of the mean of the seeds' means
    other = values[:300] + 0.2
    lo2, hi2 = _summary.percentile_interval([values, other], 1000, seed=0)
    assert lo2 < (values.mean() + other.mean()) / 2 < hi2
    assert _summary.percentile_interval([np.full(50, 0.25)], 200, seed=0) == [0.25, 0.25]


def test_table1_adds_intervals_to_the_per_sample_metrics():
    rng = np.random.default_rng(0)
    runs = []
    for _ in range(2):
        per = {key: rng.integers(0, 9, 60).astype(float) / 8 for key in _summary.PER_SAMPLE}
        runs.append({"cauc": 0.8, **{key: float(v.mean()) for key, v in per.items()},
                     "per_sample": {key: v.tolist() for key, v in per.items()}})
    row = _summary.table1({"vanilla": runs}, 500, 0)["vanilla"]
    assert "per_sample" not in row and "ci95" not in row["cauc"]
    for key in _summary.PER_SAMPLE:
        lo, hi = row[key]["ci95"]
        assert lo <= row[key]["mean"] <= hi
    assert "ci95" not in _summary.table1({"vanilla": runs}, 0, 0)["vanilla"]["precision_at_k_mse"]


def test_paired_verdicts():
    rng = np.random.default_rng(1)
    base = rng.random(200)
    noise = rng.normal(0, 0.05, 200)
    assert _summary.paired_verdict([base + 0.05 + noise], [base], 1000, 0)["verdict"] == "supported"
    assert _summary.paired_verdict([base - 0.05 + noise], [base], 1000, 0)["verdict"] == "not supported"
    tie = _summary.paired_verdict([base + noise - noise.mean()], [base], 1000, 0)
    assert tie["verdict"] == "undecided" and tie["ci"][0] < 0 < tie["ci"][1]
    # paired: a shared per-sample spread far larger than the difference does not hide it
    assert _summary.paired_verdict([base * 10 + 0.01], [base * 10], 200, 0)["verdict"] == "supported"
    # the seeds' side: each seed's mean difference and how many are positive (here 2 of 3), which
    # the test-sample interval does not cover
    three = _summary.paired_verdict([base + 0.05, base + 0.02, base - 0.01], [base] * 3, 200, 0)
    assert three["seed_differences"] == pytest.approx([0.05, 0.02, -0.01]) and three["seeds_higher"] == 2
    assert three["difference"] == pytest.approx(0.02)


def test_budget_curves_are_cached_on_their_grid(tmp_path, monkeypatch):
    from r2et_fast.experiments import reproduce as reproduce_module

    grids = []

    def counting(model, data, spec, b, cfg):
        grids.append(cfg.eps_multipliers)
        return curve(model, data, spec, b, cfg)

    curve = reproduce_module.budget_curve
    monkeypatch.setattr(reproduce_module, "budget_curve", counting)
    cfg = ReproduceConfig.quick_defaults(
        out=str(tmp_path), datasets=("compas",), methods=("vanilla",), epochs=1, max_train=300, max_test=8,
        steps=3, correlation_samples=4, thickness_samples=2, thickness_path=2, faithfulness_samples=4,
        variant_samples=4, variant_steps=2, smoothgrad_samples=2, ig_steps=2, k_grid=(),
        constraints=("none",))
    first = reproduce_module.reproduce(cfg, progress=False)
    assert reproduce_module.reproduce(cfg, progress=False) == first and len(grids) == 1  # reused
    wider = reproduce_module.reproduce(dataclasses.replace(cfg, eps_multipliers=(0.5, 1.0)), progress=False)
    assert grids == [(1 / 16, 1 / 2, 4.0), (0.5, 1.0)]
    assert wider["datasets"]["compas"]["budget_curves"]["eps"] == [0.5, 1.0]
    off = reproduce_module.reproduce(dataclasses.replace(cfg, eps_multipliers=()), progress=False)
    assert len(grids) == 2 and not off["datasets"]["compas"]["budget_curves"]
    assert "auc_precision_at_k_mse" not in off["datasets"]["compas"]["table1"]["vanilla"]
