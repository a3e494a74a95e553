"""`r2et-fast reproduce` (docs/spec.md §9): for each data set, train every method (model selection over
each method's grid on the validation split, or the cached runs), attack the test split with
ERAttack and the MSE attack, and write ``results.json`` and ``report.md`` with figures.

Per data set the report holds Table 1 (mean ± std over seeds), the SmoothGrad and IG variants of
Table 1, the correlation study (Hessian norm, thickness, manipulation epoch), constrained attacks
(P@k vs sensitivity per handler), the accuracy–robustness trade-off, the k / k' grid (first data set)
and faithfulness. Interrupted runs resume: training from its checkpoints, every evaluation from
its cached JSON; both are keyed by their settings (``_cache``), so a changed setting recomputes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from r2et_fast._io import save_json
from r2et_fast.datasets import Split
from r2et_fast.experiments._cache import cached, data_key, model_key, train_or_load
from r2et_fast.experiments._report import render_report, write_figures
from r2et_fast.experiments._specs import DatasetSpec, get_spec
from r2et_fast.experiments._studies import (
    Budget,
    attack_box,
    attacked_explainer,
    case_study,
    constrained,
    correlation,
    evaluate,
    faithfulness,
    variants,
)
from r2et_fast.experiments.protocol import AttackConfig, Candidate, select_model
from r2et_fast.metrics import prediction_auc
from r2et_fast.train import METHODS, TrainConfig

EXPLAINER_VARIANTS = ("smoothgrad", "ig")


@dataclass(frozen=True)
class ReproduceConfig:
    """What to run. Budgets left at None take the data set's protocol (``_specs.SPECS``)."""

    datasets: tuple[str, ...] = ("adult", "bank", "compas")
    methods: tuple[str, ...] = METHODS
    seeds: int = 1
    quick: bool = False
    out: str = "reproduction"
    k: int | None = None
    epochs: int | None = None
    steps: int | None = None
    alpha: float | None = None
    eps: float | None = None
    select: bool = True               # model selection over each method's grid (docs/spec.md §9)
    selection_threshold: float = 0.02
    selection_steps: int = 100        # validation attack: fewer, proportionally longer steps
    selection_samples: int = 1000
    max_train: int | None = None      # subsample the training split (quick runs)
    max_test: int | None = None       # attack only the first test samples
    correlation_samples: int = 500
    thickness_samples: int = 16       # S
    thickness_path: int = 10          # T
    faithfulness_samples: int = 500
    variant_samples: int = 500        # SmoothGrad / IG variants of Table 1
    variant_steps: int = 100
    smoothgrad_samples: int = 10
    ig_steps: int = 8
    k_grid: tuple[int, ...] = (4, 8, 12)
    k_grid_on: str | None = None  # data set of the k / k' study (None: COMPAS if run, else the first)
    n_pairs_grid: tuple[int, ...] = (2, 4, 8)
    constraints: tuple[str, ...] = ("none", "early_stop", "gda", "hedge", "qp", "fixed")
    backend: str | None = None
    engine: str = "auto"               # TrainConfig.engine of every trained model
    explain_target: str = "predicted"  # the class whose explanation is attacked ("label": authors')
    extra: dict = field(default_factory=dict)

    @classmethod
    def quick_defaults(cls, **overrides) -> ReproduceConfig:
        base: dict[str, Any] = dict(
            quick=True, epochs=2, steps=20, max_train=1500, max_test=150, selection_steps=10,
            selection_samples=100, correlation_samples=40, thickness_samples=4, thickness_path=4,
            faithfulness_samples=40, variant_samples=40, variant_steps=5, smoothgrad_samples=4,
            ig_steps=4, k_grid=(4, 8), n_pairs_grid=(2, 4))
        base.update(overrides)
        return cls(**base)


def budget(spec: DatasetSpec, cfg: ReproduceConfig) -> Budget:
    steps = cfg.steps or spec.steps
    alpha = cfg.alpha or spec.alpha * spec.steps / steps
    return Budget(cfg.k or spec.k, cfg.eps or spec.eps, alpha, steps, spec.step_norm)


def _subset(data: Split, cfg: ReproduceConfig) -> Split:
    if cfg.max_train is None:
        return data
    n = cfg.max_train
    return dataclasses.replace(data, x_train=data.x_train[:n], y_train=data.y_train[:n])


