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
    assert early["sensitivity"] == 0.0  # early stop never changes a prediction
    # model selection ran over the grids and picked one value per regularised method
    assert set(entry["selected"]) == {"r2et", "est_h"}
    for method in ("r2et", "est_h"):
        assert len(entry["selected"][method]) == 1
    for row in entry["variants"].values():
        assert 0.0 <= row["smoothgrad"] <= 1.0 and 0.0 <= row["ig"] <= 1.0
    assert {(r["method"], r["k"], r["n_pairs"]) for r in entry["k_grid"]} == {
        ("vanilla", 4, None), ("vanilla", 8, None), ("r2et", 4, None), ("r2et", 8, None),
        ("r2et_mm", 8, 2), ("r2et_mm", 8, 4)}
    assert all(0.0 <= r["precision_at_k_erattack"] <= 1.0 for r in entry["k_grid"])
    report = (out / "report.md").read_text()
    assert "### Table 1" in report and "| R2ET |" in report and "SmoothGrad" in report
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 5 and all(p.stat().st_size > 1000 for p in pngs)
    assert all(f"]({p.name})" in report for p in pngs)
    # a second run reuses every cached model and evaluation and gives the same results
    before = (out / "results.json").read_text()
    assert cli.main(args) == 0
    assert json.loads((out / "results.json").read_text()) == json.loads(before)
