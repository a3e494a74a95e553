"""`r2et-fast demo` and `r2et-fast info`."""

from __future__ import annotations

import argparse
import json

import torch

import r2et_fast
from r2et_fast import _backend, _ops
from r2et_fast._io import save_json
from r2et_fast.cli._errors import CliError
from r2et_fast.cli._options import NONNEGATIVE, POSITIVE_INT
from r2et_fast.ops import __all__ as OPS


def _cmd_demo(args: argparse.Namespace) -> int:
    from r2et_fast.experiments import DemoConfig, run_demo

    cfg = DemoConfig(epochs=args.epochs, k=args.k, noise=args.noise, seed=args.seed)
    if cfg.k > cfg.n_features:
        raise CliError(f"--k {cfg.k} is more than the {cfg.n_features} features of the demo task")
    if args.backend:
        _backend.set_backend(args.backend)
    result = run_demo(cfg, progress=not args.no_progress, device=args.device)
    print(f"\nr2et_fast demo: synthetic tabular task, {result['n_test']} test samples, "
          f"backend={result['backend']}")
    print(f"test accuracy: {result['test_accuracy']:.3f}")
    print(f"explanation stability under Gaussian input noise (sigma={cfg.noise}), k={cfg.k}:")
    print(f"  {'metric':<18}{'mean':>9}{'std':>9}")
    for name, stats in result["metrics"].items():
        print(f"  {name:<18}{stats['mean']:>9.4f}{stats['std']:>9.4f}")
    if args.out:
        save_json(args.out, result)
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


def add_demo(sub) -> None:
    demo = sub.add_parser("demo", help="train a small model and print explanation rank metrics")
    demo.add_argument("--epochs", type=POSITIVE_INT, default=30)
    demo.add_argument("--k", type=POSITIVE_INT, default=4, help="top-k size (at most the task's 16 features)")
    demo.add_argument("--noise", type=NONNEGATIVE, default=0.05, help="std of the Gaussian input noise")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--backend", choices=_backend.BACKENDS)
    demo.add_argument("--out", help="write the results as JSON to this path")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.set_defaults(func=_cmd_demo)


def add_info(sub) -> None:
    info = sub.add_parser("info", help="print the backend, versions and native kernels as JSON")
    info.set_defaults(func=_cmd_info)