# The ReproduceConfig fields each cached study reads, beyond its model, budget and protocol.
STUDY_FIELDS = {
    "evaluation": ("max_test", "backend", "explain_target"),
    "selection": ("selection_threshold", "selection_steps", "selection_samples", "backend", "explain_target"),
    "variants": ("max_test", "variant_samples", "variant_steps", "smoothgrad_samples", "ig_steps", "backend",
                 "explain_target"),
    "faithfulness": ("max_test", "faithfulness_samples", "explain_target"),
    "correlation": ("max_test", "correlation_samples", "thickness_samples", "thickness_path", "backend",
                    "explain_target"),
    "constrained": ("max_test", "constraints", "backend"),
    "case_study": ("max_test", "backend", "explain_target"),
}
# DatasetSpec fields that reach a study's key another way: through the model's TrainConfig (train,
# grid) or the resolved ReproduceConfig (caps, k_grid, n_pairs_grid); ``load`` is a function and
# ``about`` a description.
_NOT_PROTOCOL = ("load", "train", "grid", "caps", "k_grid", "n_pairs_grid", "about")


def _key(study: str, spec: DatasetSpec, cfg: ReproduceConfig, model: object, b: Budget, **extra) -> dict:
    """The cache key of one study of one model (``model``: its ``model_key``)."""
    protocol = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)
                if f.name not in _NOT_PROTOCOL}
    return {"study": study, "model": model, "budget": dataclasses.asdict(b), "protocol": protocol,
            "settings": {name: getattr(cfg, name) for name in STUDY_FIELDS[study]}, **extra}


def _k_grid(data, spec, b: Budget, cfg, out: Path, seed: int, trained_on: dict,
            progress: bool = True) -> list[dict]:
    """R2ET trained and attacked at each k, R2ET-mm at each k' (k fixed), Vanilla at each k."""
    rows = []
    base = {**spec.train, **({"epochs": cfg.epochs} if cfg.epochs else {})}
    runs: list[tuple[str, dict[str, int], int]] = [("vanilla", {}, k) for k in cfg.k_grid]
    runs += [("r2et", {"k": k}, k) for k in cfg.k_grid]
    runs += [("r2et_mm", {"k": b.k, "n_pairs": p}, b.k) for p in cfg.n_pairs_grid if p <= b.k]
    for method, extra, k in tqdm(runs, desc="k grid", leave=False, disable=not progress):
        tag = "_".join(f"{key}{value}" for key, value in extra.items()) or "default"
        run = out / "kgrid" / f"{method}_{tag}"
        tcfg = TrainConfig(method=method, arch=spec.arch, seed=seed, backend=cfg.backend, engine=cfg.engine,
                           **{**base, "k": b.k, **extra})
        model = train_or_load(data, tcfg, run, trained_on)
        at_k = dataclasses.replace(b, k=k)
        key = _key("evaluation", spec, cfg, model_key(tcfg, trained_on), at_k)
        scores = cached(run / f"evaluation_k{k}.json", key,
                        partial(evaluate, model, data, spec, at_k, cfg))
        rows.append({"method": method, "k": k, "n_pairs": extra.get("n_pairs"),
                     "precision_at_k_erattack": scores["precision_at_k_erattack"], "cauc": scores["cauc"]})
    return rows


def _select(data, spec, b: Budget, cfg, method: str, seed: int, out: Path, vanilla_auc: float,
            trained_on: dict):
    """Train ``method`` (one candidate per grid value when selecting) and pick one (docs/spec.md §9).

    Returns (model, run folder, selection record or None, the model's ``model_key``)."""
    base = {**spec.train, **({"epochs": cfg.epochs} if cfg.epochs else {})}
    common = dict(method=method, arch=spec.arch, k=b.k, seed=seed, backend=cfg.backend, engine=cfg.engine)
    if not cfg.select or method not in spec.grid:
        run, tcfg = out / method, TrainConfig(**common, **base)
        return train_or_load(data, tcfg, run, trained_on), run, None, model_key(tcfg, trained_on)
    param, values = spec.grid[method]
    candidates = []
    for value in values:
        run = out / f"{method}_{param}={value:g}"
        tcfg = TrainConfig(**common, **{**base, param: value})
        candidates.append((train_or_load(data, tcfg, run, trained_on), run, tcfg))

    def records():
        samples = min(cfg.selection_samples, spec.max_selection or cfg.selection_samples)
        attack_cfg = AttackConfig(k=b.k, alpha=b.alpha * b.steps / cfg.selection_steps,
                                  steps=cfg.selection_steps, eps=b.eps, max_samples=samples,
                                  step_norm=b.step_norm, backend=cfg.backend,
                                  explain_target=cfg.explain_target)
        results = [Candidate(m, c) for m, _, c in candidates]
        _, recs = select_model(results, data, attack_cfg, vanilla_auc, threshold=cfg.selection_threshold,
                               progress=False, box=attack_box(spec, data),
                               explainer=lambda m: attacked_explainer(spec, m))
        return recs

    keys = [model_key(tcfg, trained_on) for _, _, tcfg in candidates]
    recs = cached(out / f"{method}_selection.json",
                  _key("selection", spec, cfg, keys, b, vanilla_auc=vanilla_auc), records)
    best = next(i for i, r in enumerate(recs) if r.get("chosen"))
    model, run, _ = candidates[best]
    return model, run, {"param": param, "candidates": recs}, keys[best]


