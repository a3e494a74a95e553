"""A tiny reproduce on MNIST pairs end to end: the siamese CNN trains, ERAttack and the MSE attack
run on it, Exact-H refuses by size with its reason, and the case-study figure is written."""

from __future__ import annotations

import json

from r2et_fast.experiments.reproduce import ReproduceConfig, reproduce


def test_tiny_image_reproduce(tmp_path):
    cfg = ReproduceConfig.quick_defaults(
        datasets=("mnist",), methods=("vanilla", "r2et", "exact_h"), out=str(tmp_path), epochs=1,
        max_train=128, max_test=4, steps=4, selection_steps=2, selection_samples=8, correlation_samples=4,
        thickness_samples=2, thickness_path=2, faithfulness_samples=4, variant_samples=4, variant_steps=2,
        smoothgrad_samples=2, ig_steps=2, k_grid=(), constraints=("none", "early_stop", "qp"))
    results = reproduce(cfg, progress=False)
    entry = results["datasets"]["mnist"]
    assert entry["modality"] == "image" and entry["budget"]["k"] == 50
    assert set(entry["table1"]) == {"vanilla", "r2et"}
    assert "refusing" in entry["refused"]["exact_h"]
    for row in entry["table1"].values():
        assert 0.0 <= row["precision_at_k_erattack"]["mean"] <= 1.0
    case = entry["case_study"]["r2et"]
    assert case["shape"] == [2, 28, 28] and len(case["clean"]) == 1568
    assert all(0.0 <= v <= 1.0 for v in case["x_adv"])  # pixels stay valid
    assert max(abs(a - b) for a, b in zip(case["x_adv"], case["x"])) <= 0.1 + 1e-4
    assert (tmp_path / "mnist_case_study.png").stat().st_size > 1000
    report = (tmp_path / "report.md").read_text()
    assert "Exact-H: not trained" in report
    assert json.loads((tmp_path / "results.json").read_text())["datasets"]["mnist"]["refused"]
