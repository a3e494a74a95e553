"""`r2et-fast reproduce` (docs/spec.md §9): for each data set, train every method (model selection over
each method's grid on the validation split, or the cached runs), attack the test split with
ERAttack and the MSE attack, and write ``results.json`` and ``report.md`` with figures.

Per data set the report holds Table 1 (mean ± std over seeds, 95 % bootstrap intervals over test
samples, the areas under the budget curves), the paired verdicts of the paper's claims, the budget
curves (P@k vs eps), the accuracy–robustness trade-off and the studies, each over the seeds
(mean ± std and intervals, ``_study_summary``; ``study_seeds`` limits them to the first seeds): the
SmoothGrad and IG variants of Table 1, the correlation study (Hessian norm, thickness, manipulation
epoch), constrained attacks (P@k vs sensitivity per handler), the k / k' grid (one data set) and
faithfulness. Interrupted runs resume: training from its checkpoints, every evaluation from
its cached JSON; both are keyed by their settings (``_cache``), so a changed setting recomputes.
``ReproduceConfig.init`` picks from-scratch training, the authors' fine-tuning of Vanilla, or both.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from r2et_fast import _distributed
from r2et_fast._io import save_json
from r2et_fast.datasets import Split
from r2et_fast.experiments import _study_summary as study_summary
from r2et_fast.experiments import _summary as summary
from r2et_fast.experiments._cache import StartFrom, cached, data_key, model_key, train_or_load
from r2et_fast.experiments._report import render_report, write_figures
from r2et_fast.experiments._specs import DatasetSpec, get_spec
from r2et_fast.experiments._studies import (
    Budget,
    attack_box,
    attacked_explainer,
    budget_curve,
    case_study,
    constrained,
    correlation,
    evaluate,
    faithfulness,
    variants,
)
from r2et_fast.experiments._summary import PER_SAMPLE
from r2et_fast.experiments.protocol import AttackConfig, Candidate, select_model
from r2et_fast.metrics import prediction_auc
from r2et_fast.train import METHODS, TrainConfig, load_model
from r2et_fast.train._checkpoint import LOG, MODEL

EXPLAINER_VARIANTS = ("smoothgrad", "ig")
# How the regularised methods start (docs/spec.md §9): "scratch" (the seed's initialisation, the data
# set's training settings), "pretrained" (fine-tune the selected Vanilla model of the same seed, as
# the authors' code does) or "both" (each data set's entry is the scratch one, its fine-tuned twin
# under ``entry["pretrained"]``).
INITS = ("scratch", "pretrained", "both")
# Grid parameters that are regulariser weights: fine-tuning sweeps them over ``finetune_grid`` with
# the authors' adaptive scaling (TrainConfig.adaptive); the other grids (WD, SP, AT) are kept.
LAMBDAS = ("lambda_gap", "lambda_hess", "lambda_reg")
# The authors' sweep of those weights when fine-tuning (their code's grid, with adaptive scaling).
AUTHORS_FINETUNE_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


@dataclass(frozen=True)
class ReproduceConfig:
    """What to run. Budgets left at None take the data set's protocol (``_specs.SPECS``)."""

    datasets: tuple[str, ...] = ("adult", "bank", "compas")
    methods: tuple[str, ...] = METHODS
    seeds: int = 1
    # the studies beside Table 1 and the k / k' grid run on the first study_seeds seeds (None: all)
    study_seeds: int | None = None
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
    # data set of the k / k' study (None: COMPAS if run, else the first; "none": no k / k' study)
    k_grid_on: str | None = None
    n_pairs_grid: tuple[int, ...] = (2, 4, 8)
    # Budget curves: P@k at each multiple of the protocol's eps (geometric, from "almost nothing
    # changes" to "everything changes"; () switches them off), in budget_steps steps each (at most
    # Table 1's).
    eps_multipliers: tuple[float, ...] = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0)
    budget_steps: int = 100
    budget_samples: int = 500
    bootstrap_resamples: int = 1000   # percentile intervals over test samples (0: none)
    bootstrap_seed: int = 0
    constraints: tuple[str, ...] = ("none", "early_stop", "gda", "hedge", "qp", "fixed")
    constrained_samples: int = 10_000  # test samples of the constrained-attack study
    backend: str | None = None
    engine: str = "auto"               # TrainConfig.engine of every trained model
    explain_target: str = "predicted"  # the class whose explanation is attacked ("label": authors')
    init: str = "scratch"              # INITS; "pretrained": the authors' protocol below
    finetune_lr: float = 1e-5          # fine-tuning from Vanilla: Adam at this rate (authors'), ...
    finetune_epochs: int = 10          # ... for this many epochs, ...
    finetune_grid: tuple[float, ...] | None = None  # ... adaptive weights (None: the protocol's)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = self.eps_multipliers
        if m and (len(m) < 2 or m[0] <= 0 or not all(a < b for a, b in zip(m, m[1:]))):
            raise ValueError(f"eps_multipliers must be () or >= 2 increasing positive values, got {m!r}")
        if self.budget_steps < 1 or self.budget_samples < 1 or self.bootstrap_resamples < 0:
            raise ValueError("budget_steps and budget_samples must be >= 1, bootstrap_resamples >= 0")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        grid = self.finetune_grid
        if not (self.finetune_lr > 0 and self.finetune_epochs >= 1 and (grid is None or len(grid) > 0)):
            raise ValueError("finetune_lr must be > 0, finetune_epochs >= 1, finetune_grid None or non-empty")
        if self.k_grid_on not in (None, "none", *self.datasets):
            raise ValueError(f"k_grid_on must be None, 'none' or one of datasets {self.datasets}, got "
                             f"{self.k_grid_on!r}")
        if grid is not None and not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                        and math.isfinite(v) and v > 0 for v in grid):
            raise ValueError(f"finetune_grid must hold finite weights > 0, got {grid!r}")
        n = self.study_seeds
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= self.seeds):
            raise ValueError(f"study_seeds must be None or an int in 1..seeds ({self.seeds}), got {n!r}")
        c = self.constrained_samples
        if isinstance(c, bool) or not isinstance(c, int) or c < 1:
            raise ValueError(f"constrained_samples must be an int >= 1, got {c!r}")

    @classmethod
    def quick_defaults(cls, **overrides) -> ReproduceConfig:
        base: dict[str, Any] = dict(
            quick=True, epochs=2, steps=20, max_train=1500, max_test=150, selection_steps=10,
            selection_samples=100, correlation_samples=40, thickness_samples=4, thickness_path=4,
            faithfulness_samples=40, variant_samples=40, variant_steps=5, smoothgrad_samples=4,
            ig_steps=4, k_grid=(4, 8), n_pairs_grid=(2, 4), eps_multipliers=(1 / 16, 1 / 2, 4.0),
            budget_steps=10, budget_samples=40, finetune_epochs=2, finetune_grid=(1e-3, 1.0, 100.0))
        base.update(overrides)
        return cls(**base)


