"""The attack protocol end to end on a small budget: attack_model, compare_methods, model selection
and the CLI's train/attack/compare commands on a shipped data set."""

from __future__ import annotations

import json

import pytest

from r2et_fast import cli
from r2et_fast.datasets import make_tabular
from r2et_fast.experiments import _cache
from r2et_fast.experiments._cache import data_key
from r2et_fast.experiments.protocol import AttackConfig, attack_model, compare_methods, select_model
from r2et_fast.train import TrainConfig, train

ATTACK = AttackConfig(k=4, alpha=0.02, steps=15, max_samples=60)


@pytest.fixture(scope="module")
def data():
    return make_tabular(n_samples=500, n_features=10, seed=1)


def test_attack_model_scores_are_sane(data):
    model = train(data, TrainConfig(epochs=3, k=4), progress=False).model
    s = attack_model(model, data, ATTACK, progress=False)
    assert s["n"] == 60
    assert 0 <= s["precision_at_k"] <= 1 and 0 <= s["label_kept"] <= 1
    assert 0.5 <= s["cauc"] <= 1 and 0 <= s["aauc"] <= 1
    assert 0 <= s["manipulation_epoch"] <= ATTACK.steps + 1


def test_compare_methods_table(data, tmp_path):
    rows = compare_methods(data, ["vanilla", "r2et"], dict(epochs=2, k=4), ATTACK, out_dir=tmp_path,
                           progress=False)
    assert [r["label"] for r in rows] == ["Vanilla", "R2ET"]
    assert (tmp_path / "r2et" / "model.pt").is_file()


def test_compare_with_model_selection(data, tmp_path):
    rows = compare_methods(data, ["r2et_noh"], dict(epochs=2, k=4), ATTACK, out_dir=tmp_path,
                           lambda_gap_grid=[0.1, 0.5], selection_threshold=1.0, progress=False)
    (row,) = rows
    assert len(row["selection"]) == 2 and sum(bool(r.get("chosen")) for r in row["selection"]) == 1
    assert row["config"]["lambda_gap"] in (0.1, 0.5)
    assert (tmp_path / "vanilla" / "model.pt").is_file()
    assert (tmp_path / "r2et_noh" / "lambda_gap=0.5" / "model.pt").is_file()


@pytest.fixture
def trainings(monkeypatch):
    """The TrainConfigs that compare_methods trains (the training itself still runs)."""
    seen: list[TrainConfig] = []

    def counting(data, cfg, **kw):
        seen.append(cfg)
        return train(data, cfg, **kw)

    monkeypatch.setattr(_cache, "train", counting)
    return seen


def test_compare_retrains_only_when_the_data_or_the_config_changes(data, tmp_path, trainings):
    def compare(d, seed, **train_cfg):
        return compare_methods(d, ["vanilla"], dict(epochs=1, k=4, **train_cfg), ATTACK, out_dir=tmp_path,
                               trained_on=data_key("synthetic", seed, None), progress=False)

    first = compare(data, 1)
    assert len(trainings) == 1
    assert compare(data, 1) == first and len(trainings) == 1  # unchanged: the model is reused
    other = make_tabular(n_samples=500, n_features=10, seed=2)
    compare(other, 2)  # another split seed and data: retrained in place
    assert len(trainings) == 2
    compare(data, 2)  # the same key on other data: the digest of the data tells them apart
    assert len(trainings) == 3
    compare(data, 1, lr=1e-2)  # another TrainConfig
    assert len(trainings) == 4 and trainings[-1].lr == 1e-2
    compare(data, 1, lr=1e-2)
    assert len(trainings) == 4


def test_cli_compare_retrains_on_another_data_seed(tmp_path, trainings, capsys):
    def compare(*extra):
        assert cli.main(["compare", "--dataset", "compas", "--methods", "vanilla", "--epochs", "1",
                         "--steps", "2", "--max-samples", "20", "--out", str(tmp_path), "--no-progress",
                         *extra]) == 0
        return json.loads((tmp_path / "compas" / "results.json").read_text())

    first = compare()
    assert compare("--data-seed", "0") == first and len(trainings) == 1
    assert compare("--data-seed", "1") != first and len(trainings) == 2
    compare("--data-seed", "1")
    assert len(trainings) == 2


def test_select_model_prefers_robust_within_threshold(data):
    vanilla = train(data, TrainConfig(epochs=3, k=4), progress=False)
    grid = [train(data, TrainConfig(method="r2et", epochs=3, k=4, lambda_gap=g), progress=False)
            for g in (0.0, 0.3)]
    vanilla_auc = vanilla.history[-1]["val_auc"]
    chosen, records = select_model(grid, data, ATTACK, vanilla_auc, threshold=1.0)
    best = max(records, key=lambda r: r["val_precision_at_k"])
    assert best.get("chosen") and chosen.config.to_dict() == best["config"]
    # with no tolerance at all only candidates at least as accurate as Vanilla are eligible
    _, strict = select_model(grid, data, ATTACK, vanilla_auc=2.0, threshold=0.0)
    assert not any(r["eligible"] for r in strict) and sum(bool(r.get("chosen")) for r in strict) == 1
    with pytest.raises(ValueError, match="candidates must not be empty"):
        select_model([], data, ATTACK, 0.9)


def test_cli_train_attack_compare_on_compas(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "--dataset", "compas", "--method", "r2et", "--epochs", "1", "--k", "4",
                     "--out", str(run), "--no-progress"]) == 0
    assert cli.main(["attack", "--model", str(run / "model.pt"), "--steps", "5", "--alpha", "0.05",
                     "--k", "4", "--max-samples", "50", "--out", str(tmp_path / "a.json"),
                     "--no-progress"]) == 0
    scores = json.loads((tmp_path / "a.json").read_text())
    assert scores["dataset"] == "compas" and scores["method"] == "r2et" and scores["n"] == 50
    assert cli.main(["compare", "--dataset", "compas", "--methods", "vanilla", "est_h", "--epochs", "1",
                     "--steps", "3", "--max-samples", "40", "--out", str(tmp_path / "cmp"),
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| Vanilla |" in out and "| Est-H |" in out and "cAUC" in out
    assert cli.main(["list"]) == 0
    assert "r2et_mm_noh" in capsys.readouterr().out
