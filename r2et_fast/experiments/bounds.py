"""Validation of the Wang & Kong (CVPR 2023) attribution-deviation bounds on MNIST (docs/spec.md §7, §9).

``run_bounds`` trains (or loads from ``<out>/models/<method>/``) single-input softplus CNNs on
single MNIST digits for several training methods, then, per model, per norm and radius of the spec
(l2 PGD-20 with eps in {0.05, 0.1, 0.2}; l_inf 200-step top-k attack plus PGD with eps in
{0.01, 0.03, 0.05}; pixels kept in [0, 1]) and per attribution method, certifies ``n_samples``
test images and attacks them (``r2et_fast.bounds.validate_bounds``, several random starts).
It writes ``results.json`` and ``report.md`` with the analogues of the bound paper's Tables 3-5
and histograms of T_e - T^_e. Every (pooling, model, attribution, norm, eps) result is cached as
JSON keyed by its settings (``_cache``), so an interrupted run resumes and a changed setting
recomputes.

Max pooling. The project's CNN (docs/spec.md §8) pools with ``max``. On MNIST most pooling windows
of the first layer sit on the constant black background, where the four candidates are *exactly*
equal: the gradient is routed by a tie-break, and any perturbation, however small, re-routes it.
The attribution g is then discontinuous at x, and the bounds, which assume a twice-differentiable
model, cannot hold (the attacked deviation does not shrink with eps). The report therefore
evaluates every trained max-pool model twice: ``pooling="max"`` (the model as trained) and
``pooling="lse"``, the same weights with each max pool replaced by the smooth maximum
tau * log(mean(exp(h / tau))) over the window (``r2et_fast.models.SmoothPoolCNN``). The
surrogate's test accuracy is reported beside the original's, and a "jump" diagnostic (the relative
change of g under a random perturbation of l2 size 1e-4) shows the discontinuity directly.
The third option, ``pooling="avg"``, is a model *trained* smooth: the same layout with average
pooling (``arch="avgpool_cnn"``, ``r2et_fast.models.AvgPoolCNN``), trained per method into
``<out>/models/avgpool/<method>/`` and evaluated as trained, so no surrogate stands between the
model and the bounds.

The attack is the strong one of the issue "A sound top-k certificate": ``restarts`` = 5 random
starts of every attack by default, and the report states the number actually used (``--quick``
uses fewer) in the column headers. Beside the worst case over the restarts it gives the bound
paper's mean over them.

The parts: the diagnostics (``_bounds_diagnostics``), one setting (``_bounds_eval``), the figures
(``_bounds_plots``) and report.md (``_bounds_report``); this module holds the configuration and the
run.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from r2et_fast import _distributed
from r2et_fast._io import save_json
from r2et_fast._validation import NORMS
from r2et_fast.bounds import ATTRIBUTIONS
from r2et_fast.datasets import Split, load_mnist
from r2et_fast.engine import AUTO
from r2et_fast.experiments._bounds_diagnostics import JUMP_RADIUS, accuracy, jump, tied_pool_share
from r2et_fast.experiments._bounds_eval import AttackBudget, evaluate
from r2et_fast.experiments._bounds_plots import figure, histogram
from r2et_fast.experiments._bounds_report import headline, render_report, summary_table
from r2et_fast.experiments._bounds_seeds import run_seeds
from r2et_fast.experiments._cache import cached, data_key, model_key, train_or_load
from r2et_fast.models import POOLINGS as SURROGATE_POOLINGS
from r2et_fast.models import with_pooling
from r2et_fast.train import METHOD_LABELS, TrainConfig

__all__ = ["ARCH_OF_POOLING", "ATTRIBUTIONS", "DATASET", "JUMP_RADIUS", "L2_EPS", "LINF_EPS", "NORMS",
           "POOLINGS", "RECORD_VERSION", "AttackBudget", "BoundsConfig", "accuracy", "evaluate", "headline",
           "histogram", "jump", "render_report", "run_bounds", "summary_table", "tied_pool_share"]

DATASET = "mnist"  # single digits, 10 classes, pixels in [0, 1]
# max / lse: the max-pool CNN as trained and its smooth surrogate; avg: the CNN trained with
# average pooling. The architecture each pooling is trained with:
POOLINGS = (*SURROGATE_POOLINGS, "avg")
ARCH_OF_POOLING = {"max": "cnn", "lse": "cnn", "avg": "avgpool_cnn"}
# Part of every setting's key: bump it when the record of one setting changes (2: per-restart
# deviations, the mean over restarts, float64 T_c), so older cached records are recomputed.
RECORD_VERSION = 2
L2_EPS = (0.05, 0.1, 0.2)
LINF_EPS = (0.01, 0.03, 0.05)


@dataclass(frozen=True)
class BoundsConfig:
    """What ``run_bounds`` runs. Defaults: the spec's budgets, 50 test images, 5 random starts
    (the strong attack whose exceedance the report gives), every pooling of :data:`POOLINGS`."""

    methods: tuple[str, ...] = ("vanilla", "sp", "est_h", "r2et")
    attributions: tuple[str, ...] = ("saliency",)
    poolings: tuple[str, ...] = POOLINGS
    norms: tuple[str, ...] = NORMS
    l2_eps: tuple[float, ...] = L2_EPS
    linf_eps: tuple[float, ...] = LINF_EPS
    k: int = 50
    n_samples: int = 50
    restarts: int = 5                 # random starts of every attack: the strong attack
    steps: int = 20
    topk_steps: int = 200
    keep_label: bool = False
    ig_steps: int = 8
    tau: float = 0.1                  # temperature of the smooth-pooling surrogate
    # training (single-input softplus CNN on single digits, 10 classes)
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    max_train: int | None = None      # subsample the training split (quick runs)
    softplus_beta: float = 10.0       # every method's activation
    sp_beta: float = 3.0              # SP: a smoother softplus (with the same beta SP = Vanilla)
    lambda_hess: float = 1e-3         # Est-H, R2ET
    lambda_gap: float = 0.3           # R2ET
    data_seed: int = 0
    seed: int = 0
    seeds: int = 1                    # > 1: repeat at seeds seed + s (and data_seed + s) into seed<s>/
    engine: str = AUTO                # TrainConfig.engine of every trained model
    threads: int | None = None        # torch.set_num_threads when given
    out: str = "reproduction/bounds"
    quick: bool = False

    def __post_init__(self) -> None:
        for name, allowed in (("norms", NORMS), ("poolings", POOLINGS), ("attributions", ATTRIBUTIONS)):
            values = getattr(self, name)
            if not values or any(v not in allowed for v in values):
                raise ValueError(f"{name} must be a non-empty subset of {allowed}, got {values!r}")
        from r2et_fast.train import METHODS

        if not self.methods or any(m not in METHODS for m in self.methods):
            raise ValueError(f"methods must be a non-empty subset of {METHODS}, got {self.methods!r}")
        for name in ("n_samples", "restarts", "steps", "topk_steps", "ig_steps", "epochs", "k", "seeds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("l2_eps", "linf_eps"):
            if any(not (isinstance(e, (int, float)) and 0 < e < math.inf) for e in getattr(self, name)):
                raise ValueError(f"{name} must hold radii > 0, got {getattr(self, name)!r}")

    @classmethod
    def quick_defaults(cls, **overrides: Any) -> BoundsConfig:
        """Minutes on one core: 1 epoch on 1,000 images, 4 test images, short attacks; 2 restarts,
        so that the mean over restarts differs from the worst case (the report states the number)."""
        base: dict[str, Any] = dict(quick=True, epochs=1, max_train=1000, n_samples=4, restarts=2, steps=5,
                                    topk_steps=20, ig_steps=4)
        base.update(overrides)
        return cls(**base)

    def train_config(self, method: str, arch: str = "cnn") -> TrainConfig:
        beta = self.sp_beta if method == "sp" else self.softplus_beta
        return TrainConfig(method=method, arch=arch, activation="softplus", softplus_beta=beta,
                           epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=self.seed,
                           score="logit", k=self.k, lambda_hess=self.lambda_hess, lambda_gap=self.lambda_gap,
                           engine=self.engine)

    def archs(self) -> tuple[str, ...]:
        """The architectures the poolings need, each trained once per method."""
        return tuple(dict.fromkeys(ARCH_OF_POOLING[p] for p in self.poolings))

    def budget(self) -> AttackBudget:
        return AttackBudget(self.restarts, self.steps, self.topk_steps, self.keep_label, self.seed)

    def radii(self, norm: str) -> tuple[float, ...]:
        return self.l2_eps if norm == "l2" else self.linf_eps

    def explainer_kwargs(self, attribution: str) -> dict | None:
        return {"n_steps": self.ig_steps} if attribution == "ig" else None



def _subset(data: Split, n: int | None) -> Split:
    if n is None:
        return data
    return dataclasses.replace(data, x_train=data.x_train[:n], y_train=data.y_train[:n])


def _model_key(cfg: BoundsConfig, method: str, pooling: str, trained_on: dict) -> dict:
    return model_key(cfg.train_config(method, ARCH_OF_POOLING[pooling]), trained_on)


def _model_dir(out: Path, method: str, arch: str) -> Path:
    # the max-pool CNNs keep the folder of earlier runs (their cache stays valid)
    return out / "models" / method if arch == "cnn" else out / "models" / "avgpool" / method


def _train(data: Split, cfg: BoundsConfig, method: str, arch: str, out: Path, trained_on: dict,
           progress: bool) -> nn.Module:
    return train_or_load(data, cfg.train_config(method, arch), _model_dir(out, method, arch), trained_on,
                         dataset_name=DATASET, progress=progress)


def _variant(trained: dict[tuple[str, str], nn.Module], method: str, pooling: str, tau: float) -> nn.Module:
    """The model a pooling evaluates: the trained CNN, its smooth surrogate, or the avg-pool CNN."""
    model = trained[(method, ARCH_OF_POOLING[pooling])]
    return model.eval() if pooling == "avg" else with_pooling(model, pooling, tau)


def _diagnostics_key(cfg: BoundsConfig, method: str, pooling: str, trained_on: dict) -> dict:
    """What the diagnostics of one model under one pooling depend on."""
    return {"study": "diagnostics", "model": _model_key(cfg, method, pooling, trained_on), "pooling": pooling,
            "tau": cfg.tau if pooling == "lse" else None, "n_samples": cfg.n_samples,
            "attributions": cfg.attributions, "ig_steps": cfg.ig_steps, "seed": cfg.seed}


def _setting_key(cfg: BoundsConfig, method: str, pooling: str, attribution: str, norm: str,
                 eps: float, trained_on: dict) -> dict:
    """What one (pooling, model, attribution, norm, eps) record depends on."""
    return {"study": "setting", "record": RECORD_VERSION,
            "model": _model_key(cfg, method, pooling, trained_on), "pooling": pooling,
            "tau": cfg.tau if pooling == "lse" else None, "n_samples": cfg.n_samples, "k": cfg.k,
            "budget": asdict(cfg.budget()), "attribution": attribution, "norm": norm, "eps": eps,
            "explainer_kwargs": cfg.explainer_kwargs(attribution)}


def run_bounds(cfg: BoundsConfig, progress: bool = True) -> dict:
    """Train / load the models, certify and attack every setting, write results.json + report.md.

    Returns the results dict (also written to ``<out>/results.json``). With ``cfg.seeds`` > 1 each
    seed runs into ``<out>/seed<s>/`` and ``<out>`` gets the summary over them (``_bounds_seeds``).
    """
    if cfg.seeds > 1:
        return run_seeds(cfg, run_bounds, progress=progress)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    data = _subset(load_mnist(seed=cfg.data_seed), cfg.max_train)
    trained_on = data_key(DATASET, cfg.data_seed, cfg.max_train, data)
    x = data.x_test[:cfg.n_samples]
    lower, upper = 0.0, 1.0
    budget = cfg.budget()

    models: dict[str, dict] = {}
    trained: dict[tuple[str, str], nn.Module] = {}
    for method in cfg.methods:
        entry: dict[str, Any] = {"label": METHOD_LABELS[method], "config": {}, "val_accuracy": {},
                                 "pooling": {}}
        for arch in cfg.archs():  # per trained architecture: its config and validation accuracy
            model = trained[(method, arch)] = _train(data, cfg, method, arch, out, trained_on, progress)
            entry["config"][arch] = cfg.train_config(method, arch).to_dict()
            entry["val_accuracy"][arch] = accuracy(model, data.x_val, data.y_val)
        for pooling in cfg.poolings:
            variant = _variant(trained, method, pooling, cfg.tau)

            def diagnostics(variant=variant):
                return {"test_accuracy": accuracy(variant, data.x_test, data.y_test),
                        "tied_pool_share": tied_pool_share(variant, x),
                        "jump": {a: jump(variant, x, a, explainer_kwargs=cfg.explainer_kwargs(a),
                                         seed=cfg.seed) for a in cfg.attributions}}

            path = out / "cache" / pooling / method / "diagnostics.json"
            key = _diagnostics_key(cfg, method, pooling, trained_on)
            entry["pooling"][pooling] = cached(path, key, diagnostics)
        models[method] = entry

    settings = [(p, m, a, n, e) for p in cfg.poolings for m in cfg.methods for a in cfg.attributions
                for n in cfg.norms for e in cfg.radii(n)]

    def one(setting: tuple) -> dict:
        pooling, method, attribution, norm, eps = setting
        variant = _variant(trained, method, pooling, cfg.tau)
        path = out / "cache" / pooling / method / attribution / f"{norm}_eps{eps:g}.json"
        compute = functools.partial(evaluate, variant, x, eps, norm, attribution, cfg.k, budget=budget,
                                    lower=lower, upper=upper,
                                    explainer_kwargs=cfg.explainer_kwargs(attribution))
        record = cached(path, _setting_key(cfg, method, pooling, attribution, norm, eps, trained_on), compute)
        return {"pooling": pooling, "model": method, "attribution": attribution, "norm": norm, "eps": eps,
                **record}

    # under torchrun the settings are split over the ranks (each writes its own cache records) and
    # gathered in order on every rank; rank 0 writes the results
    bar = functools.partial(tqdm, desc="bounds", disable=not progress)
    runs = _distributed.map_items(settings, one, progress=bar)

    figures = []
    for pooling in cfg.poolings:
        for attribution in cfg.attributions:  # drawn by rank 0; the others name the same file
            figures.append(figure(runs, cfg, pooling, attribution, out) if _distributed.is_main()
                           else f"hist_{pooling}_{attribution}.png")
    results = {"config": asdict(cfg), "n_test": len(x), "box": [lower, upper], "models": models, "runs": runs,
               "headline": headline(runs), "figures": figures}
    if _distributed.is_main():
        save_json(out / "results.json", results)
        (out / "report.md").write_text(render_report(results))
    _distributed.barrier()
    return results
