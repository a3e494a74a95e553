"""`r2et-fast certify`: Wang & Kong attribution-deviation bounds (and, with ``--validate``, attacks)
for the test samples of a saved model (docs/spec.md §7); with ``--sound`` the sound top-k
certificate instead (``_certify_sound``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path

import torch
from tqdm.auto import tqdm

from r2et_fast import _distributed
from r2et_fast._device import model_device, to
from r2et_fast._io import save_json
from r2et_fast._validation import NORMS
from r2et_fast.cli._data import (
    DATASET_HELP,
    MODEL_DATASETS,
    check_fits,
    check_k,
    dataset_of,
    load,
    load_saved,
)
from r2et_fast.cli._errors import CliError
from r2et_fast.cli._options import NONNEGATIVE, POSITIVE, POSITIVE_INT
from r2et_fast.experiments._bounds_diagnostics import tied_pool_share
from r2et_fast.experiments._bounds_eval import AttackBudget, evaluate
from r2et_fast.experiments._bounds_plots import histogram
from r2et_fast.experiments._bounds_report import summary_table
from r2et_fast.models import DEFAULT_ACTIVATION, MnistCNN, SmoothPoolCNN
from r2et_fast.train import METHOD_LABELS, TrainConfig

DEFAULT_BUDGET = AttackBudget()


def _piecewise_linear(cfg: TrainConfig) -> str | None:
    """The activation's name when the model is piecewise linear (zero Hessian almost everywhere)."""
    act = "softplus" if cfg.method == "sp" else (cfg.activation or DEFAULT_ACTIVATION[cfg.arch])
    return None if act == "softplus" else act


def certify_saved(model_path: str | Path, *, dataset: str | None = None, eps: Sequence[float] = (0.1,),
                  norm: str = "l2", method: str = "saliency", k: int | None = None, n_samples: int = 50,
                  validate: bool = False, out: str | Path = "runs/certify",
                  budget: AttackBudget = DEFAULT_BUDGET, ig_steps: int = 8, smooth_pool: float | None = None,
                  data_seed: int = 0, progress: bool = True) -> dict:
    """Certify (and with ``validate`` attack) the first ``n_samples`` test samples of ``dataset``
    with a model saved by ``r2et_fast.train`` for each radius in ``eps``.

    ``dataset``: any data set of ``cli._data`` (mnist: single digits, box [0, 1]; graph pairs: edge
    weights in [0, 1]; tabular: the data's per-feature range; or a brain-network file); default the
    one recorded in the model file. ``k`` defaults to the data set's (8 tabular, 50 otherwise).
    ``smooth_pool``: evaluate a CNN with LSE pooling of this temperature (:class:`SmoothPoolCNN`).
    Writes ``<out>/<norm>_<method>.json``, ``.md`` and ``.png`` (histogram of T_e - T^_e, or of T_e
    without attacks); returns the JSON payload with the paths and notes.
    """
    path = str(model_path)
    model, tcfg, meta = load_saved(path)
    data = load(dataset_of(path, meta, dataset), seed=data_seed, arch=tcfg.arch)
    check_fits(path, meta, data)
    name = data.label
    x = data.split.x_test[:n_samples].to(model_device(model) or "cpu")
    lower, upper = (to(bound, x.device) for bound in data.box())
    notes = []
    act = _piecewise_linear(tcfg)
    if act is not None:
        notes.append(f"the model uses {act} activations: piecewise linear, so its input Hessian is zero "
                     "almost everywhere (T_e = 0 for saliency) and the bounds, which assume a "
                     "twice-differentiable model, do not describe its attribution changes; train with "
                     "softplus")
    if smooth_pool is not None:
        model = SmoothPoolCNN(model, smooth_pool).eval()
    elif isinstance(model, MnistCNN):
        share = 100 * (tied_pool_share(model, x) or 0.0)
        notes.append(f"max pooling: {share:.0f}% of the first layer's pooling windows are exact ties on "
                     "these images, where g jumps under any perturbation; --smooth-pool TAU evaluates "
                     "the same weights with smooth (LSE) pooling")
    k = k if k is not None else data.spec.k
    check_k(k, data)
    ekw = {"n_steps": ig_steps} if method == "ig" else None
    # under torchrun the radii are split over the ranks (each is certified on the whole batch, as
    # one process does: the Lanczos starts are drawn per batch) and every rank gets every record
    bar = partial(tqdm, desc=f"certify {norm}", disable=not progress)
    records = _distributed.map_items(list(eps), lambda e: evaluate(
        model, x, e, norm, method, k, validate=validate, budget=budget, lower=lower, upper=upper,
        explainer_kwargs=ekw), progress=bar)
    out = Path(out)
    stem = f"{norm}_{method}"
    title = f"{tcfg.method} on {name}, {method}, {norm}"
    figure = histogram(records, out / f"{stem}.png", title) if _distributed.is_main() else f"{stem}.png"
    payload = {"model": path, "dataset": data.name, "train_method": tcfg.method, "norm": norm,
               "method": method, "k": k, "n_samples": len(x), "validate": validate,
               "budget": asdict(budget) if validate else None, "smooth_pool": smooth_pool, "notes": notes,
               "records": records,
               "files": {"json": f"{stem}.json", "markdown": f"{stem}.md", "figure": figure}}
    if _distributed.is_main():
        save_json(out / f"{stem}.json", payload)
    rows = [(METHOD_LABELS[tcfg.method], r["summary"]) for r in records]
    table = summary_table(rows, validated=validate)
    how = "bounds only (no attacks)."
    if validate:
        how = f"attacked ({', '.join(records[0]['summary']['attacks'])}, {budget.restarts} random start(s))."
    lines = [f"# Attribution-deviation bounds: {title}", "",
             f"Model `{path}`; first {len(x)} test samples; k = {k}; {how}", "", table, ""]
    lines += [f"Note: {n}." for n in notes] + ["", f"![histogram]({figure})", ""]
    if _distributed.is_main():
        (out / f"{stem}.md").write_text("\n".join(lines))
    payload["table"] = table
    return payload


