"""The demo job and the CLI, end to end on a small budget."""

from __future__ import annotations

import json

import pytest

from r2et_fast import cli
from r2et_fast.experiments import DemoConfig, run_demo


def test_demo_is_seeded_and_sane():
    cfg = DemoConfig(n_samples=1000, epochs=10)
    first, second = run_demo(cfg, progress=False), run_demo(cfg, progress=False)
    assert first == second  # deterministic on CPU
    assert first["test_accuracy"] > 0.8
    m = first["metrics"]
    assert 0.0 <= m["precision_at_k"]["mean"] <= 1.0
    for name in ("kendall_tau", "kendall_tau_topk", "spearman", "pearson", "cosine"):
        assert -1.0 <= m[name]["mean"] <= 1.0
    assert m["mse"]["mean"] >= 0.0
    # a little input noise leaves explanations of a smooth-enough model largely in place
    assert m["precision_at_k"]["mean"] > 0.5


def test_cli_demo_writes_json(tmp_path, capsys):
    out = tmp_path / "res" / "demo.json"
    assert cli.main(["demo", "--epochs", "2", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "precision_at_k" in printed and "test accuracy" in printed
    data = json.loads(out.read_text())
    assert data["job"] == "demo" and "kendall_tau" in data["metrics"]


def test_cli_info(capsys):
    assert cli.main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backend"] in ("native", "reference")
    assert set(info["native_kernels"]) >= {"kendall_tau", "precision_at_k"}


def test_cli_rejects_unknown_command():
    with pytest.raises(SystemExit):
        cli.main(["fly"])