def budget(spec: DatasetSpec, cfg: ReproduceConfig) -> Budget:
    steps = cfg.steps or spec.steps
    alpha = cfg.alpha or spec.alpha * spec.steps / steps
    return Budget(cfg.k or spec.k, cfg.eps or spec.eps, alpha, steps, spec.step_norm)


def study_seeds(cfg: ReproduceConfig) -> int:
    """How many seeds (the first ones) run the studies beside Table 1 and the k / k' grid."""
    return cfg.seeds if cfg.study_seeds is None else cfg.study_seeds


def _subset(data: Split, cfg: ReproduceConfig) -> Split:
    if cfg.max_train is None:
        return data
    n = cfg.max_train
    return dataclasses.replace(data, x_train=data.x_train[:n], y_train=data.y_train[:n])


# The ReproduceConfig fields each cached study reads, beyond its model, budget and protocol.
STUDY_FIELDS = {
    "evaluation": ("max_test", "backend", "explain_target"),
    "budget_curve": ("max_test", "eps_multipliers", "budget_steps", "budget_samples", "backend",
                     "explain_target"),
    "selection": ("selection_threshold", "selection_steps", "selection_samples", "backend", "explain_target"),
    "variants": ("max_test", "variant_samples", "variant_steps", "smoothgrad_samples", "ig_steps", "backend",
                 "explain_target"),
    "faithfulness": ("max_test", "faithfulness_samples", "explain_target"),
    "correlation": ("max_test", "correlation_samples", "thickness_samples", "thickness_path", "backend",
                    "explain_target"),
    "constrained": ("max_test", "constraints", "constrained_samples", "backend"),
    "case_study": ("max_test", "backend", "explain_target"),
}
# DatasetSpec fields that reach a study's key another way: through the model's TrainConfig (train,
# grid) or the resolved ReproduceConfig (caps, k_grid, n_pairs_grid); ``load`` is a function and
# ``about`` a description.
_NOT_PROTOCOL = ("load", "train", "grid", "caps", "k_grid", "n_pairs_grid", "about")
# DatasetSpec fields added after caches were written: in the key only when set, so that the caches of
# a protocol that leaves them at None stay valid
_KEYED_WHEN_SET = ("finetune_grid",)