def _cmd_certify_sound(args: argparse.Namespace) -> int:
    from r2et_fast.cli._certify_sound import certify_sound_saved
    from r2et_fast.experiments._sound_eval import SoundBudget

    if args.method == "ig":
        raise CliError("--method ig: --sound bounds saliency and gradxinput only")
    if args.smooth_pool is not None:
        raise CliError("--smooth-pool: --sound certifies the saved model itself, not a surrogate")
    budget = SoundBudget(restarts=args.restarts, steps=args.steps, seed=args.seed)
    result = certify_sound_saved(args.model, dataset=args.dataset, eps=args.eps, norm=args.norm,
                                 method=args.method, score=args.score, k=args.k, n_samples=args.n_samples,
                                 out=args.out, budget=budget, attack=not args.no_attack, eps_max=args.eps_max,
                                 data_seed=args.data_seed)
    print(f"\n{result['table']}")
    files = result["files"]
    print(f"\nwritten to {args.out}: {files['json']}, {files['markdown']}, {files['figure']}")
    return 0


def _cmd_certify(args: argparse.Namespace) -> int:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.sound:
        return _cmd_certify_sound(args)
    for flag, given in (("--score", args.score != "logit"), ("--no-attack", args.no_attack),
                        ("--eps-max", args.eps_max != 1.0)):
        if given:
            raise CliError(f"{flag} needs --sound")
    budget = AttackBudget(restarts=args.restarts, steps=args.steps, topk_steps=args.topk_steps,
                          keep_label=args.keep_label, seed=args.seed)
    result = certify_saved(args.model, dataset=args.dataset, eps=args.eps, norm=args.norm,
                           method=args.method, k=args.k, n_samples=args.n_samples, validate=args.validate,
                           out=args.out, budget=budget, ig_steps=args.ig_steps,
                           smooth_pool=args.smooth_pool, data_seed=args.data_seed,
                           progress=not args.no_progress)
    print(f"\n{result['train_method']} on {result['dataset']}: {result['method']}, {result['norm']}, "
          f"{result['n_samples']} test samples, k = {result['k']}\n\n{result['table']}")
    for note in result["notes"]:
        print(f"note: {note}", file=sys.stderr)
    files = result["files"]
    print(f"\nwritten to {args.out}: {files['json']}, {files['markdown']}, {files['figure']}")
    return 0


