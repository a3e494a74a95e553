"""A tiny reproduce on BZR molecule pairs end to end (siamese GCN): training, ERAttack and the MSE
attack on the adjacency explanation, symmetric valid perturbations, the adjacency heat map."""

from __future__ import annotations

from r2et_fast.experiments.reproduce import ReproduceConfig, reproduce


def test_tiny_graph_reproduce(tmp_path):
    cfg = ReproduceConfig.quick_defaults(
        datasets=("bzr",), methods=("vanilla", "r2et"), out=str(tmp_path), epochs=1, max_train=64,
        max_test=4, steps=3, selection_steps=2, selection_samples=8, correlation_samples=4,
        thickness_samples=2, thickness_path=2, faithfulness_samples=4, variant_samples=4, variant_steps=2,
        smoothgrad_samples=2, ig_steps=2, k_grid=(), constraints=("none", "early_stop"))
    entry = reproduce(cfg, progress=False)["datasets"]["bzr"]
    assert entry["modality"] == "graph" and set(entry["table1"]) == {"vanilla", "r2et"}
    assert entry["selected"]["r2et"] and len(entry["selected"]["r2et"]) == 1
    for row in entry["table1"].values():
        assert 0.0 <= row["precision_at_k_erattack"]["mean"] <= 1.0
    case = entry["case_study"]["vanilla"]
    assert case["shape"] == [2, 406]
    # the explanation of a graph pair is non-negative and sums to 1 (grad x input, normalised)
    assert min(case["clean"]) >= 0 and abs(sum(case["clean"]) - 1) < 1e-3
    assert all(0.0 <= v <= 1.0 for v in case["x_adv"])
    assert max(abs(a - b) for a, b in zip(case["x_adv"], case["x"])) <= 0.1 + 1e-4
    assert (tmp_path / "bzr_case_study.png").stat().st_size > 1000
