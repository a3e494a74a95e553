"""The bound-validation experiment (r2et_fast.experiments.bounds) end to end on a tiny budget: the
report's structure, valid percentages and bounds, the restarts behind the exceedance columns and
the mean over them, the figures, resume from the cache, the smooth-pooling surrogate and the CNN
trained with average pooling."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F

from r2et_fast.experiments._bounds_report import render_report
from r2et_fast.experiments.bounds import POOLINGS, BoundsConfig, run_bounds, tied_pool_share
from r2et_fast.models import MnistCNN, SmoothPoolCNN, lse_pool2d

# 2 restarts: the mean over restarts then differs from the worst case
TINY = dict(methods=("r2et",), max_train=200, n_samples=2, restarts=2, steps=2, topk_steps=4,
            l2_eps=(0.05, 0.2), linf_eps=(0.01, 0.05))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bounds")
    cfg = BoundsConfig.quick_defaults(out=str(out), **TINY)
    return cfg, out, run_bounds(cfg, progress=False)


def test_results_structure(tiny_run):
    cfg, out, results = tiny_run
    assert results["n_test"] == 2 and results["box"] == [0.0, 1.0]
    assert set(results["models"]) == {"r2et"}
    entry = results["models"]["r2et"]
    assert set(entry["val_accuracy"]) == {"cnn", "avgpool_cnn"}  # the avg pooling is a trained model
    assert entry["config"]["avgpool_cnn"]["arch"] == "avgpool_cnn" and entry["config"]["cnn"]["arch"] == "cnn"
    expected = {(p, "r2et", "saliency", n, e) for p in ("max", "lse", "avg")
                for n, radii in (("l2", (0.05, 0.2)), ("linf", (0.01, 0.05))) for e in radii}
    got = {(r["pooling"], r["model"], r["attribution"], r["norm"], r["eps"]) for r in results["runs"]}
    assert got == expected
    for r in results["runs"]:
        s, cert = r["summary"], r["certificate"]
        assert s["n_samples"] == 2 and len(r["hat_t_e"]) == 2
        # the exceedance columns come from cfg.restarts restarts, the worst of them per sample
        per_restart = torch.tensor(r["hat_t_e_restarts"], dtype=torch.float64)
        assert s["restarts"] == cfg.restarts == per_restart.shape[0] == 2
        assert r["hat_t_e"] == per_restart.amax(dim=0).tolist()
        t_e = torch.tensor(cert["t_e"], dtype=torch.float64)
        exceeded = per_restart.amax(dim=0) > t_e
        assert s["pct_t_e_exceeded_by_strong_pgd"] == 100.0 * float(exceeded.double().mean())
        assert s["mean_hat_t_e_over_restarts"] == pytest.approx(float(per_restart.mean(0).mean()), rel=1e-12)
        assert s["mean_hat_t_e_over_restarts"] <= s["mean_hat_t_e"]
        for key in ("pct_outside_t_e", "pct_outside_t_e_generalized", "pct_outside_t_c",
                    "pct_outside_t_e_linear"):
            assert 0.0 <= s[key] <= 100.0
        assert s["pct_outside_t_e_linear"] == 0.0  # the linearised deviation never exceeds T_e
        assert all(t >= 0 for t in cert["t_e"]) and all(c >= 1 for c in cert["c"])
        assert all(tp >= t for tp, t in zip(cert["t_e_generalized"], cert["t_e"]))
        assert s["attacks"] == (["pgd"] if r["norm"] == "l2" else ["pgd", "topk"])
        assert math.isfinite(s["tightness_r"])
        assert 0 <= s["n_topk_violations"] <= s["n_topk_certified"] <= 2
    assert {(h["pooling"], h["norm"]) for h in results["headline"]} == {
        (p, n) for p in POOLINGS for n in ("l2", "linf")}
    for h in results["headline"]:
        assert h["n"] == 2 * 2 and 0.0 <= h["pct_t_e_exceeded_by_strong_pgd"] <= 100.0
        assert h["restarts"] == [2] and h["strong_attack"].endswith("(2 restarts)")


def test_report_and_figures(tiny_run):
    _, out, results = tiny_run
    report = (out / "report.md").read_text()
    for needle in ("## Models", "## Headline", "Table 3", "Table 4", "Table 5", "Smooth-pooling surrogate",
                   "Smooth-pool CNN (avgpool_cnn", "hist_max_saliency.png", "hist_lse_saliency.png",
                   "hist_avg_saliency.png", "| R2ET |", "first-order bounds",
                   "% of samples with T_e exceeded by strong PGD (2 restarts)",
                   "% of samples with T'_e exceeded by strong PGD + top-k attack (2 restarts)",
                   "T^_e (worst of 2) | T^_e (mean over 2)", "T^_c deg (mean over 2)"):
        assert needle in report
    assert sorted(results["figures"]) == ["hist_avg_saliency.png", "hist_lse_saliency.png",
                                          "hist_max_saliency.png"]
    for name in results["figures"]:
        assert (out / name).stat().st_size > 1000
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["runs"] == results["runs"] and on_disk["config"]["n_samples"] == 2
    assert (out / "models" / "r2et" / "model.pt").is_file()


def test_the_headers_state_the_restarts_the_records_used(tiny_run):
    # the column header is read from the records: a config claiming more restarts than the
    # attacks ran must not change what the report states
    _, _, results = tiny_run
    claimed = copy.deepcopy(results)
    claimed["config"]["restarts"] = 5
    report = render_report(claimed)
    assert "(2 restarts)" in report and "(5 restarts)" not in report
    assert "2 random start(s) each" in report


def test_max_pool_ties_make_the_saliency_jump(tiny_run):
    # MNIST's black background gives exactly tied max-pool windows: g jumps under a 1e-4 nudge,
    # while the smooth-pooling surrogate of the same weights moves by about xi_max * 1e-4
    _, _, results = tiny_run
    for entry in results["models"].values():
        max_, lse = entry["pooling"]["max"], entry["pooling"]["lse"]
        avg = entry["pooling"]["avg"]
        assert max_["tied_pool_share"] > 0.3 and lse["tied_pool_share"] is None
        assert avg["tied_pool_share"] is None
        assert max_["jump"]["saliency"] > 100 * lse["jump"]["saliency"]
        assert max_["jump"]["saliency"] > 10 * avg["jump"]["saliency"]  # trained smooth: no jump
        assert 0.0 <= lse["test_accuracy"] <= 1.0 and 0.0 <= avg["test_accuracy"] <= 1.0


def test_resume_from_cache_gives_the_same_results(tiny_run):
    cfg, out, results = tiny_run
    again = run_bounds(cfg, progress=False)  # everything cached: no training, no attack
    assert again["runs"] == results["runs"] and again["models"] == results["models"]
    # an interrupted run: one setting's cache lost (and no results.json yet) is recomputed identically
    (out / "cache" / "lse" / "r2et" / "saliency" / "linf_eps0.05.json").unlink()
    (out / "cache" / "avg" / "r2et" / "saliency" / "l2_eps0.05.json").unlink()
    (out / "results.json").unlink()
    resumed = run_bounds(cfg, progress=False)
    assert _values(resumed["runs"]) == _values(results["runs"])  # all but the recorded timing


def _values(runs: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in runs]


def test_lse_pool_is_a_smooth_max():
    h = torch.randn(2, 3, 9, 9, generator=torch.Generator().manual_seed(0))
    for size, tau in ((2, 0.1), (3, 0.05)):
        smooth, hard = lse_pool2d(h, size, tau), F.max_pool2d(h, size)
        assert smooth.shape == hard.shape
        assert bool((smooth <= hard + 1e-6).all())
        assert bool((smooth >= hard - tau * math.log(size * size) - 1e-6).all())
    tied = torch.zeros(1, 1, 4, 4)
    assert torch.allclose(lse_pool2d(tied, 2, 0.1), torch.zeros(1, 1, 2, 2), atol=1e-6)


def test_smooth_pool_cnn_shares_weights_and_checks_arguments():
    cnn = MnistCNN(10, "softplus").eval()
    model = SmoothPoolCNN(cnn, 1e-3).eval()
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(model(x), cnn(x), atol=1e-2)  # tau -> 0 recovers the max pool
    assert tied_pool_share(model, x) is None and 0.0 <= tied_pool_share(cnn, x) <= 1.0
    with pytest.raises(TypeError, match="MnistCNN"):
        SmoothPoolCNN(torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="tau"):
        SmoothPoolCNN(cnn, 0.0)
    with pytest.raises(ValueError, match="28, 28"):
        model(torch.rand(2, 1, 14, 14))


def test_config_is_validated():
    with pytest.raises(ValueError, match="norms"):
        BoundsConfig(norms=("l1",))
    with pytest.raises(ValueError, match="methods"):
        BoundsConfig(methods=("nope",))
    with pytest.raises(ValueError, match="n_samples"):
        BoundsConfig(n_samples=0)
    with pytest.raises(ValueError, match="linf_eps"):
        BoundsConfig(linf_eps=(0.0,))
    with pytest.raises(ValueError, match="poolings"):
        BoundsConfig(poolings=("median",))
    cfg = BoundsConfig()
    assert cfg.restarts == 5 and cfg.poolings == ("max", "lse", "avg")  # the strong attack, all models
    assert cfg.archs() == ("cnn", "avgpool_cnn") and BoundsConfig(poolings=("lse",)).archs() == ("cnn",)
    assert cfg.train_config("r2et", "avgpool_cnn").arch == "avgpool_cnn"
    assert cfg.train_config("sp").softplus_beta == cfg.sp_beta != cfg.train_config("vanilla").softplus_beta
    assert cfg.train_config("r2et").activation == "softplus" and cfg.train_config("r2et").arch == "cnn"