def _key(study: str, spec: DatasetSpec, cfg: ReproduceConfig, model: object, b: Budget, **extra) -> dict:
    """The cache key of one study of one model (``model``: its ``model_key``)."""
    protocol = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.name not in _NOT_PROTOCOL
                and not (f.name in _KEYED_WHEN_SET and getattr(spec, f.name) is None)}
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
    def one(run_spec: tuple[str, dict[str, int], int]) -> dict:
        method, extra, k = run_spec
        tag = "_".join(f"{key}{value}" for key, value in extra.items()) or "default"
        run = out / "kgrid" / f"{method}_{tag}"
        tcfg = TrainConfig(method=method, arch=spec.arch, seed=seed, backend=cfg.backend, engine=cfg.engine,
                           **{**base, "k": b.k, **extra})
        model = train_or_load(data, tcfg, run, trained_on, distributed=False)
        at_k = dataclasses.replace(b, k=k)
        key = _key("evaluation", spec, cfg, model_key(tcfg, trained_on), at_k)
        scores = cached(run / f"evaluation_k{k}.json", key,
                        partial(evaluate, model, data, spec, at_k, cfg))
        return {"method": method, "k": k, "n_pairs": extra.get("n_pairs"),
                "precision_at_k_erattack": scores["precision_at_k_erattack"], "cauc": scores["cauc"],
                "per_sample": scores.get("per_sample", {}).get("precision_at_k_erattack")}

    bar = partial(tqdm, desc="k grid", leave=False, disable=not progress)
    rows = _distributed.map_items(runs, one, progress=bar)
    return rows


def _select(data, spec, b: Budget, cfg, method: str, seed: int, out: Path, vanilla_auc: float,
            trained_on: dict, init: str = "scratch"):
    """Train ``method`` (one candidate per grid value when selecting) and pick one (docs/spec.md §9).
    ``init="pretrained"``: every method but Vanilla fine-tunes ``out``'s Vanilla model instead, in
    ``out/pretrained`` (:func:`_finetuning`).

    Returns (model, run folder, selection record or None, the model's ``model_key``)."""
    base = {**spec.train, **({"epochs": cfg.epochs} if cfg.epochs else {})}
    common = dict(method=method, arch=spec.arch, k=b.k, seed=seed, backend=cfg.backend, engine=cfg.engine)
    start, grid = None, spec.grid
    if init == "pretrained" and method != "vanilla":
        vanilla = TrainConfig(**{**common, "method": "vanilla"}, **base)
        start = StartFrom(out / "vanilla" / MODEL, model_key(vanilla, trained_on))
        out, base, grid = _finetuning(spec, cfg, out, base)
    if not cfg.select or method not in grid:
        run, tcfg = out / method, TrainConfig(**common, **base)
        model = train_or_load(data, tcfg, run, trained_on, distributed=False, start=start)
        return model, run, None, model_key(tcfg, trained_on, start)
    param, values = grid[method]
    candidates = []
    for value in values:
        run = out / f"{method}_{param}={value:g}"
        tcfg = TrainConfig(**common, **{**base, param: value, **({"adaptive": True} if param in LAMBDAS and
                                                                  start is not None else {})})
        candidates.append((train_or_load(data, tcfg, run, trained_on, distributed=False, start=start), run,
                           tcfg))

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

    keys = [model_key(tcfg, trained_on, start) for _, _, tcfg in candidates]
    recs = cached(out / f"{method}_selection.json",
                  _key("selection", spec, cfg, keys, b, vanilla_auc=vanilla_auc), records)
    best = next(i for i, r in enumerate(recs) if r.get("chosen"))
    model, run, _ = candidates[best]
    return model, run, {"param": param, "candidates": recs}, keys[best]


def finetune_grid(spec: DatasetSpec, cfg: ReproduceConfig) -> tuple[float, ...]:
    """The regulariser weights fine-tuning sweeps: the config's, else the protocol's, else the authors'."""
    return tuple(cfg.finetune_grid or spec.finetune_grid or AUTHORS_FINETUNE_GRID)


def _finetuning(spec: DatasetSpec, cfg: ReproduceConfig, out: Path, base: dict) -> tuple[Path, dict, dict]:
    """The authors' fine-tuning protocol: its run folder, training settings (``finetune_lr``,
    ``finetune_epochs``) and grids (the regulariser weights over :func:`finetune_grid`)."""
    grid = {m: (param, finetune_grid(spec, cfg) if param in LAMBDAS else values)
            for m, (param, values) in spec.grid.items()}
    return out / "pretrained", {**base, "lr": cfg.finetune_lr, "epochs": cfg.finetune_epochs}, grid


