"""`r2et-fast reproduce` (SPEC §9): for each data set, train every method (model selection over
each method's grid on the validation split, or the cached runs), attack the test split with
ERAttack and the MSE attack, and write ``results.json`` and ``report.md`` with figures.

Per data set the report holds Table 1 (mean ± std over seeds), the SmoothGrad and IG variants of
Table 1, the correlation study (Hessian norm, thickness, manipulation epoch), constrained attacks
(P@k vs sensitivity per handler), the accuracy–robustness trade-off, the k / k' grid (first data set)
and faithfulness. Interrupted runs resume: training from its checkpoints, every evaluation from
its cached JSON.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.stats
import torch
from tqdm.auto import tqdm

from r2et_fast import regularizers
from r2et_fast._io import save_json
from r2et_fast.attacks import ERAttack, MSEAttack
from r2et_fast.datasets import Split
from r2et_fast.experiments._report import render_report, write_figures
from r2et_fast.experiments._specs import DatasetSpec, get_spec
from r2et_fast.experiments.tabular import AttackConfig, data_box, explain_targets, select_model
from r2et_fast.explain import AdjacencyGradXInput, IntegratedGradients, Saliency, SmoothGrad
from r2et_fast.metrics import COMP, DFFOT, SUFF, Sensitivity, prediction_auc
from r2et_fast.thickness import topk_thickness
from r2et_fast.train import METHODS, TrainConfig, load_model, train

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
    select: bool = True               # model selection over each method's grid (SPEC §9)
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
    explain_target: str = "predicted"  # the class whose explanation is attacked ("label": authors')
    extra: dict = field(default_factory=dict)

    @classmethod
    def quick_defaults(cls, **overrides) -> ReproduceConfig:
        base = dict(quick=True, epochs=2, steps=20, max_train=1500, max_test=150, selection_steps=10,
                    selection_samples=100, correlation_samples=40, thickness_samples=4, thickness_path=4,
                    faithfulness_samples=40, variant_samples=40, variant_steps=5, smoothgrad_samples=4,
                    ig_steps=4, k_grid=(4, 8), n_pairs_grid=(2, 4))
        base.update(overrides)
        return cls(**base)


@dataclass(frozen=True)
class Budget:
    """The resolved protocol of one data set under a config."""

    k: int
    eps: float
    alpha: float
    steps: int
    step_norm: str

    def scaled(self, steps: int) -> Budget:
        """The same radius in fewer, proportionally longer steps."""
        return dataclasses.replace(self, steps=steps, alpha=self.alpha * self.steps / steps)


def budget(spec: DatasetSpec, cfg: ReproduceConfig) -> Budget:
    steps = cfg.steps or spec.steps
    alpha = cfg.alpha or spec.alpha * spec.steps / steps
    return Budget(cfg.k or spec.k, cfg.eps or spec.eps, alpha, steps, spec.step_norm)


def _subset(data: Split, cfg: ReproduceConfig) -> Split:
    if cfg.max_train is None:
        return data
    n = cfg.max_train
    return dataclasses.replace(data, x_train=data.x_train[:n], y_train=data.y_train[:n])


def _cached(path: Path, compute):
    if path.is_file():
        return json.loads(path.read_text())
    value = compute()
    save_json(path, value)
    return value


def _box(spec: DatasetSpec, data: Split):
    return data_box(data) if spec.box == "data" else spec.box


def _test(data: Split, cfg: ReproduceConfig, limit: int | None = None, spec: DatasetSpec | None = None):
    caps = (cfg.max_test, limit, len(data.x_test), spec.max_test if spec is not None else None)
    n = min(v for v in caps if v is not None)
    return data.x_test[:n], data.y_test[:n]


def _explainer(spec: DatasetSpec, model):
    """The attacked explanation of the data set (loss score, like the attacks' default)."""
    if spec.explainer == "adjacency":
        return AdjacencyGradXInput(model, score="loss")
    return Saliency(model, score="loss")


def _attack(attack_cls, model, data, spec, b: Budget, cfg, x, y, **kw):
    lower, upper = _box(spec, data)
    kw.setdefault("explainer", _explainer(spec, model))
    attack = attack_cls(model, k=b.k, eps=b.eps, alpha=b.alpha, steps=b.steps, norm="linf",
                        step_norm=b.step_norm, lower=lower, upper=upper, backend=cfg.backend, **kw)
    return attack(x, explain_targets(model, x, y, cfg.explain_target))


def _evaluate(model, data, spec, b: Budget, cfg) -> dict:
    x, y = _test(data, cfg, spec=spec)
    er = _attack(ERAttack, model, data, spec, b, cfg, x, y)
    mse = _attack(MSEAttack, model, data, spec, b, cfg, x, y)
    return {"cauc": prediction_auc(model, x, y), "aauc": prediction_auc(model, er.x_adv, y),
            "precision_at_k_erattack": er.final_precision_at_k.double().mean().item(),
            "precision_at_k_mse": mse.final_precision_at_k.double().mean().item(),
            "aauc_mse": prediction_auc(model, mse.x_adv, y)}


def _variants(model, data, spec, b: Budget, cfg) -> dict:
    """P@k of the SmoothGrad and IG explanations under an ERAttack on that explanation."""
    x, y = _test(data, cfg, cfg.variant_samples, spec)
    short = b.scaled(cfg.variant_steps)
    explainers = {
        "smoothgrad": SmoothGrad(model, n_samples=cfg.smoothgrad_samples, stdev=spec.smoothgrad_stdev, seed=0,
                                 score="loss", abs=True),
        "ig": IntegratedGradients(model, n_steps=cfg.ig_steps, method="gausslegendre", score="loss",
                                  abs=True),
    }
    out = {}
    for name, explainer in explainers.items():
        er = _attack(ERAttack, model, data, spec, short, cfg, x, y, explainer=explainer)
        out[name] = er.final_precision_at_k.double().mean().item()
    return out


def _faithfulness(model, data, spec, cfg) -> dict:
    x, y = _test(data, cfg, cfg.faithfulness_samples, spec)
    maps = _explainer(spec, model).attribute(x, target=explain_targets(model, x, y, cfg.explain_target))
    return {name: float(metric()(model, x, maps).double().mean()) for name, metric in
            (("dffot", DFFOT), ("comp", COMP), ("suff", SUFF))}


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float | None:
    r = scipy.stats.spearmanr(a.detach().numpy(), b.numpy()).statistic
    return None if r is None or math.isnan(r) else float(r)


def _correlation(model, data, spec, b: Budget, cfg) -> dict:
    """Per test sample: Hessian norm, thickness and manipulation epoch (no early stop, so every
    sample runs the whole budget and the epoch is where its top-k first changes)."""
    x, y = _test(data, cfg, cfg.correlation_samples, spec)
    y = explain_targets(model, x, y, cfg.explain_target)
    h, _ = regularizers.hessian_norm(model, x, y, backend=cfg.backend)
    explainer = _explainer(spec, model)
    lower, upper = _box(spec, data)
    thick = topk_thickness(lambda z, i: explainer.attribute(z, target=y[i]), x, b.k, eps=b.eps,
                           n_samples=cfg.thickness_samples, n_path=cfg.thickness_path,
                           backend=cfg.backend).per_sample
    er = ERAttack(model, k=b.k, eps=b.eps, alpha=b.alpha, steps=b.steps, step_norm=b.step_norm,
                  lower=lower, upper=upper, backend=cfg.backend, explainer=explainer)(x, y)
    if spec.manipulation_threshold >= 1.0:
        epoch = er.manipulation_epoch.double()
    else:  # the first step where P@k falls below the threshold (never: the number of steps + 1)
        below = er.precision_at_k < spec.manipulation_threshold
        never = torch.full_like(er.manipulation_epoch, below.shape[0])
        epoch = torch.where(below.any(dim=0), below.float().argmax(dim=0), never).double()
    return {"hessian": h.detach().tolist(), "thickness": thick.tolist(), "epoch": epoch.tolist(),
            "manipulation_threshold": spec.manipulation_threshold,
            "spearman_thickness_epoch": _spearman(thick, epoch),
            "spearman_hessian_epoch": _spearman(h, epoch)}


def _constrained(model, data, spec, b: Budget, cfg) -> list[dict]:
    """Each constraint handler on Vanilla, attacking the *label's* explanation (which can flip the
    prediction, unlike the predicted class's), twice the radius, margin constraint."""
    x, y = _test(data, cfg, spec=spec)
    lower, upper = _box(spec, data)
    rows = []
    for constraint in cfg.constraints:
        result = ERAttack(model, k=b.k, eps=2 * b.eps, alpha=2 * b.alpha, steps=b.steps, norm="linf",
                          step_norm=b.step_norm, constraint=constraint, distance="margin", lower=lower,
                          upper=upper, backend=cfg.backend, explainer=_explainer(spec, model))(x, y)
        rows.append({"constraint": constraint,
                     "precision_at_k": result.final_precision_at_k.double().mean().item(),
                     "sensitivity": Sensitivity().share(model, x, result.x_adv)})
    return rows


def _k_grid(data, spec, b: Budget, cfg, out: Path, seed: int) -> list[dict]:
    """R2ET trained and attacked at each k, R2ET-mm at each k' (k fixed), Vanilla at each k."""
    rows = []
    base = {**spec.train, **({"epochs": cfg.epochs} if cfg.epochs else {})}
    runs = [("vanilla", {}, k) for k in cfg.k_grid] + [("r2et", {"k": k}, k) for k in cfg.k_grid]
    runs += [("r2et_mm", {"k": b.k, "n_pairs": p}, b.k) for p in cfg.n_pairs_grid if p <= b.k]
    for method, extra, k in tqdm(runs, desc="k grid", leave=False):
        tag = "_".join(f"{key}{value}" for key, value in extra.items()) or "default"
        run = out / "kgrid" / f"{method}_{tag}"
        tcfg = TrainConfig(method=method, arch=spec.arch, seed=seed, backend=cfg.backend,
                           **{**base, "k": b.k, **extra})
        model = _train(data, tcfg, run)
        scores = _cached(run / f"evaluation_k{k}.json",
                         lambda m=model, kk=k: _evaluate(m, data, spec, dataclasses.replace(b, k=kk), cfg))
        rows.append({"method": method, "k": k, "n_pairs": extra.get("n_pairs"),
                     "precision_at_k_erattack": scores["precision_at_k_erattack"], "cauc": scores["cauc"]})
    return rows


def _train(data: Split, tcfg: TrainConfig, run: Path):
    if (run / "model.pt").is_file():
        return load_model(run / "model.pt")[0].eval()
    return train(data, tcfg, out_dir=run, progress=False).model.eval()


def _select(data, spec, b: Budget, cfg, method: str, seed: int, out: Path, vanilla_auc: float):
    """Train ``method`` (one candidate per grid value when selecting) and pick one (SPEC §9)."""
    base = {**spec.train, **({"epochs": cfg.epochs} if cfg.epochs else {})}
    common = dict(method=method, arch=spec.arch, k=b.k, seed=seed, backend=cfg.backend)
    if not cfg.select or method not in spec.grid:
        run = out / method
        return _train(data, TrainConfig(**common, **base), run), run, None
    param, values = spec.grid[method]
    candidates = []
    for value in values:
        run = out / f"{method}_{param}={value:g}"
        tcfg = TrainConfig(**common, **{**base, param: value})
        candidates.append((_train(data, tcfg, run), run, tcfg))

    def records():
        samples = min(cfg.selection_samples, spec.max_selection or cfg.selection_samples)
        attack_cfg = AttackConfig(k=b.k, alpha=b.alpha * b.steps / cfg.selection_steps,
                                  steps=cfg.selection_steps, eps=b.eps, max_samples=samples,
                                  step_norm=b.step_norm, backend=cfg.backend,
                                  explain_target=cfg.explain_target)
        results = [_Candidate(m, c) for m, _, c in candidates]
        _, recs = select_model(results, data, attack_cfg, vanilla_auc, threshold=cfg.selection_threshold,
                               progress=False, box=_box(spec, data),
                               explainer=lambda m: _explainer(spec, m))
        return recs

    recs = _cached(out / f"{method}_selection.json", records)
    best = next(i for i, r in enumerate(recs) if r.get("chosen"))
    model, run, _ = candidates[best]
    return model, run, {"param": param, "candidates": recs}


@dataclass
class _Candidate:  # the fields of a TrainResult that select_model reads
    model: torch.nn.Module
    config: TrainConfig


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
        vanilla, _, _ = _select(data, spec, b, cfg, "vanilla", seed, root, 0.0)
        vanilla_auc = prediction_auc(vanilla, data.x_val, data.y_val)
        for method in tqdm(cfg.methods, desc=f"{name} seed {seed}", disable=not progress):
            try:
                model, run, selection = _select(data, spec, b, cfg, method, seed, root, vanilla_auc)
            except ValueError as err:  # Exact-H refuses large inputs, with the reason
                if "refusing" not in str(err):
                    raise
                refused[method] = str(err)
                continue
            scores = _cached(run / "evaluation.json", lambda m=model, d=data: _evaluate(m, d, spec, b, cfg))
            per_method.setdefault(method, []).append(scores)
            if selection is not None:
                chosen.setdefault(method, []).append(
                    next(r["config"][selection["param"]] for r in selection["candidates"] if r.get("chosen")))
            if seed == 0:
                seed0[method] = (model, run, data)
    table = {m: {key: _mean_std([s[key] for s in runs]) for key in runs[0]} for m, runs in per_method.items()}
    entry: dict = {"budget": dataclasses.asdict(b), "modality": spec.modality, "table1": table,
                   "selected": chosen, "refused": refused, "variants": {}, "faithfulness": {},
                   "correlation": {}}
    for m, (model, run, data) in tqdm(seed0.items(), desc=f"{name} studies", disable=not progress):
        entry["variants"][m] = _cached(run / "variants.json",
                                       lambda mm=model, d=data: _variants(mm, d, spec, b, cfg))
        entry["faithfulness"][m] = _cached(run / "faithfulness.json", lambda mm=model, d=data:
                                           _faithfulness(mm, d, spec, cfg))
        if m in ("vanilla", "r2et"):
            entry["correlation"][m] = _cached(run / "correlation.json",
                                              lambda mm=model, d=data: _correlation(mm, d, spec, b, cfg))
        if m == "vanilla":
            entry["constrained"] = _cached(run / "constrained.json",
                                           lambda mm=model, d=data: _constrained(mm, d, spec, b, cfg))
        if spec.modality != "tabular":
            entry.setdefault("case_study", {})[m] = _cached(
                run / "case_study.json", lambda mm=model, d=data: _case_study(mm, d, spec, b, cfg))
    return entry


def _case_study(model, data, spec, b: Budget, cfg) -> dict:
    """One test pair (the first of class "same"): input, clean and attacked explanation, top-k."""
    x, y = _test(data, cfg, spec=spec)
    i = int(torch.nonzero(y == 1)[0]) if bool((y == 1).any()) else 0
    er = _attack(ERAttack, model, data, spec, b, cfg, x[i:i + 1], y[i:i + 1])

    def r(t):
        return [round(v, 5) for v in t.flatten().tolist()]

    return {"shape": list(x.shape[1:]), "x": r(x[i]), "x_adv": r(er.x_adv[0]), "clean": r(er.clean_maps[0]),
            "adv": r(er.adv_maps[0]), "precision_at_k": er.final_precision_at_k[0].item(), "k": b.k}


def reproduce(cfg: ReproduceConfig, *, progress: bool = True) -> dict:
    out = Path(cfg.out)
    results: dict = {"config": dataclasses.asdict(cfg), "datasets": {}}
    grid_on = cfg.k_grid_on or ("compas" if "compas" in cfg.datasets else cfg.datasets[0])
    for name in cfg.datasets:
        entry = _dataset(name, cfg, out, progress)
        if name == grid_on and cfg.k_grid:  # the k / k' study on one data set (it retrains)
            spec = get_spec(name)
            data = _subset(spec.load(0), cfg)
            grids = {"k_grid": spec.k_grid, "n_pairs_grid": spec.n_pairs_grid}
            if not cfg.quick:  # the data set's own grids (k = 50 for images and graphs)
                grid_cfg = dataclasses.replace(cfg, **{k: v for k, v in grids.items() if v is not None})
            else:
                grid_cfg = cfg
            runs = out / "runs" / name / "seed0"
            entry["k_grid"] = _k_grid(data, spec, budget(spec, cfg), grid_cfg, runs, 0)
        results["datasets"][name] = entry
    save_json(out / "results.json", results)
    figures = write_figures(results, out)
    (out / "report.md").write_text(render_report(results, figures))
    return results
