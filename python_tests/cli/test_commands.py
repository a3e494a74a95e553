"""The command line package: `r2et-fast list` names everything the registries hold, `--engine`
reaches the TrainConfig of every command that trains, bad input ends in one error line, and
`python -m r2et_fast.cli` runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import r2et_fast.experiments.bounds as bounds_module
import r2et_fast.experiments.reproduce as reproduce_module
from r2et_fast.attacks import ATTACKS
from r2et_fast.cli import build_parser, main
from r2et_fast.datasets import DATASETS
from r2et_fast.engine import engine_names
from r2et_fast.experiments._specs import SPECS
from r2et_fast.explain import EXPLAINERS
from r2et_fast.train import METHOD_LABELS, METHODS, load_model

EXPECTED = {
    "datasets": {"adult", "bank", "compas", "mnist", "graphs", "bzr", "brain"},
    "methods": set(METHODS),
    "attacks": {"erattack", "mse", "topk", "pgd"},
    "attributions": {"saliency", "gradxinput", "smoothgrad", "ig", "adjacency"},
    "engines": {"auto", "autograd", "batched"},
}


def test_list_names_every_registered_item(capsys):
    assert main(["list", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    listed = {group: {e["name"] for e in items} for group, items in entries.items()}
    registries = {"datasets": {*DATASETS, *SPECS}, "methods": set(METHOD_LABELS), "attacks": set(ATTACKS),
                  "attributions": set(EXPLAINERS), "engines": set(engine_names())}
    for group, names in registries.items():
        assert names | EXPECTED[group] <= listed[group], group
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    for names in (*EXPECTED.values(), set(METHOD_LABELS.values())):
        assert all(name in text for name in names)
    assert ".mat" in text and ".npz" in text  # how a brain-network file is given
    for cls in ("ERAttack", "MSEAttack", "TopKAttack", "AttributionPGD", "SmoothGrad", "IntegratedGradients"):
        assert cls in text


def test_list_names_the_commands_that_take_each_data_set(capsys):
    assert main(["list", "--json"]) == 0
    datasets = {d["name"]: d for d in json.loads(capsys.readouterr().out)["datasets"]}
    assert datasets["compas"]["commands"] == ["attack", "certify", "compare", "reproduce", "train"]
    assert set(datasets["mnist"]["commands"]) == {"attack", "certify", "reproduce", "train", "bounds"}
    for graphs in ("graphs", "bzr"):
        assert datasets[graphs]["commands"] == ["attack", "certify", "reproduce", "train"]
    assert datasets["brain"]["commands"] == ["attack", "certify", "train"]  # --dataset FILE.npz


def _subcommands():
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices


@pytest.mark.parametrize("command", ["train", "compare", "reproduce", "bounds"])
def test_engine_choices_come_from_the_registry(command):
    (engine,) = [a for a in _subcommands()[command]._actions if a.dest == "engine"]
    assert tuple(engine.choices) == engine_names() and engine.default is None


def test_engine_reaches_the_trained_model(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "compas", "--method", "vanilla", "--epochs", "1", "--engine",
                 "autograd", "--out", str(run), "--no-progress"]) == 0
    assert load_model(run / "model.pt")[1].engine == "autograd"


def test_engine_reaches_reproduce_and_bounds(tmp_path, monkeypatch):
    seen = []  # the configs the commands ran with (the runs themselves are skipped)
    monkeypatch.setattr(reproduce_module, "reproduce", lambda cfg, progress: seen.append(cfg))
    monkeypatch.setattr(bounds_module, "run_bounds",
                        lambda cfg, progress: seen.append(cfg) or {"headline": []})
    for command in (["reproduce", "--datasets", "compas"], ["bounds"]):
        assert main([*command, "--quick", "--engine", "batched", "--out", str(tmp_path)]) == 0
        assert main([*command, "--quick", "--out", str(tmp_path)]) == 0
    rep_batched, rep_default, bd_batched, bd_default = seen
    assert rep_batched.engine == "batched" and rep_default.engine == "auto"
    assert bd_batched.train_config("r2et").engine == "batched"
    assert bd_default.train_config("r2et").engine == "auto"


def test_bad_input_ends_in_one_error_line(tmp_path, capsys):
    # a library refusal (here a missing file) and an argparse refusal: the same one-line style
    for argv, reason in ((["attack", "--model", str(tmp_path / "nope.pt")], "--model"),
                         (["train", "--dataset", "compas", "--engine", "nope"], "argument --engine")):
        with pytest.raises(SystemExit) as err:
            main(argv)
        assert err.value.code == 2
        stderr = capsys.readouterr().err
        assert stderr.startswith(f"r2et-fast {argv[0]}: error: ") and reason in stderr
        assert stderr.count("\n") == 1


def test_a_library_refusal_is_one_line(monkeypatch, capsys):
    # a ValueError from deep inside a command (multi-line, as torch's state-dict errors are)
    def refuse(args):
        raise ValueError("first line\n\tsecond line")

    monkeypatch.setattr("r2et_fast.cli._basic._cmd_info", refuse)
    with pytest.raises(SystemExit) as err:
        main(["info"])
    assert err.value.code == 2
    assert capsys.readouterr().err == "r2et-fast info: error: first line second line\n"


def test_python_m_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "r2et_fast.cli", "list", "--json"], capture_output=True,
                          text=True, check=True)
    assert "batched" in {e["name"] for e in json.loads(done.stdout)["engines"]}