def validation_curve(run: Path) -> list[float] | None:
    """The validation AUC after each epoch of the model trained in ``run`` (its training log), or None
    when the run has no log."""
    try:
        history = json.loads((run / LOG).read_text()).get("history", [])
    except (OSError, ValueError, AttributeError):
        return None
    return [h["val_auc"] for h in history if isinstance(h, dict) and "val_auc" in h] or None


def _vanilla_auc(data, spec, b: Budget, cfg, root: Path, trained_on: dict, seed: int) -> float:
    model = _select(data, spec, b, cfg, "vanilla", seed, root, 0.0, trained_on)[0]
    return prediction_auc(model, data.x_val, data.y_val)


def _dataset(name: str, cfg: ReproduceConfig, out: Path, progress: bool, init: str = "scratch") -> dict:
    """One data set's entry of ``results.json``, its methods started as ``init`` says ("scratch" or
    "pretrained": fine-tuned from the seed's Vanilla, which is trained from scratch either way).
    Under a torchrun launch the methods of each seed (and then their studies) are split over the
    ranks: each trains, selects, attacks and studies
    its share alone (``train_or_load`` trains in one process: no DDP) and every rank gathers the
    JSON records, in the order one process computes them (``_distributed.map_items``)."""
    spec = get_spec(name)
    cfg = dataclasses.replace(cfg, **{key: min(getattr(cfg, key), cap) for key, cap in spec.caps.items()})
    b = budget(spec, cfg)
    per_method: dict = {}
    chosen: dict = {}
    study_runs: dict = {}  # method -> (seed, run folder, data, model key) of each seed that runs the studies
    refused: dict = {}
    curve_records: dict = {}
    val_curves: dict = {}  # method -> per seed, the validation AUC after each epoch
    for seed in range(cfg.seeds):
        data = _subset(spec.load(seed), cfg)
        root = out / "runs" / name / f"seed{seed}"
        trained_on = data_key(name, seed, cfg.max_train, data)
        # Vanilla's validation AUC is every method's selection threshold: one rank trains it (the
        # others wait in the gather), then any rank may load it from its run folder
        vanilla_auc = _distributed.map_items([seed], partial(_vanilla_auc, data, spec, b, cfg, root,
                                                             trained_on))[0]

        def one(method: str, seed=seed, data=data, root=root, trained_on=trained_on,
                vanilla_auc=vanilla_auc) -> dict:
            try:
                model, run, selection, mkey = _select(data, spec, b, cfg, method, seed, root, vanilla_auc,
                                                      trained_on, init)
            except ValueError as err:  # Exact-H refuses large inputs, with the reason
                if "refusing" not in str(err):
                    raise
                return {"refused": str(err)}
            # ``record``: evaluations cached before they kept the per-sample P@k are recomputed
            scores = cached(run / "evaluation.json",
                            _key("evaluation", spec, cfg, mkey, b, record="per_sample"),
                            partial(evaluate, model, data, spec, b, cfg))
            curve = None
            if cfg.eps_multipliers:
                curve = cached(run / "budget_curve.json", _key("budget_curve", spec, cfg, mkey, b),
                               partial(budget_curve, model, data, spec, b, cfg))
            return {"scores": scores, "curve": curve, "selection": selection, "run": str(run), "mkey": mkey,
                    "val_auc": validation_curve(run)}

        bar = partial(tqdm, desc=f"{name} seed {seed}" + (" (fine-tuned)" if init == "pretrained" else ""),
                      disable=not progress)
        for method, record in zip(cfg.methods, _distributed.map_items(cfg.methods, one, progress=bar)):
            if "refused" in record:
                refused[method] = record["refused"]
                continue
            scores = dict(record["scores"])
            if record["curve"] is not None:  # the curves' areas: budget-free columns of Table 1
                curve_records.setdefault(method, []).append(record["curve"])
                scores.update({f"auc_{key}": record["curve"][f"auc_{key}"] for key in PER_SAMPLE})
            per_method.setdefault(method, []).append(scores)
            if record.get("val_auc") is not None:
                val_curves.setdefault(method, []).append(record["val_auc"])
            selection = record["selection"]
            if selection is not None:
                chosen.setdefault(method, []).append(
                    next(r["config"][selection["param"]] for r in selection["candidates"] if r.get("chosen")))
            if seed < study_seeds(cfg):
                study_runs.setdefault(method, []).append((seed, Path(record["run"]), data, record["mkey"]))
    boot = (cfg.bootstrap_resamples, cfg.bootstrap_seed)
    entry: dict = {"init": init, "budget": dataclasses.asdict(b), "modality": spec.modality,
                   "table1": summary.table1(per_method, *boot), "claims": summary.claims(per_method, *boot),
                   "bootstrap": {"resamples": cfg.bootstrap_resamples, "seed": cfg.bootstrap_seed,
                                 "level": 0.95},
                   "budget_curves": summary.curves(curve_records), "selected": chosen, "refused": refused,
                   "validation_auc": val_curves,
                   **({"finetune_grid": list(finetune_grid(spec, cfg))} if init == "pretrained" else {}),
                   "variants": {}, "faithfulness": {}, "correlation": {}}

    def studies(item: tuple[str, int]) -> dict:
        m, i = item
        seed, run, data, mkey = study_runs[m][i]
        model = load_model(run / MODEL)[0].eval()  # trained (and saved) by whichever rank had it

        def study(kind: str, compute, *args):
            return cached(run / f"{kind}.json", _key(kind, spec, cfg, mkey, b), lambda: compute(*args))

        found = {"variants": study("variants", variants, model, data, spec, b, cfg),
                 "faithfulness": study("faithfulness", faithfulness, model, data, spec, cfg)}
        if m in ("vanilla", "r2et"):
            found["correlation"] = study("correlation", correlation, model, data, spec, b, cfg)
        if m == "vanilla":
            found["constrained"] = study("constrained", constrained, model, data, spec, b, cfg)
        if spec.modality != "tabular" and i == 0:  # one illustration per method, its first seed
            found["case_study"] = study("case_study", case_study, model, data, spec, b, cfg)
        return found

    items = [(m, i) for m, runs in study_runs.items() for i in range(len(runs))]
    bar = partial(tqdm, desc=f"{name} studies", disable=not progress)
    per_kind: dict = {}  # kind -> method -> the records of its seeds
    for (m, _), found in zip(items, _distributed.map_items(items, studies, progress=bar)):
        for kind, record in found.items():
            per_kind.setdefault(kind, {}).setdefault(m, []).append(record)
    summaries = (("variants", study_summary.variants), ("faithfulness", study_summary.faithfulness),
                 ("correlation", study_summary.correlation))
    for kind, summarise in summaries:
        entry[kind] = {m: summarise(records, *boot) for m, records in per_kind.get(kind, {}).items()}
    for m, corr in entry["correlation"].items():  # whose samples the figure shows
        corr["points"]["seed"] = study_runs[m][0][0]
    if "vanilla" in per_kind.get("constrained", {}):
        entry["constrained"] = study_summary.constrained(per_kind["constrained"]["vanilla"], *boot)
    if per_kind.get("case_study"):
        entry["case_study"] = {m: records[0] for m, records in per_kind["case_study"].items()}
    return entry


