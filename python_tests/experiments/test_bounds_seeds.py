"""`bounds --seeds N`: each seed in its own folder with its own seeds and split, the headline pooled
over the seeds' samples, and the CLI flag."""

from __future__ import annotations

import json

import pytest

from r2et_fast import cli
from r2et_fast.experiments.bounds import BoundsConfig, run_bounds

TINY = dict(methods=("vanilla",), poolings=("avg",), max_train=200, n_samples=2, restarts=2, steps=2,
            topk_steps=4, l2_eps=(0.05,), linf_eps=(0.01,))


def test_seeds_run_apart_and_pool(tmp_path):
    cfg = BoundsConfig.quick_defaults(out=str(tmp_path), seeds=2, **TINY)
    results = run_bounds(cfg, progress=False)
    assert [(e["seed"], e["data_seed"], e["folder"]) for e in results["seeds"]] == [(0, 0, "seed0"),
                                                                                     (1, 1, "seed1")]
    per_seed = [json.loads((tmp_path / f"seed{s}" / "results.json").read_text()) for s in (0, 1)]
    assert [r["config"]["seed"] for r in per_seed] == [0, 1]
    assert all(r["config"]["seeds"] == 1 for r in per_seed)
    assert all((tmp_path / f"seed{s}" / "report.md").is_file() for s in (0, 1))
    # each seed trained its own model: different weights give different bounds
    t_e = [[r["certificate"]["t_e"] for r in res["runs"]] for res in per_seed]
    assert t_e[0] != t_e[1]
    # pooled: twice the samples of one seed, shares weighted by samples, the smallest r of any seed
    for pooled in results["headline"]:
        own = [next(h for h in res["headline"] if (h["pooling"], h["attribution"], h["norm"]) ==
                    (pooled["pooling"], pooled["attribution"], pooled["norm"])) for res in per_seed]
        assert pooled["n"] == sum(h["n"] for h in own)
        assert pooled["min_tightness_r"] == min(h["min_tightness_r"] for h in own)
        for field in ("pct_t_e_exceeded_by_strong_pgd", "pct_outside_t_c"):
            assert pooled[field] == pytest.approx(sum(h[field] * h["n"] for h in own) / pooled["n"])
    report = (tmp_path / "report.md").read_text()
    assert "## Headline, pooled over the seeds' samples" in report and "](seed1/report.md)" in report
    assert report.count("| 1 | avg | saliency |") == 2  # seed 1's l2 and linf rows
    assert json.loads((tmp_path / "results.json").read_text())["config"]["seeds"] == 2


def test_cli_seeds_flag_and_validation(tmp_path, monkeypatch):
    seen: list[BoundsConfig] = []
    monkeypatch.setattr("r2et_fast.experiments.bounds.run_bounds",
                        lambda cfg, **_: seen.append(cfg) or {"headline": []})
    assert cli.main(["bounds", "--quick", "--seeds", "3", "--out", str(tmp_path), "--no-progress"]) == 0
    assert seen[0].seeds == 3
    with pytest.raises(ValueError, match="seeds must be a positive int"):
        BoundsConfig(seeds=0)
