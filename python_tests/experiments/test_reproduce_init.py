"""`reproduce --init pretrained` (docs/spec.md §9): the regularised methods fine-tune the seed's
Vanilla model with the authors' settings, the cache tells the two inits apart, and the default
(from scratch) is unchanged."""

from __future__ import annotations

import json

import pytest
import torch

from r2et_fast import cli
from r2et_fast._io import load_torch
from r2et_fast.experiments._cache import StartFrom, model_key
from r2et_fast.experiments.reproduce import ReproduceConfig, reproduce
from r2et_fast.train import TrainConfig
from r2et_fast.train._trainer import Trainer

MAX_TRAIN, BATCH = 300, 256  # COMPAS' MLP trains with the default batch size


def _cfg(out, **overrides) -> ReproduceConfig:
    small = dict(datasets=("compas",), methods=("vanilla", "r2et"), out=str(out), max_train=MAX_TRAIN,
                 max_test=16, selection_samples=16, correlation_samples=8, thickness_samples=2,
                 thickness_path=2, faithfulness_samples=8, variant_samples=8, variant_steps=2,
                 smoothgrad_samples=2, ig_steps=2, k_grid=(), eps_multipliers=(), constraints=("none",),
                 bootstrap_resamples=20, finetune_grid=(1e-3, 1.0))
    return ReproduceConfig.quick_defaults(**{**small, **overrides})


@pytest.fixture
def fits(monkeypatch):
    """Every Trainer.fit: (its config, its run folder, the model's weights when it starts)."""
    calls: list[tuple[TrainConfig, object, dict]] = []
    fit = Trainer.fit

    def spy(self, *args, **kwargs):
        state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        calls.append((self.cfg, self.out, state))
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", spy)
    return calls


def _weights(path) -> dict:
    return load_torch(path)["state_dict"]


def _selection_keys(path) -> list[dict]:
    return json.loads(path.read_text())["key"]["model"]


