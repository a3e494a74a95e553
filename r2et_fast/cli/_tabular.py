"""`r2et-fast compare`: several methods trained side by side on one tabular data set and tabulated
under ERAttack (docs/spec.md §9)."""

from __future__ import annotations

import argparse
from pathlib import Path

from r2et_fast import _distributed
from r2et_fast._io import save_json
from r2et_fast.cli._errors import CliError
from r2et_fast.cli._options import (
    NONNEGATIVE,
    add_attack_options,
    add_common,
    add_train_options,
    attack_config,
    train_overrides,
)


def _cmd_compare(args: argparse.Namespace) -> int:
    from r2et_fast.datasets import load_tabular
    from r2et_fast.experiments._cache import data_key
    from r2et_fast.experiments._specs import SPECS
    from r2et_fast.experiments.protocol import compare_methods, markdown_table

    spec = SPECS[args.dataset]
    data = load_tabular(args.dataset, seed=args.data_seed)
    attack = attack_config(args, spec, spec.k if args.k is None else args.k)
    if attack.k > data.n_features:
        raise CliError(f"--k {attack.k} is more than the {data.n_features} features of {args.dataset}")
    rows = compare_methods(data, args.methods, train_overrides(args), attack,
                           out_dir=Path(args.out) / args.dataset, dataset_name=args.dataset,
                           trained_on=data_key(args.dataset, args.data_seed, None),
                           lambda_gap_grid=args.lambda_gap_grid, selection_threshold=args.threshold,
                           progress=not args.no_progress)
    table = markdown_table(rows, attack.k)
    budget = f"l-inf eps {attack.radius:g}, {attack.steps} steps of {attack.alpha:g}"
    print(f"\n{args.dataset}: ERAttack ({budget}) on {rows[0]['n']} test samples\n\n{table}")
    if _distributed.is_main():  # under torchrun every rank holds the rows; one writes them
        save_json(Path(args.out) / args.dataset / "results.json", {"dataset": args.dataset, "rows": rows})
    return 0


def add_compare(sub) -> None:
    from r2et_fast.train import METHODS

    cmp_ = sub.add_parser("compare", help="train several methods and tabulate them under ERAttack")
    add_common(cmp_)
    cmp_.add_argument("--methods", nargs="+", choices=METHODS, default=["vanilla", "r2et"])
    add_train_options(cmp_)
    add_attack_options(cmp_)
    cmp_.add_argument("--out", default="runs", help="folder of the runs and results.json")
    cmp_.add_argument("--lambda-gap-grid", type=NONNEGATIVE, nargs="+",
                      help="model selection for the R2ET family over these weights (docs/spec.md §9)")
    cmp_.add_argument("--threshold", type=NONNEGATIVE, default=0.02,
                      help="selection keeps models within this validation AUC of Vanilla's")
    cmp_.set_defaults(func=_cmd_compare)