def add_certify(sub) -> None:
    from r2et_fast.bounds import ATTRIBUTIONS

    ce = sub.add_parser("certify", help="Wang & Kong attribution-deviation bounds for a saved model's test "
                        "samples (--validate: attack them too)")
    ce.add_argument("--dataset", choices=MODEL_DATASETS, type=MODEL_DATASETS.parse, metavar="NAME|FILE",
                    help=f"{', '.join(MODEL_DATASETS)}: {DATASET_HELP}; default: the data set recorded "
                    "in the model file")
    ce.add_argument("--model", required=True, help="model.pt written by `r2et-fast train` or `bounds`")
    ce.add_argument("--eps", type=NONNEGATIVE, nargs="+", required=True, help="one or more radii")
    ce.add_argument("--norm", choices=NORMS, default="l2")
    ce.add_argument("--method", choices=ATTRIBUTIONS, default="saliency", help="attribution method")
    ce.add_argument("--k", type=POSITIVE_INT, help="top-k of the certificate (default 8 tabular, 50 images "
                    "and graphs)")
    ce.add_argument("--n-samples", type=POSITIVE_INT, default=50, help="first test samples to certify")
    ce.add_argument("--validate", action="store_true", help="attack the samples and compare with the bounds")
    ce.add_argument("--restarts", type=POSITIVE_INT, default=3,
                    help="random starts per attack (--validate, --sound)")
    ce.add_argument("--steps", type=POSITIVE_INT, default=20,
                    help="PGD steps (--validate; --sound: every attack)")
    ce.add_argument("--topk-steps", type=POSITIVE_INT, default=200,
                    help="top-k attack steps, l-inf (--validate)")
    ce.add_argument("--keep-label", action="store_true", help="attacks stop before the prediction changes")
    ce.add_argument("--ig-steps", type=POSITIVE_INT, default=8, help="IG quadrature nodes")
    ce.add_argument("--smooth-pool", type=POSITIVE, metavar="TAU",
                    help="MNIST CNN: evaluate with smooth (LSE) pooling of temperature TAU")
    ce.add_argument("--data-seed", type=int, default=0, help="seed of the train/val/test split")
    ce.add_argument("--seed", type=int, default=0, help="seed of the Lanczos start and the random starts")
    ce.add_argument("--threads", type=POSITIVE_INT, help="torch threads")
    ce.add_argument("--sound", action="store_true",
                    help="sound top-k certificate by interval bound propagation (MLPs, CNNs without max "
                    "pooling): per-sample radii, certified and attacked P@k curves, and the first-order "
                    "certificate beside it")
    ce.add_argument("--score", choices=("logit", "loss"), default="logit",
                    help="--sound: the differentiated score (logit z_c or the cross-entropy at c)")
    ce.add_argument("--eps-max", type=POSITIVE, default=1.0, help="--sound: top of the radius bisection")
    ce.add_argument("--no-attack", action="store_true", help="--sound: bounds only, no attacks")
    ce.add_argument("--out", default="runs/certify", help="folder of <norm>_<method>.json / .md / .png "
                    "(--sound: sound_<norm>_<method>.*)")
    ce.add_argument("--no-progress", action="store_true")
    ce.set_defaults(func=_cmd_certify)
