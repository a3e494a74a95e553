"""Options shared by several commands: value types that refuse out-of-range numbers while parsing (so
the error names the option), training hyper-parameters, the ERAttack budget, the data set."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from r2et_fast import _backend

TRAIN_KEYS = ("epochs", "batch_size", "lr", "seed", "k", "lambda_gap", "lambda_hess", "lambda_reg", "kappa",
              "transform", "n_pairs", "adaptive", "weight_decay", "at_steps", "at_eps", "backend", "engine")


def int_at_least(least: int) -> Callable[[str], int]:
    """An argparse type: an int >= ``least``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an int >= {least}, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be an int >= {least}, got {text!r}")
        return value

    parse.__name__ = f"int >= {least}"
    return parse


def real(*, positive: bool) -> Callable[[str], float]:
    """An argparse type: a finite number > 0 (``positive``) or >= 0."""
    bound = "> 0" if positive else ">= 0"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number {bound}, got {text!r}") from None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise argparse.ArgumentTypeError(f"must be a finite number {bound}, got {text!r}")
        return value

    parse.__name__ = f"number {bound}"
    return parse


POSITIVE_INT = int_at_least(1)
NONNEGATIVE_INT = int_at_least(0)
POSITIVE = real(positive=True)
NONNEGATIVE = real(positive=False)


def device_name(text: str) -> str:
    """An argparse type: a device this machine has ("auto", "cpu", "cuda", "cuda:N"), as given."""
    from r2et_fast._device import resolve_device

    try:
        resolve_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("device ")) from None
    return text


device_name.__name__ = "device"


def add_placement(p: argparse.ArgumentParser, threads: bool = True) -> None:
    """``--device`` and (with ``threads``) ``--threads``, on every command (``cli.build_parser``
    adds them; both act before the command runs, see ``cli._place``)."""
    p.add_argument("--device", type=device_name, default="auto",
                   help="where models run: auto (default: CUDA when available; under torchrun the GPU "
                   "of LOCAL_RANK), cpu, cuda, cuda:N")
    if not threads:
        return
    p.add_argument("--threads", type=POSITIVE_INT,
                   help="torch intra-op threads (default: torch's, or under torchrun the available "
                   "cores divided among this machine's ranks, unless OMP_NUM_THREADS is set)")


def add_engine(p: argparse.ArgumentParser) -> None:
    """``--engine``: ``TrainConfig.engine`` of the models a command trains (docs/spec.md §3)."""
    from r2et_fast.engine import engine_names

    p.add_argument("--engine", choices=engine_names(),
                   help="gradient engine of the regularisers while training (default auto)")


def add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=POSITIVE_INT)
    p.add_argument("--batch-size", type=POSITIVE_INT)
    p.add_argument("--lr", type=POSITIVE)
    p.add_argument("--seed", type=int)
    p.add_argument("--lambda-gap", type=NONNEGATIVE, help="R2ET: weight of the pair-gap term")
    p.add_argument("--lambda-hess", type=NONNEGATIVE, help="R2ET / Est-H: weight of the Hessian norm")
    p.add_argument("--lambda-reg", type=NONNEGATIVE, help="Exact-H / SSR: weight of their term")
    p.add_argument("--kappa", type=POSITIVE)
    p.add_argument("--transform", choices=("linear", "exp"))
    p.add_argument("--n-pairs", type=POSITIVE_INT, help="k' of R2ET-mm")
    p.add_argument("--adaptive", action="store_true", default=None)
    p.add_argument("--weight-decay", type=NONNEGATIVE)
    p.add_argument("--at-steps", type=POSITIVE_INT)
    p.add_argument("--at-eps", type=NONNEGATIVE)
    add_engine(p)


def add_attack_options(p: argparse.ArgumentParser) -> None:
    """The ERAttack budget; left out, each takes the data set's protocol (docs/spec.md §9)."""
    p.add_argument("--alpha", type=POSITIVE, help="step size (default 1e-3 tabular, 2e-3 images, graphs)")
    p.add_argument("--steps", type=POSITIVE_INT, help="attack steps (default 1000 tabular, 100 images, "
                   "graphs)")
    p.add_argument("--eps", type=NONNEGATIVE, help="l-inf radius (default alpha * steps for tabular data, "
                   "0.1 for images and graphs)")
    p.add_argument("--pairs", choices=("all", "anchor"), default="all")
    p.add_argument("--max-samples", type=POSITIVE_INT,
                   help="attack only the first test samples (default all; 50 images, 40 graph pairs)")
    p.add_argument("--explain-target", choices=("predicted", "label"), default="predicted",
                   help="class whose explanation is attacked (label: as the authors' code)")


def add_common(p: argparse.ArgumentParser, dataset_required: bool = True, every_modality: bool = False,
               dataset_help: str | None = None,
               k_help: str = "top-k size (default the data set's: 8 tabular, 50 images and graphs)") -> None:
    """``--dataset`` (the tabular names, or with ``every_modality`` any data set or a brain-network
    file), the split seed, ``--k``, the ops backend and ``--no-progress``."""
    if every_modality:
        from r2et_fast.cli._data import DATASET_HELP, MODEL_DATASETS

        p.add_argument("--dataset", choices=MODEL_DATASETS, type=MODEL_DATASETS.parse, metavar="NAME|FILE",
                       required=dataset_required,
                       help=f"{', '.join(MODEL_DATASETS)}: {dataset_help or DATASET_HELP}")
    else:
        from r2et_fast.datasets import DATASETS

        p.add_argument("--dataset", choices=DATASETS, required=dataset_required, help=dataset_help)
    p.add_argument("--data-seed", type=int, default=0, help="seed of the train/val/test split")
    p.add_argument("--k", type=POSITIVE_INT, help=k_help)
    p.add_argument("--backend", choices=_backend.BACKENDS)
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def train_overrides(args: argparse.Namespace) -> dict:
    """The TrainConfig fields given on the command line."""
    return {k: getattr(args, k) for k in TRAIN_KEYS if getattr(args, k, None) is not None}


def attack_config(args: argparse.Namespace, spec, k: int):
    """The ERAttack budget of the command line; what it leaves out comes from the data set's
    protocol ``spec`` (a ``DatasetSpec``). The radius is always recorded, never left to a default."""
    from r2et_fast.experiments.protocol import AttackConfig

    steps = spec.steps if args.steps is None else args.steps
    alpha = spec.alpha if args.alpha is None else args.alpha
    # tabular features are standardised: the ball grows with the budget (docs/spec.md §9); pixels and
    # edge weights live in [0, 1], where the protocol fixes the radius
    default_eps = alpha * steps if spec.modality == "tabular" else spec.eps
    return AttackConfig(k=k, alpha=alpha, steps=steps, eps=default_eps if args.eps is None else args.eps,
                        pairs=args.pairs, step_norm=spec.step_norm,
                        max_samples=spec.max_test if args.max_samples is None else args.max_samples,
                        backend=args.backend, explain_target=args.explain_target)