def _mean_std(values: list[float]) -> dict:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}


def _dataset(name: str, cfg: ReproduceConfig, out: Path, progress: bool) -> dict:
    spec = get_spec(name)
    cfg = dataclasses.replace(cfg, **{key: min(getattr(cfg, key), cap) for key, cap in spec.caps.items()})
    b = budget(spec, cfg)
    per_method: dict = {}
    chosen: dict = {}
    seed0: dict = {}
    refused: dict = {}
    for seed in range(cfg.seeds):
        data = _subset(spec.load(seed), cfg)
        root = out / "runs" / name / f"seed{seed}"
        trained_on = data_key(name, seed, cfg.max_train, data)
        vanilla = _select(data, spec, b, cfg, "vanilla", seed, root, 0.0, trained_on)[0]
        vanilla_auc = prediction_auc(vanilla, data.x_val, data.y_val)
        for method in tqdm(cfg.methods, desc=f"{name} seed {seed}", disable=not progress):
            try:
                model, run, selection, mkey = _select(data, spec, b, cfg, method, seed, root, vanilla_auc,
                                                      trained_on)
            except ValueError as err:  # Exact-H refuses large inputs, with the reason
                if "refusing" not in str(err):
                    raise
                refused[method] = str(err)
                continue
            scores = cached(run / "evaluation.json", _key("evaluation", spec, cfg, mkey, b),
                            partial(evaluate, model, data, spec, b, cfg))
            per_method.setdefault(method, []).append(scores)
            if selection is not None:
                chosen.setdefault(method, []).append(
                    next(r["config"][selection["param"]] for r in selection["candidates"] if r.get("chosen")))
            if seed == 0:
                seed0[method] = (model, run, data, mkey)
    table = {m: {key: _mean_std([s[key] for s in runs]) for key in runs[0]} for m, runs in per_method.items()}
    entry: dict = {"budget": dataclasses.asdict(b), "modality": spec.modality, "table1": table,
                   "selected": chosen, "refused": refused, "variants": {}, "faithfulness": {},
                   "correlation": {}}
    for m, (model, run, data, mkey) in tqdm(seed0.items(), desc=f"{name} studies", disable=not progress):
        def study(kind: str, compute, *args, run=run, mkey=mkey):
            return cached(run / f"{kind}.json", _key(kind, spec, cfg, mkey, b), lambda: compute(*args))

        entry["variants"][m] = study("variants", variants, model, data, spec, b, cfg)
        entry["faithfulness"][m] = study("faithfulness", faithfulness, model, data, spec, cfg)
        if m in ("vanilla", "r2et"):
            entry["correlation"][m] = study("correlation", correlation, model, data, spec, b, cfg)
        if m == "vanilla":
            entry["constrained"] = study("constrained", constrained, model, data, spec, b, cfg)
        if spec.modality != "tabular":
            entry.setdefault("case_study", {})[m] = study("case_study", case_study, model, data, spec, b,
                                                          cfg)
    return entry


def reproduce(cfg: ReproduceConfig, *, progress: bool = True) -> dict:
    out = Path(cfg.out)
    results: dict = {"config": dataclasses.asdict(cfg), "datasets": {}}
    grid_on = cfg.k_grid_on or ("compas" if "compas" in cfg.datasets else cfg.datasets[0])
    for name in cfg.datasets:
        entry = _dataset(name, cfg, out, progress)
        if name == grid_on and cfg.k_grid:  # the k / k' study on one data set (it retrains)
            spec = get_spec(name)
            data = _subset(spec.load(0), cfg)
            grids: dict[str, Any] = {"k_grid": spec.k_grid, "n_pairs_grid": spec.n_pairs_grid}
            if not cfg.quick:  # the data set's own grids (k = 50 for images and graphs)
                grid_cfg = dataclasses.replace(cfg, **{k: v for k, v in grids.items() if v is not None})
            else:
                grid_cfg = cfg
            runs = out / "runs" / name / "seed0"
            entry["k_grid"] = _k_grid(data, spec, budget(spec, cfg), grid_cfg, runs, 0,
                                      data_key(name, 0, cfg.max_train, data), progress)
        results["datasets"][name] = entry
    save_json(out / "results.json", results)
    figures = write_figures(results, out)
    (out / "report.md").write_text(render_report(results, figures))
    return results
