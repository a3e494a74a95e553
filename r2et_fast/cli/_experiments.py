"""`r2et-fast reproduce` and `r2et-fast bounds`: the committed experiments (docs/spec.md §7, §9)."""

from __future__ import annotations

import argparse
from pathlib import Path

from r2et_fast import _backend
from r2et_fast.cli._options import POSITIVE, POSITIVE_INT, add_engine


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from r2et_fast.experiments.reproduce import ReproduceConfig, reproduce

    chosen = {"datasets": tuple(args.datasets), "methods": tuple(args.methods), "seeds": args.seeds,
              "out": args.out, "backend": args.backend, "explain_target": args.explain_target,
              "init": args.init, "k_grid_on": args.k_grid_on, "study_seeds": args.study_seeds}
    if args.engine is not None:
        chosen["engine"] = args.engine
    cfg = ReproduceConfig.quick_defaults(**chosen) if args.quick else ReproduceConfig(**chosen)
    reproduce(cfg, progress=not args.no_progress)
    print(f"results: {Path(args.out) / 'results.json'}\nreport:  {Path(args.out) / 'report.md'}")
    return 0


def _cmd_bounds(args: argparse.Namespace) -> int:
    from r2et_fast.experiments.bounds import BoundsConfig, run_bounds

    keys = ("n_samples", "epochs", "restarts", "tau", "engine", "seeds")
    chosen = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    chosen.update(methods=tuple(args.methods), attributions=tuple(args.attributions),
                  poolings=tuple(args.poolings), out=args.out, threads=args.threads)
    cfg = BoundsConfig.quick_defaults(**chosen) if args.quick else BoundsConfig(**chosen)
    results = run_bounds(cfg, progress=not args.no_progress)
    for h in results["headline"]:  # the shares of samples whose bound the strong attack exceeded
        print(f"{h['pooling']:>4} {h['attribution']:<11}{h['norm']:<5} n={h['n']:<4} "
              f"exceeded by {h['strong_attack']}: T_e {h['pct_t_e_exceeded_by_strong_pgd']:5.1f}%"
              f"  T'_e {h['pct_t_e_generalized_exceeded_by_strong_pgd']:5.1f}%  T_e (linearised) "
              f"{h['pct_outside_t_e_linear']:.1f}%  min r {h['min_tightness_r']:+.4f}")
    print(f"results: {Path(args.out) / 'results.json'}\nreport:  {Path(args.out) / 'report.md'}")
    return 0


def add_reproduce(sub) -> None:
    from r2et_fast.datasets import DATASETS
    from r2et_fast.experiments._specs import SPECS
    from r2et_fast.train import METHODS

    rep = sub.add_parser("reproduce", help="train every method, attack, write results.json + report.md")
    rep.add_argument("--datasets", nargs="+", choices=tuple(SPECS), default=list(DATASETS),
                     help="tabular (adult bank compas), images (mnist) or graphs")
    rep.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    rep.add_argument("--seeds", type=POSITIVE_INT, default=1, help="mean ± std over this many training seeds")
    rep.add_argument("--study-seeds", type=POSITIVE_INT, default=None,
                     help="run the studies beside Table 1 (variants, correlations, constrained attacks, "
                          "faithfulness, the k / k' grid) on the first N seeds only (default: every seed)")
    rep.add_argument("--quick", action="store_true", help="small budgets: minutes on 2 cores")
    rep.add_argument("--out", default="reproduction",
                     help="output folder (also the resume cache, keyed by the settings)")
    rep.add_argument("--backend", choices=_backend.BACKENDS)
    add_engine(rep)
    rep.add_argument("--explain-target", choices=("predicted", "label"), default="predicted",
                     help="class whose explanation is attacked (label: as the authors' code)")
    rep.add_argument("--init", choices=("scratch", "pretrained", "both"), default="scratch",
                     help="regularised methods trained from scratch, fine-tuned from the seed's Vanilla "
                     "(the authors' protocol: Adam lr 1e-5, 10 epochs, adaptive weights 1e-3 ... 100) "
                     "or both side by side")
    rep.add_argument("--k-grid-on", choices=(*SPECS, "none"),
                     help="data set of the k / k' study, which retrains Vanilla, R2ET and R2ET-mm per k "
                     "(default: compas when run, else the first data set; none: skip it)")
    rep.add_argument("--no-progress", action="store_true")
    rep.set_defaults(func=_cmd_reproduce)


def add_bounds(sub) -> None:
    from r2et_fast.bounds import ATTRIBUTIONS
    from r2et_fast.experiments.bounds import POOLINGS
    from r2et_fast.train import METHODS

    bd = sub.add_parser("bounds", help="bound validation on MNIST (Wang & Kong): train softplus CNNs, "
                        "certify + attack, write results.json + report.md")
    bd.add_argument("--methods", nargs="+", choices=METHODS, default=["vanilla", "sp", "est_h", "r2et"],
                    help="training methods")
    bd.add_argument("--attributions", nargs="+", choices=ATTRIBUTIONS, default=["saliency"])
    bd.add_argument("--poolings", nargs="+", choices=POOLINGS, default=list(POOLINGS),
                    help="max: the max-pool CNNs as trained; lse: the same weights with smooth pooling; "
                    "avg: CNNs trained with average pooling (avgpool_cnn)")
    bd.add_argument("--quick", action="store_true", help="tiny budgets: a few minutes on one core")
    bd.add_argument("--n-samples", type=POSITIVE_INT, help="test images (default 50, quick 4)")
    bd.add_argument("--epochs", type=POSITIVE_INT, help="training epochs (default 5, quick 1)")
    bd.add_argument("--restarts", type=POSITIVE_INT,
                    help="random starts per attack: the strong attack of the exceedance columns "
                    "(default 5, quick 2; the report states the number used)")
    bd.add_argument("--tau", type=POSITIVE, help="temperature of the smooth pooling (default 0.1)")
    bd.add_argument("--seeds", type=POSITIVE_INT,
                    help="repeat for this many training and split seeds, each into OUT/seed<s>/, and "
                    "summarise them in OUT (default 1: OUT itself)")
    add_engine(bd)
    bd.add_argument("--out", default="reproduction/bounds",
                    help="output folder (also the resume cache, keyed by the settings)")
    bd.add_argument("--threads", type=POSITIVE_INT, default=1, help="torch threads (default 1)")
    bd.add_argument("--no-progress", action="store_true")
    bd.set_defaults(func=_cmd_bounds)
