"""`r2et-fast train`, `attack` and `compare`: one tabular data set (docs/spec.md §3-§5, §9)."""

from __future__ import annotations

import argparse
from pathlib import Path

from r2et_fast._io import save_json
from r2et_fast.cli._options import (
    add_attack_options,
    add_common,
    add_train_options,
    attack_config,
    train_overrides,
)


def _cmd_train(args: argparse.Namespace) -> int:
    from r2et_fast.datasets import load_tabular
    from r2et_fast.train import TrainConfig, train

    data = load_tabular(args.dataset, seed=args.data_seed)
    cfg = TrainConfig(method=args.method, **train_overrides(args))
    out = Path(args.out or f"runs/{args.dataset}/{args.method}")
    result = train(data, cfg, out_dir=out, resume=not args.restart, progress=not args.no_progress,
                   dataset_name=args.dataset)
    last = result.history[-1] if result.history else {}
    print(f"trained {args.method} on {args.dataset}: val AUC {last.get('val_auc', float('nan')):.4f}; "
          f"model at {out / 'model.pt'}")
    return 0


def _cmd_attack(args: argparse.Namespace) -> int:
    from r2et_fast.datasets import load_tabular
    from r2et_fast.experiments.protocol import attack_model
    from r2et_fast.train import load_model

    model, cfg, meta = load_model(args.model)
    dataset = args.dataset or meta["dataset"]
    if dataset is None:
        raise ValueError("--dataset is needed: the model file does not name its data set")
    data = load_tabular(dataset, seed=args.data_seed)
    scores = attack_model(model, data, attack_config(args), progress=not args.no_progress)
    print(f"{cfg.method} on {dataset} ({scores['n']} test samples): cAUC {scores['cauc']:.4f}  "
          f"aAUC {scores['aauc']:.4f}  P@{scores['attack']['k']} {scores['precision_at_k']:.4f}  "
          f"labels kept {scores['label_kept']:.3f}")
    if args.out:
        save_json(args.out, {"model": str(args.model), "dataset": dataset, "method": cfg.method, **scores})
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from r2et_fast.datasets import load_tabular
    from r2et_fast.experiments._cache import data_key
    from r2et_fast.experiments.protocol import compare_methods, markdown_table

    data = load_tabular(args.dataset, seed=args.data_seed)
    attack = attack_config(args)
    rows = compare_methods(data, args.methods, train_overrides(args), attack,
                           out_dir=Path(args.out) / args.dataset, dataset_name=args.dataset,
                           trained_on=data_key(args.dataset, args.data_seed, None),
                           lambda_gap_grid=args.lambda_gap_grid, selection_threshold=args.threshold,
                           progress=not args.no_progress)
    table = markdown_table(rows, attack.k)
    budget = f"l-inf eps {attack.radius:g}, {attack.steps} steps of {attack.alpha:g}"
    print(f"\n{args.dataset}: ERAttack ({budget}) on {rows[0]['n']} test samples\n\n{table}")
    save_json(Path(args.out) / args.dataset / "results.json", {"dataset": args.dataset, "rows": rows})
    return 0


def add_train(sub) -> None:
    from r2et_fast.train import METHODS

    tr = sub.add_parser("train", help="train one method on a tabular data set (resumable)")
    add_common(tr)
    tr.add_argument("--method", choices=METHODS, default="r2et")
    add_train_options(tr)
    tr.add_argument("--out", help="run folder (default runs/<dataset>/<method>)")
    tr.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    tr.set_defaults(func=_cmd_train)


def add_attack(sub) -> None:
    at = sub.add_parser("attack", help="ERAttack a saved model's test split; print cAUC, aAUC, P@k")
    add_common(at, dataset_required=False)
    at.add_argument("--model", required=True, help="model.pt written by `r2et-fast train`")
    add_attack_options(at)
    at.add_argument("--out", help="write the scores as JSON")
    at.set_defaults(func=_cmd_attack)


def add_compare(sub) -> None:
    from r2et_fast.train import METHODS

    cmp_ = sub.add_parser("compare", help="train several methods and tabulate them under ERAttack")
    add_common(cmp_)
    cmp_.add_argument("--methods", nargs="+", choices=METHODS, default=["vanilla", "r2et"])
    add_train_options(cmp_)
    add_attack_options(cmp_)
    cmp_.add_argument("--out", default="runs", help="folder of the runs and results.json")
    cmp_.add_argument("--lambda-gap-grid", type=float, nargs="+",
                      help="model selection for the R2ET family over these weights (docs/spec.md §9)")
    cmp_.add_argument("--threshold", type=float, default=0.02,
                      help="selection keeps models within this validation AUC of Vanilla's")
    cmp_.set_defaults(func=_cmd_compare)
