"""The studies beside Table 1 over seeds (docs/spec.md §9): each runs on the first ``study_seeds``
seeds, the report gives mean ± std over them and a bootstrap interval over test samples, and records
cached before they kept per-sample values still give the mean ± std."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.stats

from r2et_fast import cli
from r2et_fast.experiments import _study_summary as study_summary
from r2et_fast.experiments.reproduce import ReproduceConfig, reproduce


def _cfg(out, **overrides) -> ReproduceConfig:
    small = dict(datasets=("compas",), methods=("vanilla", "r2et"), out=str(out), seeds=2, max_train=300,
                 max_test=16, selection_samples=16, correlation_samples=12, thickness_samples=2,
                 thickness_path=2, faithfulness_samples=8, variant_samples=8, variant_steps=2,
                 smoothgrad_samples=2, ig_steps=2, k_grid=(4,), n_pairs_grid=(2,), eps_multipliers=(),
                 constraints=("none", "early_stop"), bootstrap_resamples=50, epochs=1, steps=5)
    return ReproduceConfig.quick_defaults(**{**small, **overrides})


def _seed_files(out, seed: int) -> set[str]:
    root = out / "runs" / "compas" / f"seed{seed}"
    return {p.name for p in root.rglob("*.json")}


def test_studies_run_on_every_seed_and_summarise(tmp_path):
    results = reproduce(_cfg(tmp_path), progress=False)
    entry = results["datasets"]["compas"]
    for seed in (0, 1):
        assert {"variants.json", "faithfulness.json", "correlation.json", "constrained.json",
                "evaluation_k4.json"} <= _seed_files(tmp_path, seed)
    for method in ("vanilla", "r2et"):
        for name in ("smoothgrad", "ig"):
            cell = entry["variants"][method][name]
            assert cell["seeds"] == 2 and cell["std"] >= 0 and cell["ci95"][0] <= cell["ci95"][1]
        for name in ("dffot", "comp", "suff"):
            assert entry["faithfulness"][method][name]["seeds"] == 2
        corr = entry["correlation"][method]
        assert len(corr["points"]["epoch"]) == 12 and corr["points"]["seed"] == 0
        for key in study_summary.SPEARMAN:  # a rho is left out only where it is undefined
            assert corr[key] is None or 1 <= corr[key]["seeds"] <= 2
    assert [r["constraint"] for r in entry["constrained"]] == ["none", "early_stop"]
    early = entry["constrained"][1]
    assert early["sensitivity"]["mean"] == 0.0 and early["precision_at_k"]["seeds"] == 2
    assert {(r["method"], r["k"], r["n_pairs"]) for r in entry["k_grid"]} == {
        ("vanilla", 4, None), ("r2et", 4, None), ("r2et_mm", 8, 2)}
    assert all(r["precision_at_k_erattack"]["seeds"] == 2 and "ci95" in r["precision_at_k_erattack"]
               for r in entry["k_grid"])
    report = (tmp_path / "report.md").read_text()
    assert "ran on the first 2 seed(s)" in report and "| Vanilla | 4 | – |" in report
    for method in ("vanilla", "r2et"):  # the second claim's verdict, where both rhos are defined
        claim = entry["correlation"][method]["claim"]
        assert claim is None or (claim["verdict"] in ("supported", "not supported", "undecided")
                                 and len(claim["seed_differences"]) == 2)


def test_study_seeds_limits_the_studies(tmp_path):
    entry = reproduce(_cfg(tmp_path, study_seeds=1), progress=False)["datasets"]["compas"]
    assert "variants.json" in _seed_files(tmp_path, 0)
    assert not {"variants.json", "correlation.json", "evaluation_k4.json"} & _seed_files(tmp_path, 1)
    assert entry["table1"]["vanilla"]["cauc"]["std"] >= 0  # Table 1 still has both seeds
    assert entry["variants"]["vanilla"]["ig"]["seeds"] == 1 and entry["k_grid"][0]["cauc"]["seeds"] == 1


def test_study_seeds_is_validated(tmp_path, capsys):
    for bad in (0, 3, 1.5, True):
        with pytest.raises(ValueError, match="study_seeds"):
            ReproduceConfig(seeds=2, study_seeds=bad)
    with pytest.raises(SystemExit) as exit_info:  # a usage error, no traceback
        cli.main(["reproduce", "--quick", "--datasets", "compas", "--seeds", "1", "--study-seeds", "2",
                  "--out", str(tmp_path), "--no-progress"])
    assert exit_info.value.code == 2 and "study_seeds" in capsys.readouterr().err


def test_records_without_per_sample_values_give_mean_and_std_only():
    old = [{"smoothgrad": 0.5, "ig": 0.7}, {"smoothgrad": 0.6, "ig": 0.9}]
    cell = study_summary.variants(old, 100, 0)["ig"]
    assert cell == {"mean": pytest.approx(0.8), "std": pytest.approx(np.std([0.7, 0.9], ddof=1)), "seeds": 2}
    mixed = [old[0], {**old[1], "per_sample": {"smoothgrad": [0.5, 0.7], "ig": [0.9, 0.9]}}]
    assert "ci95" not in study_summary.variants(mixed, 100, 0)["smoothgrad"]


def test_spearman_interval_brackets_the_statistic():
    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    y = x + rng.normal(scale=1.0, size=200)
    rho = scipy.stats.spearmanr(x, y).statistic
    lo, hi = study_summary.spearman_interval([(x, y)], 500, 0)
    assert lo < rho < hi and hi - lo < 0.3
    rows = study_summary._spearman_rows(np.stack([x, x]), np.stack([y, -y]))
    assert rows == pytest.approx([rho, -rho])
    assert study_summary.spearman_interval([(x, np.ones(200))], 100, 0) is None  # constant: undefined


def test_report_json_round_trip(tmp_path):
    """results.json holds the summaries (no per-sample arrays but the correlation figure's points)."""
    reproduce(_cfg(tmp_path, methods=("vanilla",), k_grid=()), progress=False)
    entry = json.loads((tmp_path / "results.json").read_text())["datasets"]["compas"]
    assert "per_sample" not in json.dumps(entry["variants"]) + json.dumps(entry["constrained"])


def test_report_cells_say_how_many_seeds_they_average():
    from r2et_fast.experiments import _report_studies

    two = {"mean": 0.5, "std": 0.1, "seeds": 2, "ci95": [0.4, 0.6]}
    one = {"mean": 0.5, "std": 0.0, "seeds": 1}
    assert _report_studies.fmt_stat(two) == "0.5000 ± 0.1000 [0.400, 0.600]"
    assert _report_studies._rho(one, 2) == "0.5000 (1 of 2 seeds)" and _report_studies._rho(None, 2) == "n/a"
    entry = {"faithfulness": {"vanilla": {k: two for k in ("dffot", "comp", "suff")}},
             "correlation": {"vanilla": {"spearman_thickness_epoch": one, "spearman_hessian_epoch": None}}}
    text = "\n".join(_report_studies.study_lines(entry, resamples=0))
    assert "first 2 seed(s): mean ± std over them." in text and "bootstrap" not in text
    assert "| Vanilla | 0.5000 (1 of 2 seeds) | n/a |" in text


def test_thickness_verdict_is_paired_and_counts_seeds():
    rng = np.random.default_rng(2)

    def record(strength: float) -> dict:
        epoch = rng.normal(size=300)
        thick, hess = epoch + rng.normal(scale=0.5, size=300), epoch * strength + rng.normal(size=300)
        rho = [scipy.stats.spearmanr(v, epoch).statistic for v in (thick, hess)]
        return {"thickness": thick.tolist(), "hessian": hess.tolist(), "epoch": epoch.tolist(),
                "spearman_thickness_epoch": rho[0], "spearman_hessian_epoch": rho[1]}

    clear = study_summary.thickness_verdict([record(0.0), record(0.0)], 300, 0)
    assert clear["verdict"] == "supported" and clear["seeds_higher"] == 2 and clear["ci"][0] > 0
    assert clear["difference"] == pytest.approx(np.mean(clear["seed_differences"]))
    reverse = study_summary.thickness_verdict([record(5.0)], 300, 0)  # the Hessian norm tracks it better
    assert reverse["verdict"] == "not supported" and reverse["seeds_higher"] == 0
    assert study_summary.thickness_verdict([record(0.0)], 0, 0) is None  # no resamples, no verdict
    undefined = {**record(0.0), "spearman_hessian_epoch": None}
    assert study_summary.thickness_verdict([undefined], 100, 0) is None
    summary = study_summary.correlation([record(0.0)], 200, 0)
    assert summary["claim"]["verdict"] == "supported"
