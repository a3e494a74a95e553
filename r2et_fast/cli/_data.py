"""The data sets of the model commands (train, attack, certify), every modality: the tabular ones, MNIST,
the graph-pair sets and a user's brain-network file (``.npz`` or ``.mat``), each with its protocol
(architecture, k, attack budget, valid box: ``experiments._specs``); and saved models, checked
against the data they are given."""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from r2et_fast.cli._errors import CliError
from r2et_fast.datasets import Split, load_mnist
from r2et_fast.experiments._specs import SPECS, DatasetSpec, brain_spec
from r2et_fast.experiments._studies import attack_box, attacked_explainer
from r2et_fast.train import TrainConfig

FILE_SUFFIXES = (".npz", ".mat")

# `train --dataset mnist` fits the single-input CNN on single digits (10 classes), the model that
# `certify` and `bounds` read; the siamese pairs of `reproduce` stay reachable through a model
# trained on them (its arch says which view it needs).
MNIST_DIGITS = dataclasses.replace(SPECS["mnist"], load=lambda seed: load_mnist(seed=seed), arch="cnn",
                                   about="MNIST single digits, 10 classes")


def is_file_name(value: object) -> bool:
    return isinstance(value, str) and Path(value).suffix.lower() in FILE_SUFFIXES


class DatasetChoices(tuple):
    """The named data sets, as argparse ``choices`` (and for `r2et-fast list`), that also admit the
    path of a brain-network file: argparse tests a value with ``in``, help and list iterate names."""

    accepts_files = True

    def __contains__(self, value: object) -> bool:
        return super().__contains__(value) or is_file_name(value)

    def parse(self, text: str) -> str:
        """argparse ``type``: a name or a file path; anything else is refused with the choices."""
        if text in self:
            return text
        raise argparse.ArgumentTypeError(
            f"must be one of {', '.join(self)} or a brain-network file ({' / '.join(FILE_SUFFIXES)}), "
            f"got {text!r}")


MODEL_DATASETS = DatasetChoices(SPECS)
DATASET_HELP = ("a data set name or a brain-network file (.npz with adjacency (G, N, N) and labels (G,), "
                "or a BP/HIV-layout .mat); the architecture follows: mlp for tabular data, cnn for mnist, "
                "siamese_gcn for graph pairs")


@dataclass(frozen=True)
class Data:
    """A loaded data set and its protocol."""

    name: str  # what a model file records: the data set's name or the file's absolute path
    split: Split
    spec: DatasetSpec

    @property
    def label(self) -> str:
        """A short name for messages and default run folders."""
        return Path(self.name).stem if is_file_name(self.name) else self.name

    @property
    def n_features(self) -> int:
        return math.prod(self.split.x_test.shape[1:])

    def box(self):
        return attack_box(self.spec, self.split)

    def explainer(self, score: str):
        """``model -> Explainer``: the data set's attacked explanation of ``score``."""
        return lambda model: attacked_explainer(self.spec, model, score)


def same_dataset(a: str, b: str) -> bool:
    if is_file_name(a) and is_file_name(b):
        return Path(a).resolve() == Path(b).resolve()
    return a == b


def load(name: str, *, seed: int = 0, arch: str | None = None, max_train: int | None = None) -> Data:
    """The data set ``name`` (``arch``: the model's, which picks MNIST's view); ``max_train``: keep the
    first training samples only."""
    if is_file_name(name):
        path = Path(name)
        if not path.is_file():
            raise CliError(f"--dataset {name}: no such brain-network file")
        name = str(path.resolve())
        spec = brain_spec(name)
    elif name == "mnist" and arch != "siamese_cnn":
        spec = MNIST_DIGITS
    elif name in SPECS:
        spec = SPECS[name]
    else:
        raise CliError(f"--dataset must be one of {', '.join(MODEL_DATASETS)} or a brain-network file, "
                       f"got {name!r}")
    split = spec.load(seed)
    if max_train is not None:
        split = dataclasses.replace(split, x_train=split.x_train[:max_train],
                                    y_train=split.y_train[:max_train])
    return Data(name, split, spec)


def check_k(k: int, data: Data, flag: str = "--k") -> None:
    if k > data.n_features:
        raise CliError(f"{flag} {k} is more than the {data.n_features} features of {data.label}")


def load_saved(path: str) -> tuple[torch.nn.Module, TrainConfig, dict]:
    """``r2et_fast.train.load_model``, with every way a file can be unreadable named as ``--model``."""
    from r2et_fast._device import auto_device
    from r2et_fast._io import load_torch
    from r2et_fast.train import load_model

    if not Path(path).is_file():
        raise CliError(f"--model {path}: no model file there (train one with `r2et-fast train`)")
    try:
        # load_model expects a dict; a readable file of another payload (a bare tensor) would fail in
        # it with an indexing error that does not say what is wrong
        payload = load_torch(path)
        if not isinstance(payload, dict):
            raise ValueError(f"{path} is not a model saved by r2et_fast.train (it holds a "
                             f"{type(payload).__name__})")
        model, cfg, meta = load_model(path)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RuntimeError) as err:
        where = "--model" if str(path) in str(err) else f"--model {path}"
        raise CliError(f"{where}: {err}") from err
    # on the command's --device (r2et_fast._device.auto_device): the entry points follow the model
    return model.to(auto_device()), cfg, meta


def dataset_of(model_path: str, meta: dict, given: str | None) -> str:
    """The data set to use with a saved model: ``given`` (``--dataset``) or the recorded one; a model
    of another data set is refused."""
    recorded = meta.get("dataset")
    if given is None:
        if recorded is None:
            raise CliError(f"--dataset is needed: --model {model_path} does not record its data set")
        return recorded
    if recorded is not None and not same_dataset(given, recorded):
        raise CliError(f"--model {model_path} was trained on {recorded}, not on --dataset {given} "
                       f"(leave --dataset out to use {recorded})")
    return given


def check_fits(model_path: str, meta: dict, data: Data) -> None:
    """Refuse data of another input shape (a model file that does not record its data set)."""
    want, have = tuple(meta["input_shape"]), tuple(data.split.x_test.shape[1:])
    if want != have:
        raise CliError(f"--model {model_path} takes inputs of shape {want}, but --dataset {data.label} "
                       f"samples have shape {have}: a model of another data set?")
