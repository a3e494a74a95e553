"""`r2et-fast attack`: ERAttack on a saved model's test split, any modality (docs/spec.md §5, §9).

What the command line leaves out comes from the model file (its data set and k) and from the data
set's protocol (the budget, the box, the attacked explanation)."""

from __future__ import annotations

import argparse

from r2et_fast import _distributed
from r2et_fast._io import save_json
from r2et_fast.cli import _data
from r2et_fast.cli._options import add_attack_options, add_common, attack_config


def _cmd_attack(args: argparse.Namespace) -> int:
    from r2et_fast.experiments.protocol import attack_model

    model, cfg, meta = _data.load_saved(args.model)
    data = _data.load(_data.dataset_of(args.model, meta, args.dataset), seed=args.data_seed, arch=cfg.arch)
    _data.check_fits(args.model, meta, data)
    k = cfg.k if args.k is None else args.k  # P@k at the k the model was trained for
    _data.check_k(k, data)
    score = args.score
    attack = attack_config(args, data.spec, k)
    scores = attack_model(model, data.split, attack, box=data.box(), explainer=data.explainer(score),
                          progress=not args.no_progress)
    # cAUC / aAUC are AUCs of P(class 1): printed for binary tasks only (MNIST digits have 10 classes)
    aucs = f"cAUC {scores['cauc']:.4f}  aAUC {scores['aauc']:.4f}  " if meta["n_classes"] == 2 else ""
    print(f"{cfg.method} on {data.label} ({scores['n']} test samples, eps {attack.radius:g}): {aucs}"
          f"P@{k} {scores['precision_at_k']:.4f}  labels kept {scores['label_kept']:.3f}")
    if args.out and _distributed.is_main():
        save_json(args.out, {"model": str(args.model), "dataset": data.name, "method": cfg.method,
                             "score": score, **scores})
    return 0


def add_attack(sub) -> None:
    from r2et_fast.explain._score import SCORES, TRAINING_SCORE

    at = sub.add_parser("attack", help="ERAttack a saved model's test split; print cAUC, aAUC, P@k")
    add_common(at, dataset_required=False, every_modality=True,
               dataset_help="a name or a brain-network file (.npz / .mat); default: the data set "
               "recorded in the model file", k_help="top-k size (default: the k the model was trained with)")
    at.add_argument("--model", required=True, help="model.pt written by `r2et-fast train`")
    add_attack_options(at)
    # Not the model's own training score: images and graphs train on the logit, whose saliency is
    # piecewise constant on ReLU / max-pool models, so an attack on it cannot move; the protocol (and
    # `reproduce`) attacks the loss saliency of every model, and the scores here must compare.
    at.add_argument("--score", choices=SCORES, default=TRAINING_SCORE,
                    help=f"score of the attacked explanation (default {TRAINING_SCORE}, as `reproduce`)")
    at.add_argument("--out", help="write the scores as JSON")
    at.set_defaults(func=_cmd_attack)
