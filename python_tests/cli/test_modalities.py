"""`train`, `attack` and `certify` on every modality: MNIST, a graph-pair set and a user's brain-network
``.npz``, each with the architecture and protocol of its data set (tiny runs: 64 training samples,
one epoch, two attacked samples)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from r2et_fast.cli import main
from r2et_fast.datasets import mnist_pairs
from r2et_fast.train import TrainConfig, load_model, train


@pytest.fixture(scope="module")
def brain_file(tmp_path_factory) -> str:
    """30 weighted 10-node graphs of two classes (class 1: a denser block), as a user's .npz."""
    rng = np.random.default_rng(0)
    adjacency = rng.random((30, 10, 10))
    labels = np.arange(30) % 2
    adjacency[labels == 1, :5, :5] += 1.0
    path = tmp_path_factory.mktemp("brain") / "subjects.npz"
    np.savez(path, adjacency=adjacency, labels=labels)
    return str(path)


@pytest.mark.parametrize("dataset, arch, shape", [
    ("mnist", "cnn", (1, 28, 28)),
    ("bzr", "siamese_gcn", (2, 406)),
    ("brain", "siamese_gcn", (2, 45)),
])
@pytest.mark.filterwarnings("ignore::r2et_fast.bounds.VanishingJacobianWarning")  # a ReLU CNN
def test_train_attack_certify(dataset, arch, shape, brain_file, tmp_path, capsys):
    name = brain_file if dataset == "brain" else dataset
    run = tmp_path / "run"
    assert main(["train", "--dataset", name, "--method", "vanilla", "--epochs", "1", "--max-train", "64",
                 "--batch-size", "32", "--out", str(run), "--no-progress"]) == 0
    assert f"({arch}) on " in capsys.readouterr().out
    _, cfg, meta = load_model(run / "model.pt")
    assert cfg.arch == arch and cfg.k == 50 and tuple(meta["input_shape"]) == shape
    # the model file records the data set (a file by its absolute path), so attack needs no --dataset
    assert meta["dataset"] == (str(Path(name).resolve()) if dataset == "brain" else dataset)
    scores = tmp_path / "scores.json"
    assert main(["attack", "--model", str(run / "model.pt"), "--steps", "2", "--max-samples", "2",
                 "--out", str(scores), "--no-progress"]) == 0
    assert "P@50 " in capsys.readouterr().out
    payload = json.loads(scores.read_text())
    assert payload["n"] == 2 and payload["attack"]["k"] == 50
    # images and graphs: the protocol's fixed l-inf radius and l-inf steps (docs/spec.md §9)
    assert payload["attack"]["eps"] == 0.1 and payload["attack"]["step_norm"] == "linf"
    out = tmp_path / "certify"
    assert main(["certify", "--model", str(run / "model.pt"), "--eps", "0.01", "--n-samples", "2",
                 "--out", str(out), "--no-progress"]) == 0
    certified = json.loads((out / "l2_saliency.json").read_text())
    assert certified["k"] == 50 and certified["n_samples"] == 2 and certified["dataset"] == meta["dataset"]


def test_attack_a_model_of_mnist_pairs(tmp_path, capsys):
    # `reproduce` trains the siamese CNN on MNIST pairs: its arch picks that view of "mnist"
    data = mnist_pairs((3, 8), n_pairs=200, seed=0)
    cfg = TrainConfig(method="vanilla", arch="siamese_cnn", epochs=1, batch_size=64, k=25)
    train(data, cfg, out_dir=tmp_path, progress=False, dataset_name="mnist")
    assert main(["attack", "--model", str(tmp_path / "model.pt"), "--steps", "2", "--max-samples", "2",
                 "--no-progress"]) == 0
    assert "P@25 " in capsys.readouterr().out


def test_a_missing_brain_file_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["train", "--dataset", str(tmp_path / "gone.npz"), "--out", str(tmp_path / "run")])
    assert err.value.code == 2 and f"--dataset {tmp_path / 'gone.npz'}: no such" in capsys.readouterr().err
