"""Options shared by several commands: training hyper-parameters, the ERAttack budget, the data set."""

from __future__ import annotations

import argparse

from r2et_fast import _backend

TRAIN_KEYS = ("epochs", "batch_size", "lr", "seed", "k", "lambda_gap", "lambda_hess", "lambda_reg", "kappa",
              "transform", "n_pairs", "adaptive", "weight_decay", "at_steps", "at_eps", "backend", "engine")


def add_engine(p: argparse.ArgumentParser) -> None:
    """``--engine``: ``TrainConfig.engine`` of the models a command trains (docs/spec.md §3)."""
    from r2et_fast.engine import engine_names

    p.add_argument("--engine", choices=engine_names(),
                   help="gradient engine of the regularisers while training (default auto)")


def add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--lambda-gap", type=float, help="R2ET: weight of the pair-gap term")
    p.add_argument("--lambda-hess", type=float, help="R2ET / Est-H: weight of the Hessian norm")
    p.add_argument("--lambda-reg", type=float, help="Exact-H / SSR: weight of their term")
    p.add_argument("--kappa", type=float)
    p.add_argument("--transform", choices=("linear", "exp"))
    p.add_argument("--n-pairs", type=int, help="k' of R2ET-mm")
    p.add_argument("--adaptive", action="store_true", default=None)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--at-steps", type=int)
    p.add_argument("--at-eps", type=float)
    add_engine(p)


def add_attack_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--alpha", type=float, default=1e-3)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--eps", type=float, help="l-inf radius (default alpha * steps)")
    p.add_argument("--pairs", choices=("all", "anchor"), default="all")
    p.add_argument("--max-samples", type=int, help="attack only the first test samples")
    p.add_argument("--explain-target", choices=("predicted", "label"), default="predicted",
                   help="class whose explanation is attacked (label: as the authors' code)")


def add_common(p: argparse.ArgumentParser, dataset_required: bool = True) -> None:
    from r2et_fast.datasets import DATASETS

    p.add_argument("--dataset", choices=DATASETS, required=dataset_required)
    p.add_argument("--data-seed", type=int, default=0, help="seed of the train/val/test split")
    p.add_argument("--k", type=int)
    p.add_argument("--backend", choices=_backend.BACKENDS)
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def train_overrides(args: argparse.Namespace) -> dict:
    """The TrainConfig fields given on the command line."""
    return {k: getattr(args, k) for k in TRAIN_KEYS if getattr(args, k, None) is not None}


def attack_config(args: argparse.Namespace):
    from r2et_fast.experiments.protocol import AttackConfig

    return AttackConfig(k=args.k or 8, alpha=args.alpha, steps=args.steps, eps=args.eps, pairs=args.pairs,
                        max_samples=args.max_samples, backend=args.backend,
                        explain_target=args.explain_target)