def test_pretrained_fine_tunes_vanilla_and_is_cached_apart(tmp_path, fits):
    out = tmp_path / "rep"
    cfg = _cfg(out, init="pretrained")
    entry = reproduce(cfg, progress=False)["datasets"]["compas"]
    root = out / "runs" / "compas" / "seed0"
    vanilla = _weights(root / "vanilla" / "model.pt")
    trained = {str(run.relative_to(root)): (c, state) for c, run, state in fits}
    assert set(trained) == {"vanilla", "pretrained/r2et_lambda_gap=0.001", "pretrained/r2et_lambda_gap=1"}
    assert trained["vanilla"][0].lr == 1e-3 and not trained["vanilla"][0].adaptive  # Vanilla as before
    steps = cfg.finetune_epochs * -(-MAX_TRAIN // BATCH)
    for name in ("pretrained/r2et_lambda_gap=0.001", "pretrained/r2et_lambda_gap=1"):
        tcfg, start = trained[name]
        # the authors' optimizer settings and adaptive weights, from Vanilla's weights
        assert (tcfg.lr, tcfg.epochs, tcfg.adaptive) == (1e-5, cfg.finetune_epochs, True)
        assert start.keys() == vanilla.keys()
        assert all(torch.equal(start[k], vanilla[k]) for k in vanilla)
        log = json.loads((root / name / "log.json").read_text())
        assert len(log["history"]) == cfg.finetune_epochs and log["config"]["lr"] == 1e-5
        # Adam moves each weight by a few lr per step at most: the model stays near Vanilla
        tuned = _weights(root / name / "model.pt")
        assert 0 < max((tuned[k] - vanilla[k]).abs().max().item() for k in vanilla) <= 4e-5 * steps
    assert entry["init"] == "pretrained" and set(entry["table1"]) == {"vanilla", "r2et"}
    assert entry["selected"]["r2et"][0] in (1e-3, 1.0)
    assert "fine-tuned from the selected Vanilla" in (out / "report.md").read_text()
    # the cache keys name the init mode and the Vanilla model fine-tuned
    van_key = json.loads((root / "vanilla" / "model_key.json").read_text())
    tuned_keys = _selection_keys(root / "pretrained" / "r2et_selection.json")
    assert all(k["init"] == {"mode": "pretrained", "from": van_key} for k in tuned_keys)

    # from scratch in the same folder: other run folders and keys; Vanilla is reused, not retrained
    fits.clear()
    scratch = reproduce(_cfg(out), progress=False)["datasets"]["compas"]
    assert sorted(str(run.relative_to(root)) for _, run, _ in fits) == ["r2et_lambda_gap=0.1",
                                                                         "r2et_lambda_gap=0.3"]
    assert all(c.lr == 1e-3 and not c.adaptive for c, _, _ in fits)
    assert all("init" not in k for k in _selection_keys(root / "r2et_selection.json"))
    assert scratch["init"] == "scratch" and scratch["table1"]["vanilla"] == entry["table1"]["vanilla"]
    assert scratch["table1"]["r2et"] != entry["table1"]["r2et"]

    # both inits side by side: everything comes from the cache (nothing trains), readers of the
    # data set's entry keep the scratch results
    fits.clear()
    both = reproduce(_cfg(out, init="both"), progress=False)
    assert fits == []
    entry_both = both["datasets"]["compas"]
    assert entry_both["table1"] == scratch["table1"]
    assert entry_both["pretrained"]["table1"] == entry["table1"]
    report = (out / "report.md").read_text()
    assert "### From scratch vs fine-tuned from Vanilla" in report and "| R2ET |" in report
    # the fine-tuned models' claims carry their own verdicts, and the grid they swept is named
    assert entry_both["pretrained"]["finetune_grid"] == [1e-3, 1.0]
    assert "### The paper's claims, fine-tuned" in report
    assert "Fine-tuning weights: 0.001, 1 (adaptive)" in report
    # the fine-tuned models' studies have their own section (Vanilla's constrained attacks only once)
    tuned = report[report.index("### Studies of the fine-tuned models"):]
    assert "#### Faithfulness (saliency of the loss), fine-tuned" in tuned and "Constrained" not in tuned
    assert "The studies of the fine-tuned models ran on the first 1 seed(s)" in tuned


def test_default_init_is_scratch_and_keys_unchanged(tmp_path, monkeypatch):
    assert ReproduceConfig().init == "scratch" and ReproduceConfig.quick_defaults().init == "scratch"
    with pytest.raises(ValueError, match="init must be one of"):
        ReproduceConfig(init="warm")
    tcfg, data = TrainConfig(method="r2et"), {"dataset": "compas"}
    assert set(model_key(tcfg, data)) == {"version", "train", "data"}  # scratch keys as before
    vanilla = model_key(TrainConfig(), data)
    assert model_key(tcfg, data, StartFrom(tmp_path / "model.pt", vanilla)) == {
        **model_key(tcfg, data), "init": {"mode": "pretrained", "from": vanilla}}
    # the CLI: scratch unless --init says otherwise
    seen: list[ReproduceConfig] = []
    monkeypatch.setattr("r2et_fast.experiments.reproduce.reproduce", lambda cfg, **_: seen.append(cfg))
    args = ["reproduce", "--quick", "--datasets", "compas", "--out", str(tmp_path), "--no-progress"]
    assert cli.main(args) == 0 and cli.main([*args, "--init", "pretrained"]) == 0
    assert [c.init for c in seen] == ["scratch", "pretrained"]


def test_finetune_grid_resolution():
    """The config's grid, else the data set's (images and graphs sweep three values), else the authors'."""
    from r2et_fast.experiments._specs import COSTLY_FINETUNE_GRID, get_spec
    from r2et_fast.experiments.reproduce import AUTHORS_FINETUNE_GRID, finetune_grid

    assert AUTHORS_FINETUNE_GRID == (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
    assert finetune_grid(get_spec("adult"), ReproduceConfig()) == AUTHORS_FINETUNE_GRID
    assert finetune_grid(get_spec("mnist"), ReproduceConfig()) == COSTLY_FINETUNE_GRID
    assert finetune_grid(get_spec("graphs"), ReproduceConfig(finetune_grid=(0.5,))) == (0.5,)
    # the protocol's grid is part of the study keys only where it is set (older tabular caches stay valid)
    from r2et_fast.experiments.reproduce import _key, budget

    for name, keyed in (("adult", False), ("mnist", True)):
        spec, cfg = get_spec(name), ReproduceConfig()
        assert ("finetune_grid" in _key("evaluation", spec, cfg, {}, budget(spec, cfg))["protocol"]) is keyed
    with pytest.raises(ValueError, match="finetune_grid"):
        ReproduceConfig(finetune_grid=())
    with pytest.raises(ValueError, match="k_grid_on"):
        ReproduceConfig(datasets=("compas",), k_grid_on="adult")
    with pytest.raises(ValueError, match="constrained_samples"):
        ReproduceConfig(constrained_samples=0)
    for bad in ((0.1, float("nan")), (-1.0,), (0.0, 1.0), (True,)):
        with pytest.raises(ValueError, match="finetune_grid must hold finite weights > 0"):
            ReproduceConfig(finetune_grid=bad)
    for bad in (2.5, True):
        with pytest.raises(ValueError, match="constrained_samples must be an int >= 1"):
            ReproduceConfig(constrained_samples=bad)


def test_k_grid_on_none_skips_the_study(tmp_path, monkeypatch):
    entry = reproduce(_cfg(tmp_path, methods=("vanilla",), k_grid=(4,), n_pairs_grid=(2,), k_grid_on="none"),
                      progress=False)["datasets"]["compas"]
    assert "k_grid" not in entry and not (tmp_path / "runs" / "compas" / "seed0" / "kgrid").exists()
    seen: list[ReproduceConfig] = []
    monkeypatch.setattr("r2et_fast.experiments.reproduce.reproduce", lambda cfg, **_: seen.append(cfg))
    args = ["reproduce", "--quick", "--datasets", "compas", "--out", str(tmp_path), "--no-progress"]
    assert cli.main([*args, "--k-grid-on", "none"]) == 0 and cli.main(args) == 0
    assert [c.k_grid_on for c in seen] == ["none", None]
