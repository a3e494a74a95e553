"""Command line: ``r2et-fast <command>``. Results print as a table and can be saved as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

import r2et_fast
from r2et_fast import _backend, _ops
from r2et_fast._io import save_json as _write_json
from r2et_fast.ops import __all__ as OPS

ATTACKS = ("erattack",)


def _cmd_demo(args: argparse.Namespace) -> int:
    from r2et_fast.experiments import DemoConfig, run_demo

    cfg = DemoConfig(epochs=args.epochs, k=args.k, noise=args.noise, seed=args.seed)
    if args.backend:
        _backend.set_backend(args.backend)
    result = run_demo(cfg, progress=not args.no_progress)
    print(f"\nr2et_fast demo: synthetic tabular task, {result['n_test']} test samples, "
          f"backend={result['backend']}")
    print(f"test accuracy: {result['test_accuracy']:.3f}")
    print(f"explanation stability under Gaussian input noise (sigma={cfg.noise}), k={cfg.k}:")
    print(f"  {'metric':<18}{'mean':>9}{'std':>9}")
    for name, stats in result["metrics"].items():
        print(f"  {name:<18}{stats['mean']:>9.4f}{stats['std']:>9.4f}")
    if args.out:
        _write_json(args.out, result)
        print(f"results written to {args.out}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    info = {
        "version": r2et_fast.__version__,
        "torch": torch.__version__,
        "backend": _backend.backend(),
        "native_available": _ops.native_available(),
        "native_load_error": _ops.load_error(),
        "cuda_available": torch.cuda.is_available(),
        "native_kernels": {op: [d for d in ("cpu", "cuda") if _ops.has_kernel(op, d)] for op in OPS},
    }
    print(json.dumps(info, indent=2))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from r2et_fast.datasets import DATASETS
    from r2et_fast.train import METHOD_LABELS

    print("datasets: " + ", ".join(DATASETS))
    print("methods:  " + ", ".join(f"{m} ({label})" for m, label in METHOD_LABELS.items()))
    print("attacks:  " + ", ".join(ATTACKS))
    return 0


def _train_overrides(args: argparse.Namespace) -> dict:
    keys = ("epochs", "batch_size", "lr", "seed", "k", "lambda_gap", "lambda_hess", "lambda_reg", "kappa",
            "transform", "n_pairs", "adaptive", "weight_decay", "at_steps", "at_eps", "backend")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def _attack_config(args: argparse.Namespace):
    from r2et_fast.experiments.tabular import AttackConfig

    return AttackConfig(k=args.k or 8, alpha=args.alpha, steps=args.steps, eps=args.eps, pairs=args.pairs,
                        max_samples=args.max_samples, backend=args.backend,
                        explain_target=args.explain_target)


def _cmd_train(args: argparse.Namespace) -> int:
    from r2et_fast.datasets import load_tabular
    from r2et_fast.train import TrainConfig, train

    data = load_tabular(args.dataset, seed=args.data_seed)
    cfg = TrainConfig(method=args.method, **_train_overrides(args))
    out = Path(args.out or f"runs/{args.dataset}/{args.method}")
    result = train(data, cfg, out_dir=out, resume=not args.restart, progress=not args.no_progress,
                   dataset_name=args.dataset)
    last = result.history[-1] if result.history else {}
    print(f"trained {args.method} on {args.dataset}: val AUC {last.get('val_auc', float('nan')):.4f}; "
          f"model at {out / 'model.pt'}")
    return 0


def _cmd_attack(args: argparse.Namespace) -> int:
    from r2et_fast.datasets import load_tabular
    from r2et_fast.experiments.tabular import attack_model
    from r2et_fast.train import load_model

    model, cfg, meta = load_model(args.model)
    dataset = args.dataset or meta["dataset"]
    if dataset is None:
        raise SystemExit("--dataset is needed: the model file does not name its data set")
    data = load_tabular(dataset, seed=args.data_seed)
    scores = attack_model(model, data, _attack_config(args), progress=not args.no_progress)
    print(f"{cfg.method} on {dataset} ({scores['n']} test samples): cAUC {scores['cauc']:.4f}  "
          f"aAUC {scores['aauc']:.4f}  P@{scores['attack']['k']} {scores['precision_at_k']:.4f}  "
          f"labels kept {scores['label_kept']:.3f}")
    if args.out:
        _write_json(args.out, {"model": str(args.model), "dataset": dataset, "method": cfg.method, **scores})
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from r2et_fast.datasets import load_tabular
    from r2et_fast.experiments.tabular import compare_methods, markdown_table

    data = load_tabular(args.dataset, seed=args.data_seed)
    attack = _attack_config(args)
    rows = compare_methods(data, args.methods, _train_overrides(args), attack,
                           out_dir=Path(args.out) / args.dataset, dataset_name=args.dataset,
                           lambda_gap_grid=args.lambda_gap_grid, selection_threshold=args.threshold,
                           progress=not args.no_progress)
    table = markdown_table(rows, attack.k)
    budget = f"l-inf eps {attack.radius:g}, {attack.steps} steps of {attack.alpha:g}"
    print(f"\n{args.dataset}: ERAttack ({budget}) on {rows[0]['n']} test samples\n\n{table}")
    _write_json(Path(args.out) / args.dataset / "results.json", {"dataset": args.dataset, "rows": rows})
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from r2et_fast.experiments.reproduce import ReproduceConfig, reproduce

    chosen = {"datasets": tuple(args.datasets), "methods": tuple(args.methods), "seeds": args.seeds,
              "out": args.out, "backend": args.backend, "explain_target": args.explain_target}
    cfg = ReproduceConfig.quick_defaults(**chosen) if args.quick else ReproduceConfig(**chosen)
    reproduce(cfg, progress=not args.no_progress)
    print(f"results: {Path(args.out) / 'results.json'}\nreport:  {Path(args.out) / 'report.md'}")
    return 0


def _cmd_certify(args: argparse.Namespace) -> int:
    from r2et_fast.experiments.bounds import AttackBudget, certify_saved

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if not Path(args.model).is_file():
        raise SystemExit(f"r2et-fast certify: error: no model file at {args.model} (train one with "
                         "`r2et-fast train` or `r2et-fast bounds`)")
    budget = AttackBudget(restarts=args.restarts, steps=args.steps, topk_steps=args.topk_steps,
                          keep_label=args.keep_label, seed=args.seed)
    try:
        result = certify_saved(args.model, dataset=args.dataset, eps=args.eps, norm=args.norm,
                               method=args.method, k=args.k, n_samples=args.n_samples, validate=args.validate,
                               out=args.out, budget=budget, ig_steps=args.ig_steps,
                               smooth_pool=args.smooth_pool, data_seed=args.data_seed,
                               progress=not args.no_progress)
    except ValueError as err:
        raise SystemExit(f"r2et-fast certify: error: {err}") from err
    print(f"\n{result['train_method']} on {result['dataset']}: {result['method']}, {result['norm']}, "
          f"{result['n_samples']} test samples, k = {result['k']}\n\n{result['table']}")
    for note in result["notes"]:
        print(f"note: {note}", file=sys.stderr)
    files = result["files"]
    print(f"\nwritten to {args.out}: {files['json']}, {files['markdown']}, {files['figure']}")
    return 0


def _cmd_bounds(args: argparse.Namespace) -> int:
    from r2et_fast.experiments.bounds import BoundsConfig, run_bounds

    keys = ("n_samples", "epochs", "restarts", "tau")
    chosen = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    chosen.update(methods=tuple(args.methods), attributions=tuple(args.attributions),
                  poolings=tuple(args.poolings), out=args.out, threads=args.threads)
    cfg = BoundsConfig.quick_defaults(**chosen) if args.quick else BoundsConfig(**chosen)
    results = run_bounds(cfg, progress=not args.no_progress)
    for h in results["headline"]:
        print(f"{h['pooling']:>4} {h['attribution']:<11}{h['norm']:<5} n={h['n']:<4} "
              f"> T_e {h['pct_outside_t_e']:5.1f}%"
              f"  > T'_e {h['pct_outside_t_e_generalized']:5.1f}%  > T_e (linearised) "
              f"{h['pct_outside_t_e_linear']:.1f}%  min r {h['min_tightness_r']:+.4f}")
    print(f"results: {Path(args.out) / 'results.json'}\nreport:  {Path(args.out) / 'report.md'}")
    return 0


def _add_train_options(p: argparse.ArgumentParser) -> None:
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


def _add_attack_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--alpha", type=float, default=1e-3)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--eps", type=float, help="l-inf radius (default alpha * steps)")
    p.add_argument("--pairs", choices=("all", "anchor"), default="all")
    p.add_argument("--max-samples", type=int, help="attack only the first test samples")
    p.add_argument("--explain-target", choices=("predicted", "label"), default="predicted",
                   help="class whose explanation is attacked (label: as the authors' code)")


def _add_common(p: argparse.ArgumentParser, dataset_required: bool = True) -> None:
    from r2et_fast.datasets import DATASETS

    p.add_argument("--dataset", choices=DATASETS, required=dataset_required)
    p.add_argument("--data-seed", type=int, default=0, help="seed of the train/val/test split")
    p.add_argument("--k", type=int)
    p.add_argument("--backend", choices=_backend.BACKENDS)
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="r2et-fast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train a small model and print explanation rank metrics")
    demo.add_argument("--epochs", type=int, default=30)
    demo.add_argument("--k", type=int, default=4)
    demo.add_argument("--noise", type=float, default=0.05)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--backend", choices=_backend.BACKENDS)
    demo.add_argument("--out", help="write the results as JSON to this path")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.set_defaults(func=_cmd_demo)

    info = sub.add_parser("info", help="print the backend, versions and native kernels as JSON")
    info.set_defaults(func=_cmd_info)

    lst = sub.add_parser("list", help="list data sets, training methods and attacks")
    lst.set_defaults(func=_cmd_list)

    from r2et_fast.train import METHODS

    tr = sub.add_parser("train", help="train one method on a tabular data set (resumable)")
    _add_common(tr)
    tr.add_argument("--method", choices=METHODS, default="r2et")
    _add_train_options(tr)
    tr.add_argument("--out", help="run folder (default runs/<dataset>/<method>)")
    tr.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    tr.set_defaults(func=_cmd_train)

    at = sub.add_parser("attack", help="ERAttack a saved model's test split; print cAUC, aAUC, P@k")
    _add_common(at, dataset_required=False)
    at.add_argument("--model", required=True, help="model.pt written by `r2et-fast train`")
    _add_attack_options(at)
    at.add_argument("--out", help="write the scores as JSON")
    at.set_defaults(func=_cmd_attack)

    cmp_ = sub.add_parser("compare", help="train several methods and tabulate them under ERAttack")
    _add_common(cmp_)
    cmp_.add_argument("--methods", nargs="+", choices=METHODS, default=["vanilla", "r2et"])
    _add_train_options(cmp_)
    _add_attack_options(cmp_)
    cmp_.add_argument("--out", default="runs", help="folder of the runs and results.json")
    cmp_.add_argument("--lambda-gap-grid", type=float, nargs="+",
                      help="model selection for the R2ET family over these weights (SPEC §9)")
    cmp_.add_argument("--threshold", type=float, default=0.02,
                      help="selection keeps models within this validation AUC of Vanilla's")
    cmp_.set_defaults(func=_cmd_compare)

    from r2et_fast.datasets import DATASETS
    from r2et_fast.experiments._specs import SPECS

    rep = sub.add_parser("reproduce", help="train every method, attack, write results.json + report.md")
    rep.add_argument("--datasets", nargs="+", choices=tuple(SPECS), default=list(DATASETS),
                     help="tabular (adult bank compas), images (mnist) or graphs")
    rep.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    rep.add_argument("--seeds", type=int, default=1, help="mean ± std over this many training seeds")
    rep.add_argument("--quick", action="store_true", help="small budgets: minutes on 2 cores")
    rep.add_argument("--out", default="reproduction", help="output folder (also the resume cache)")
    rep.add_argument("--backend", choices=_backend.BACKENDS)
    rep.add_argument("--explain-target", choices=("predicted", "label"), default="predicted",
                     help="class whose explanation is attacked (label: as the authors' code)")
    rep.add_argument("--no-progress", action="store_true")
    rep.set_defaults(func=_cmd_reproduce)

    from r2et_fast.bounds._args import METHODS as ATTRIBUTIONS

    ce = sub.add_parser("certify", help="Wang & Kong attribution-deviation bounds for a saved model's test "
                        "samples (--validate: attack them too)")
    ce.add_argument("--dataset", choices=("mnist", *DATASETS),
                    help="default: the data set recorded in the model file")
    ce.add_argument("--model", required=True, help="model.pt written by `r2et-fast train` or `bounds`")
    ce.add_argument("--eps", type=float, nargs="+", required=True, help="one or more radii")
    ce.add_argument("--norm", choices=("l2", "linf"), default="l2")
    ce.add_argument("--method", choices=ATTRIBUTIONS, default="saliency", help="attribution method")
    ce.add_argument("--k", type=int, help="top-k of the certificate (default 50 mnist, 8 tabular)")
    ce.add_argument("--n-samples", type=int, default=50, help="first test samples to certify")
    ce.add_argument("--validate", action="store_true", help="attack the samples and compare with the bounds")
    ce.add_argument("--restarts", type=int, default=3, help="random starts per attack (--validate)")
    ce.add_argument("--steps", type=int, default=20, help="PGD steps (--validate)")
    ce.add_argument("--topk-steps", type=int, default=200, help="top-k attack steps, l-inf (--validate)")
    ce.add_argument("--keep-label", action="store_true", help="attacks stop before the prediction changes")
    ce.add_argument("--ig-steps", type=int, default=8, help="IG quadrature nodes")
    ce.add_argument("--smooth-pool", type=float, metavar="TAU",
                    help="MNIST CNN: evaluate with smooth (LSE) pooling of temperature TAU")
    ce.add_argument("--data-seed", type=int, default=0, help="seed of the train/val/test split")
    ce.add_argument("--seed", type=int, default=0, help="seed of the Lanczos start and the random starts")
    ce.add_argument("--threads", type=int, help="torch threads")
    ce.add_argument("--out", default="runs/certify", help="folder of <norm>_<method>.json / .md / .png")
    ce.add_argument("--no-progress", action="store_true")
    ce.set_defaults(func=_cmd_certify)

    bd = sub.add_parser("bounds", help="bound validation on MNIST (Wang & Kong): train softplus CNNs, "
                        "certify + attack, write results.json + report.md")
    bd.add_argument("--methods", nargs="+", choices=METHODS, default=["vanilla", "sp", "est_h", "r2et"],
                    help="training methods")
    bd.add_argument("--attributions", nargs="+", choices=ATTRIBUTIONS, default=["saliency"])
    bd.add_argument("--poolings", nargs="+", choices=("max", "lse"), default=["max", "lse"],
                    help="max: the models as trained; lse: the same weights with smooth pooling")
    bd.add_argument("--quick", action="store_true", help="tiny budgets: a few minutes on one core")
    bd.add_argument("--n-samples", type=int, help="test images (default 50, quick 4)")
    bd.add_argument("--epochs", type=int, help="training epochs (default 5, quick 1)")
    bd.add_argument("--restarts", type=int, help="random starts per attack (default 3, quick 1)")
    bd.add_argument("--tau", type=float, help="temperature of the smooth pooling (default 0.1)")
    bd.add_argument("--out", default="reproduction/bounds", help="output folder (also the resume cache)")
    bd.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    bd.add_argument("--no-progress", action="store_true")
    bd.set_defaults(func=_cmd_bounds)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
