"""One table for the command line's answers to bad input and for the defaults it takes from a model:
every bad argument or file ends in one stderr line that names the argument, with status 2 and no
traceback; a model's k, the radius used, a resumed run and the flag that restarts one show up."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from r2et_fast.cli import main
from r2et_fast.datasets import load_tabular
from r2et_fast.train import TrainConfig, train


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """A compas model trained with k = 4 (one epoch), and broken or foreign model files."""
    tmp = tmp_path_factory.mktemp("errors")
    run = tmp / "run"
    assert main(["train", "--dataset", "compas", "--method", "vanilla", "--epochs", "1", "--k", "4",
                 "--out", str(run), "--no-progress"]) == 0
    model = run / "model.pt"
    (tmp / "truncated.pt").write_bytes(model.read_bytes()[:100])
    torch.save(torch.zeros(3), tmp / "tensor.pt")
    (tmp / "badrun").mkdir()
    (tmp / "badrun" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    data = load_tabular("compas")  # a model file that does not record its data set
    small = dataclasses.replace(data, x_train=data.x_train[:256], y_train=data.y_train[:256])
    train(small, TrainConfig(method="vanilla", epochs=1, hidden=8), out_dir=tmp / "unnamed", progress=False)
    return {"tmp": str(tmp), "run": str(run), "model": str(model), "truncated": str(tmp / "truncated.pt"),
            "tensor": str(tmp / "tensor.pt"), "badrun": str(tmp / "badrun"),
            "unnamed": str(tmp / "unnamed" / "model.pt")}


ATTACK = "attack --model {model} --no-progress"
TRAIN = "train --dataset compas --method vanilla --k 4 --no-progress"
# (command line, where the answer is: "err" an error line, "out" stdout, "json" the --out file; a
# fragment of it). "{name}" fills in a path of the fixture.
CASES = {
    "steps negative": (f"{ATTACK} --steps -5", "err", "argument --steps: must be an int >= 1, got '-5'"),
    "k zero": (f"{ATTACK} --k 0", "err", "argument --k: must be an int >= 1"),
    "k above features": (f"{ATTACK} --k 50", "err", "--k 50 is more than the 16 features of compas"),
    "max samples zero": (f"{ATTACK} --max-samples 0", "err", "argument --max-samples: must be an int >= 1"),
    "max samples negative": (f"{ATTACK} --max-samples -3", "err", "argument --max-samples"),
    "alpha zero": (f"{ATTACK} --alpha 0", "err", "argument --alpha: must be a finite number > 0"),
    "eps negative": (f"{ATTACK} --eps -1", "err", "argument --eps: must be a finite number >= 0"),
    "model of another data set": (f"{ATTACK} --dataset adult", "err",
                                  "--model {model} was trained on compas, not on --dataset adult"),
    "unnamed model, no dataset": ("attack --model {unnamed}", "err", "--dataset is needed: --model"),
    "unnamed model, other shape": ("attack --model {unnamed} --dataset adult", "err",
                                   "--model {unnamed} takes inputs of shape (16,), but --dataset adult"),
    "missing model": ("attack --model {tmp}/nope.pt", "err", "--model {tmp}/nope.pt: no model file"),
    "truncated model": ("attack --model {truncated}", "err",
                        "--model: {truncated} is not a readable r2et_fast checkpoint"),
    "foreign payload": ("attack --model {tensor}", "err", "{tensor} is not a model saved by r2et_fast.train"),
    "unknown dataset": ("train --dataset nope", "err", "argument --dataset: must be one of adult"),
    "epochs zero": (f"{TRAIN} --epochs 0 --out {{tmp}}/zero", "err",
                    "argument --epochs: must be an int >= 1"),
    "corrupted checkpoint": (f"{TRAIN} --epochs 1 --out {{badrun}}", "err",
                             "--out {badrun}: not a checkpoint of r2et-fast train"),
    "extend a finished run": (f"{TRAIN} --epochs 2 --out {{run}}", "err",
                              "epochs 1 -> 2 (a finished run cannot be extended); pass --restart"),
    "other data in the run": ("train --dataset adult --method vanilla --k 4 --epochs 1 --out {run}", "err",
                              "--out {run}: its checkpoint's weights do not fit the mlp model of adult"),
    "demo noise negative": ("demo --noise -1", "err", "argument --noise: must be a finite number >= 0"),
    "demo k above features": ("demo --k 20", "err", "--k 20 is more than the 16 features"),
    "certify samples zero": ("certify --model {model} --eps 0.1 --n-samples 0", "err",
                             "argument --n-samples"),
    "certify missing model": ("certify --model {tmp}/nope.pt --eps 0.1", "err", "--model {tmp}/nope.pt"),
    "compare k above features": ("compare --dataset compas --k 99", "err", "--k 99 is more than the 16"),
    "bounds samples zero": ("bounds --n-samples 0", "err", "argument --n-samples"),
    # the behaviour fixes
    "k from the model": (f"{ATTACK} --steps 2 --max-samples 5", "out", "P@4 "),
    "eps recorded": (f"{ATTACK} --steps 2 --max-samples 5 --out {{tmp}}/scores.json", "json", '"eps": 0.002'),
    "resumed run says so": (f"{TRAIN} --epochs 1 --out {{run}}", "out",
                            "resuming {run}/checkpoint.pt: 1 of 1"),
}


@pytest.mark.parametrize("line, where, fragment", CASES.values(), ids=CASES.keys())
def test_command_line_answers(files, capsys, line, where, fragment):
    argv = [part.format(**files) for part in line.split()]
    fragment = fragment.format(**files)
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    if where == "err":
        assert code == 2, (out, err)
        assert err.count("\n") == 1 and "Traceback" not in err, err  # one line, never a traceback
        assert err.startswith(f"r2et-fast {argv[0]}: error: ") and fragment in err, err
    else:
        assert code == 0, err
        text = out if where == "out" else json.dumps(json.loads(open(argv[-1]).read()), indent=2)
        assert fragment in text, text