def reproduce(cfg: ReproduceConfig, *, progress: bool = True) -> dict:
    out = Path(cfg.out)
    results: dict = {"config": dataclasses.asdict(cfg), "datasets": {}}
    grid_on: str | None = cfg.k_grid_on or ("compas" if "compas" in cfg.datasets else cfg.datasets[0])
    if grid_on == "none":
        grid_on = None
    for name in cfg.datasets:
        entry = _dataset(name, cfg, out, progress, "pretrained" if cfg.init == "pretrained" else "scratch")
        if cfg.init == "both":  # the fine-tuned twin beside the scratch entry (readers keep the latter)
            entry["pretrained"] = _dataset(name, cfg, out, progress, "pretrained")
        if name == grid_on and cfg.k_grid:  # the k / k' study on one data set (it retrains)
            spec = get_spec(name)
            grids: dict[str, Any] = {"k_grid": spec.k_grid, "n_pairs_grid": spec.n_pairs_grid}
            if not cfg.quick:  # the data set's own grids (k = 50 for images and graphs)
                grid_cfg = dataclasses.replace(cfg, **{k: v for k, v in grids.items() if v is not None})
            else:
                grid_cfg = cfg
            per_seed = []
            for seed in range(study_seeds(cfg)):
                data = _subset(spec.load(seed), cfg)
                runs = out / "runs" / name / f"seed{seed}"
                per_seed.append(_k_grid(data, spec, budget(spec, cfg), grid_cfg, runs, seed,
                                        data_key(name, seed, cfg.max_train, data), progress))
            entry["k_grid"] = study_summary.k_grid(per_seed, cfg.bootstrap_resamples, cfg.bootstrap_seed)
        results["datasets"][name] = entry
    if _distributed.is_main():  # every rank holds the results; one writes them
        save_json(out / "results.json", results)
        figures = write_figures(results, out)
        (out / "report.md").write_text(render_report(results, figures))
    _distributed.barrier()
    return results
