"""A --quick reproduce end to end (one data set, a few methods): report structure and sanity,
figures written, resume from the cache."""

from __future__ import annotations

import json

from r2et_fast import cli


def test_quick_reproduce(tmp_path, capsys):
    out = tmp_path / "rep"
    args = ["reproduce", "--quick", "--datasets", "compas", "--methods", "vanilla", "r2et", "est_h",
            "--out", str(out), "--no-progress"]
    assert cli.main(args) == 0
    results = json.loads((out / "results.json").read_text())
    entry = results["datasets"]["compas"]
    assert set(entry["table1"]) == {"vanilla", "r2et", "est_h"}
    for row in entry["table1"].values():
        for key in ("precision_at_k_erattack", "precision_at_k_mse"):
            assert 0.0 <= row[key]["mean"] <= 1.0
        assert 0.5 <= row["cauc"]["mean"] <= 1.0 and 0.0 <= row["aauc"]["mean"] <= 1.0
        assert row["aauc"]["mean"] <= row["cauc"]["mean"] + 0.05  # the attack does not help the model
    assert set(entry["correlation"]) == {"vanilla", "r2et"}
    assert {r["constraint"] for r in entry["constrained"]} == {"none", "early_stop", "gda", "hedge", "qp",
                                                                "fixed"}
    early = next(r for r in entry["constrained"] if r["constraint"] == "early_stop")
    assert early["sensitivity"]["mean"] == 0.0  # early stop never changes a prediction
    # model selection ran over the grids and picked one value per regularised method
    assert set(entry["selected"]) == {"r2et", "est_h"}
    for method in ("r2et", "est_h"):
        assert len(entry["selected"][method]) == 1
    for row in entry["variants"].values():  # one seed: its mean and the interval over test samples
        for name in ("smoothgrad", "ig"):
            lo, hi = row[name]["ci95"]
            assert 0.0 <= lo <= row[name]["mean"] <= hi <= 1.0 and row[name]["seeds"] == 1
    assert {(r["method"], r["k"], r["n_pairs"]) for r in entry["k_grid"]} == {
        ("vanilla", 4, None), ("vanilla", 8, None), ("r2et", 4, None), ("r2et", 8, None),
        ("r2et_mm", 8, 2), ("r2et_mm", 8, 4)}
    assert all(0.0 <= r["precision_at_k_erattack"]["mean"] <= 1.0 for r in entry["k_grid"])
    assert all("ci95" in r["precision_at_k_erattack"] for r in entry["k_grid"])
    # the budget curves: quick's grid of eps multiples (COMPAS: eps = 1), both attacks, every method
    curves = entry["budget_curves"]
    assert curves["eps"] == [1 / 16, 1 / 2, 4.0] and set(curves["methods"]) == set(entry["table1"])
    for method, row in entry["table1"].items():
        for key in ("precision_at_k_erattack", "precision_at_k_mse"):
            lo, hi = row[key]["ci95"]  # the bootstrap interval holds the mean (one seed)
            assert 0.0 <= lo <= row[key]["mean"] <= hi <= 1.0
            assert 0.0 <= row[f"auc_{key}"]["mean"] <= 1.0 and len(curves["methods"][method][key]) == 3
    assert {(c["baseline"], c["metric"]) for c in entry["claims"]} == {
        (b, m) for b in ("vanilla", "est_h") for m in ("precision_at_k_erattack", "precision_at_k_mse")}
    assert all(c["verdict"] in ("supported", "not supported", "undecided") for c in entry["claims"])
    report = (out / "report.md").read_text()
    assert "eps-AUC ERAttack" in report and "higher than Vanilla's: **" in report
    assert "### Table 1" in report and "| R2ET |" in report and "SmoothGrad" in report
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 7 and all(p.stat().st_size > 1000 for p in pngs)
    assert (out / "compas_budget.png").is_file() and (out / "compas_validation.png").is_file()
    # the validation AUC after each of quick's 2 epochs, per method and seed, from the training logs
    assert set(entry["validation_auc"]) == set(entry["table1"])
    assert all(len(runs) == 1 and len(runs[0]) == 2 and all(0.0 <= v <= 1.0 for v in runs[0])
               for runs in entry["validation_auc"].values())
    assert "### Validation AUC per epoch" in report
    assert "; higher in 1 of 1 seed)" in report or "; higher in 0 of 1 seed)" in report
    assert all(f"]({p.name})" in report for p in pngs)
    # a second run reuses every cached model and evaluation and gives the same results
    before = (out / "results.json").read_text()
    assert cli.main(args) == 0
    assert json.loads((out / "results.json").read_text()) == json.loads(before)
