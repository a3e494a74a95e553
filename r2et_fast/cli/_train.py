"""`r2et-fast train`: one method on one data set of any modality, resumable (docs/spec.md §3, §4).

The run folder's checkpoint is checked before training, so that a checkpoint of other settings or
an unreadable one is refused with the flags that fix it (``--restart``, ``--out``) rather than the
library's ``resume=False``, and a resumed run says so."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from r2et_fast.cli import _data
from r2et_fast.cli._errors import CliError
from r2et_fast.cli._options import POSITIVE_INT, add_common, add_train_options, train_overrides

# The architectures a data set's default may be swapped for (same inputs, same outputs): the
# average-pooling CNN on single MNIST digits, which the sound certificate can bound.
ARCH_SWAPS = (("cnn", "avgpool_cnn"),)
ARCH_SWAPS_HELP = "avgpool_cnn for mnist"

# What a usable checkpoint holds (r2et_fast.train.Trainer writes these keys).
CHECKPOINT_KEYS = ("model", "optimizer", "epoch", "history", "config")


def _differences(saved, wanted) -> str:
    return ", ".join(f"{f.name} {getattr(saved, f.name)!r} -> {getattr(wanted, f.name)!r}"
                     for f in dataclasses.fields(wanted)
                     if f.compare and getattr(saved, f.name) != getattr(wanted, f.name))  # not: device


def epochs_done(out: Path, cfg, data: _data.Data) -> int:
    """Epochs of this run already in ``out``'s checkpoint (0 without one); a checkpoint that is
    unreadable, of other settings or of another model is refused."""
    from r2et_fast._io import load_torch
    from r2et_fast.train import TrainConfig, build_model
    from r2et_fast.train._checkpoint import CHECKPOINT

    path = out / CHECKPOINT
    if not path.is_file():
        return 0
    fresh = "pass --restart to train from scratch (or another --out)"
    try:
        state = load_torch(path)
        missing = [key for key in CHECKPOINT_KEYS if key not in state]
        if missing:
            raise ValueError(f"{path} lacks {', '.join(missing)}")
        saved, epoch = TrainConfig.from_dict(state["config"]), int(state["epoch"])
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RuntimeError) as err:
        raise CliError(f"--out {out}: not a checkpoint of r2et-fast train ({err}); {fresh}") from err
    if saved != cfg:
        diff = _differences(saved, cfg)
        finished = " (a finished run cannot be extended)" if epoch >= saved.epochs else ""
        raise CliError(f"--out {out} holds a run of other settings: {diff}{finished}; {fresh}")
    x, y = data.split.x_train, data.split.y_train
    try:  # same settings on other data (another feature count) would fail inside the trainer
        build_model(cfg, tuple(x.shape[1:]), int(y.max()) + 1).load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        raise CliError(f"--out {out}: its checkpoint's weights do not fit the {cfg.arch} model of "
                       f"{data.label} (trained on other data?); {fresh}") from err
    return epoch


def _cmd_train(args: argparse.Namespace) -> int:
    from r2et_fast.train import TrainConfig, train
    from r2et_fast.train._checkpoint import CHECKPOINT, MODEL

    data = _data.load(args.dataset, seed=args.data_seed, max_train=args.max_train)
    arch = data.spec.arch
    if args.arch is not None:
        if args.arch != arch and (arch, args.arch) not in ARCH_SWAPS:
            raise CliError(f"--arch {args.arch}: {data.label} is modelled by {arch}"
                           + (f" (or {ARCH_SWAPS_HELP})" if any(a == arch for a, _ in ARCH_SWAPS) else ""))
        arch = args.arch
    # the data set's protocol (architecture, k, training defaults), then the command line
    cfg = TrainConfig(**{"method": args.method, "arch": arch, "k": data.spec.k, **data.spec.train,
                         **train_overrides(args), "device": args.device})
    _data.check_k(cfg.k, data)
    out = Path(args.out or f"runs/{data.label}/{args.method}")
    done = 0 if args.restart else epochs_done(out, cfg, data)
    if done:
        print(f"resuming {out / CHECKPOINT}: {done} of {cfg.epochs} epochs already done "
              "(--restart trains from scratch)")
    result = train(data.split, cfg, out_dir=out, resume=not args.restart, progress=not args.no_progress,
                   dataset_name=data.name)
    last = result.history[-1] if result.history else {}
    how = f"resumed at epoch {done} of {cfg.epochs}" if done else f"epochs: {cfg.epochs}"
    scores = f"val accuracy {last.get('val_accuracy', float('nan')):.4f}"
    if int(data.split.y_train.max()) == 1:  # the AUC is of P(class 1): binary tasks only
        scores += f", val AUC {last.get('val_auc', float('nan')):.4f}"
    print(f"trained {args.method} ({cfg.arch}) on {data.label}, {how}: {scores}; model at {out / MODEL}")
    return 0


def add_train(sub) -> None:
    from r2et_fast.train import METHODS

    tr = sub.add_parser("train", help="train one method on a data set of any modality (resumable)")
    add_common(tr, every_modality=True)
    tr.add_argument("--method", choices=METHODS, default="r2et")
    add_train_options(tr)
    tr.add_argument("--arch", choices=sorted({a for pair in ARCH_SWAPS for a in pair}),
                    help=f"the model (default the data set's; {ARCH_SWAPS_HELP}: average pooling, which "
                    "`certify --sound` can bound)")
    tr.add_argument("--max-train", type=POSITIVE_INT, help="train on the first training samples only")
    tr.add_argument("--out", help="run folder (default runs/<dataset>/<method>)")
    tr.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    tr.set_defaults(func=_cmd_train)
