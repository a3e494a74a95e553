"""The bound-validation experiment (r2et_fast.experiments.bounds) end to end on a tiny budget: the
report's structure, valid percentages and bounds, the figures, resume from the cache, and the
smooth-pooling surrogate."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from r2et_fast.experiments.bounds import BoundsConfig, run_bounds, tied_pool_share
from r2et_fast.models import MnistCNN, SmoothPoolCNN, lse_pool2d

TINY = dict(methods=("r2et",), max_train=200, n_samples=2, restarts=1, steps=2, topk_steps=4,
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
    expected = {(p, "r2et", "saliency", n, e) for p in ("max", "lse")
                for n, radii in (("l2", (0.05, 0.2)), ("linf", (0.01, 0.05))) for e in radii}
    got = {(r["pooling"], r["model"], r["attribution"], r["norm"], r["eps"]) for r in results["runs"]}
    assert got == expected
    for r in results["runs"]:
        s, cert = r["summary"], r["certificate"]
        assert s["n_samples"] == 2 and len(r["hat_t_e"]) == 2
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
        (p, n) for p in ("max", "lse") for n in ("l2", "linf")}
    for h in results["headline"]:
        assert h["n"] == 2 * 2 and 0.0 <= h["pct_outside_t_e"] <= 100.0


def test_report_and_figures(tiny_run):
    _, out, results = tiny_run
    report = (out / "report.md").read_text()
    for needle in ("## Models", "## Headline", "Table 3", "Table 4", "Table 5", "Smooth-pooling surrogate",
                   "hist_max_saliency.png", "hist_lse_saliency.png", "| R2ET |"):
        assert needle in report
    assert sorted(results["figures"]) == ["hist_lse_saliency.png", "hist_max_saliency.png"]
    for name in results["figures"]:
        assert (out / name).stat().st_size > 1000
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["runs"] == results["runs"] and on_disk["config"]["n_samples"] == 2
    assert (out / "models" / "r2et" / "model.pt").is_file()


def test_max_pool_ties_make_the_saliency_jump(tiny_run):
    # MNIST's black background gives exactly tied max-pool windows: g jumps under a 1e-4 nudge,
    # while the smooth-pooling surrogate of the same weights moves by about xi_max * 1e-4
    _, _, results = tiny_run
    for entry in results["models"].values():
        max_, lse = entry["pooling"]["max"], entry["pooling"]["lse"]
        assert max_["tied_pool_share"] > 0.3 and lse["tied_pool_share"] is None
        assert max_["jump"]["saliency"] > 100 * lse["jump"]["saliency"]
        assert 0.0 <= lse["test_accuracy"] <= 1.0


def test_resume_from_cache_gives_the_same_results(tiny_run):
    cfg, out, results = tiny_run
    again = run_bounds(cfg, progress=False)  # everything cached: no training, no attack
    assert again["runs"] == results["runs"] and again["models"] == results["models"]
    # an interrupted run: one setting's cache lost (and no results.json yet) is recomputed identically
    (out / "cache" / "lse" / "r2et" / "saliency" / "linf_eps0.05.json").unlink()
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
    cfg = BoundsConfig()
    assert cfg.train_config("sp").softplus_beta == cfg.sp_beta != cfg.train_config("vanilla").softplus_beta
    assert cfg.train_config("r2et").activation == "softplus" and cfg.train_config("r2et").arch == "cnn"
