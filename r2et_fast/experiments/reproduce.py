"""`r2et-fast reproduce` for the tabular data sets (SPEC §9): trains every method (or loads the
cached runs), attacks the test split with ERAttack and the MSE attack, and writes ``results.json``
and ``report.md`` with figures. Interrupted runs resume: training from its checkpoints, every
evaluation from its cached JSON.

First version: Table 1 (mean ± std over seeds), the correlation study (Hessian norm, thickness and
manipulation epoch; Spearman and scatter plots), the constrained attacks (P@k vs sensitivity per
constraint handler), the accuracy–robustness trade-off and faithfulness per method. Still to come:
the k / k' grid and the SmoothGrad / IG variants of Table 1.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.stats
from tqdm.auto import tqdm

from r2et_fast import regularizers
from r2et_fast._io import save_json
from r2et_fast.attacks import ERAttack, MSEAttack
from r2et_fast.datasets import DATASETS, Split, load_tabular
from r2et_fast.experiments.tabular import data_box, explain_targets
from r2et_fast.explain import Saliency
from r2et_fast.metrics import COMP, DFFOT, SUFF, Sensitivity, prediction_auc
from r2et_fast.thickness import topk_thickness
from r2et_fast.train import METHOD_LABELS, METHODS, TrainConfig, load_model, train


@dataclass(frozen=True)
class ReproduceConfig:
    datasets: tuple[str, ...] = DATASETS
    methods: tuple[str, ...] = METHODS
    seeds: int = 1
    quick: bool = False
    out: str = "reproduction"
    k: int = 8
    epochs: int = 10
    steps: int = 1000
    alpha: float = 1e-3
    eps: float = 1.0
    max_train: int | None = None      # subsample the training split (quick runs)
    max_test: int | None = None       # attack only the first test samples
    correlation_samples: int = 500
    thickness_samples: int = 16       # S
    thickness_path: int = 10          # T
    faithfulness_samples: int = 500
    constraints: tuple[str, ...] = ("none", "early_stop", "gda", "hedge", "qp", "fixed")
    backend: str | None = None
    explain_target: str = "predicted"  # the class whose explanation is attacked ("label": authors')
    extra: dict = field(default_factory=dict)

    @classmethod
    def quick_defaults(cls, **overrides) -> ReproduceConfig:
        base = dict(quick=True, epochs=2, steps=20, alpha=0.05, eps=1.0, max_train=1500, max_test=150,
                    correlation_samples=40, thickness_samples=4, thickness_path=4, faithfulness_samples=40)
        base.update(overrides)
        return cls(**base)


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


def _attack(attack_cls, model, data: Split, cfg: ReproduceConfig, **kw):
    x, y = data.x_test, data.y_test
    if cfg.max_test is not None:
        x, y = x[:cfg.max_test], y[:cfg.max_test]
    lower, upper = data_box(data)
    attack = attack_cls(model, k=cfg.k, eps=cfg.eps, alpha=cfg.alpha, steps=cfg.steps, norm="linf",
                        step_norm="l2", lower=lower, upper=upper, backend=cfg.backend, **kw)
    return x, y, attack(x, explain_targets(model, x, y, cfg.explain_target))


def _evaluate(model, data: Split, cfg: ReproduceConfig) -> dict:
    x, y, er = _attack(ERAttack, model, data, cfg)
    _, _, mse = _attack(MSEAttack, model, data, cfg)
    return {"cauc": prediction_auc(model, x, y), "aauc": prediction_auc(model, er.x_adv, y),
            "precision_at_k_erattack": er.final_precision_at_k.double().mean().item(),
            "precision_at_k_mse": mse.final_precision_at_k.double().mean().item(),
            "aauc_mse": prediction_auc(model, mse.x_adv, y)}


def _faithfulness(model, data: Split, cfg: ReproduceConfig) -> dict:
    x, y = data.x_test[:cfg.faithfulness_samples], data.y_test[:cfg.faithfulness_samples]
    maps = Saliency(model, score="loss").attribute(x, target=explain_targets(model, x, y, cfg.explain_target))
    return {name: float(metric()(model, x, maps).double().mean()) for name, metric in
            (("dffot", DFFOT), ("comp", COMP), ("suff", SUFF))}


def _correlation(model, data: Split, cfg: ReproduceConfig) -> dict:
    """Per test sample: Hessian norm, thickness and manipulation epoch."""
    n = cfg.correlation_samples
    x = data.x_test[:n]
    y = explain_targets(model, x, data.y_test[:n], cfg.explain_target)
    h, _ = regularizers.hessian_norm(model, x, y, backend=cfg.backend)
    explainer = Saliency(model, score="loss")
    thick = topk_thickness(lambda z, i: explainer.attribute(z, target=y[i]), x, cfg.k, eps=cfg.eps,
                           n_samples=cfg.thickness_samples, n_path=cfg.thickness_path,
                           backend=cfg.backend).per_sample
    lower, upper = data_box(data)
    er = ERAttack(model, k=cfg.k, eps=cfg.eps, alpha=cfg.alpha, steps=cfg.steps, lower=lower, upper=upper,
                  backend=cfg.backend)(x, y)
    epoch = er.manipulation_epoch.double()

    def rho(a, b):
        r = scipy.stats.spearmanr(a.detach().numpy(), b.numpy()).statistic
        return None if r is None or math.isnan(r) else float(r)

    return {"hessian": h.detach().tolist(), "thickness": thick.tolist(), "epoch": epoch.tolist(),
            "spearman_thickness_epoch": rho(thick, epoch), "spearman_hessian_epoch": rho(h, epoch)}


def _constrained(model, data: Split, cfg: ReproduceConfig) -> list[dict]:
    rows = []
    for constraint in cfg.constraints:
        x, _, result = _attack(ERAttack, model, data, cfg, constraint=constraint)
        rows.append({"constraint": constraint,
                     "precision_at_k": result.final_precision_at_k.double().mean().item(),
                     "sensitivity": Sensitivity().share(model, x, result.x_adv)})
    return rows


def _mean_std(values: list[float]) -> dict:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}


def reproduce(cfg: ReproduceConfig, *, progress: bool = True) -> dict:
    out = Path(cfg.out)
    results: dict = {"config": dataclasses.asdict(cfg), "datasets": {}}
    for name in cfg.datasets:
        data = _subset(load_tabular(name, seed=0), cfg)
        per_method: dict = {}
        models = {}
        for seed in range(cfg.seeds):
            for method in tqdm(cfg.methods, desc=f"{name} seed {seed}", disable=not progress):
                run = out / "runs" / name / f"seed{seed}" / method
                tcfg = TrainConfig(method=method, epochs=cfg.epochs, k=cfg.k, seed=seed, backend=cfg.backend)
                if (run / "model.pt").is_file():
                    model = load_model(run / "model.pt")[0]
                else:
                    model = train(data, tcfg, out_dir=run, progress=False, dataset_name=name).model
                model.eval()
                scores = _cached(run / "evaluation.json", lambda m=model, d=data: _evaluate(m, d, cfg))
                per_method.setdefault(method, []).append(scores)
                if seed == 0:
                    models[method] = (model, run)
        table = {m: {key: _mean_std([s[key] for s in runs]) for key in runs[0]}
                 for m, runs in per_method.items()}
        entry: dict = {"table1": table, "faithfulness": {}, "correlation": {}}
        for m, (model, run) in models.items():
            entry["faithfulness"][m] = _cached(run / "faithfulness.json",
                                               lambda mm=model, d=data: _faithfulness(mm, d, cfg))
            if m in ("vanilla", "r2et"):
                entry["correlation"][m] = _cached(run / "correlation.json",
                                                  lambda mm=model, d=data: _correlation(mm, d, cfg))
            if m == "vanilla":
                entry["constrained"] = _cached(run / "constrained.json",
                                               lambda mm=model, d=data: _constrained(mm, d, cfg))
        results["datasets"][name] = entry
    save_json(out / "results.json", results)
    figures = write_figures(results, out)
    (out / "report.md").write_text(render_report(results, figures))
    return results


def write_figures(results: dict, out: Path) -> dict[str, list[str]]:
    """PNG figures per data set: trade-off, correlation scatter, constrained-attack Pareto plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: dict[str, list[str]] = {}
    for name, entry in results["datasets"].items():
        paths = []
        fig, ax = plt.subplots(figsize=(5, 4))
        for method, row in entry["table1"].items():
            ax.scatter(row["cauc"]["mean"], row["precision_at_k_erattack"]["mean"])
            point = (row["cauc"]["mean"], row["precision_at_k_erattack"]["mean"])
            ax.annotate(METHOD_LABELS[method], point, fontsize=7)
        ax.set(xlabel="cAUC", ylabel="P@k under ERAttack", title=f"{name}: accuracy vs robustness")
        paths.append(_save(fig, out / f"{name}_tradeoff.png"))
        for method, corr in entry.get("correlation", {}).items():
            fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
            for ax, key, label in ((axes[0], "thickness", "thickness"), (axes[1], "hessian", "Hessian norm")):
                ax.scatter(corr[key], corr["epoch"], s=8)
                rho = corr[f"spearman_{key}_epoch"]
                ax.set(xlabel=label, ylabel="manipulation epoch",
                       title=f"Spearman {rho:.2f}" if rho is not None else "Spearman n/a")
            fig.suptitle(f"{name}, {METHOD_LABELS[method]}")
            paths.append(_save(fig, out / f"{name}_{method}_correlation.png"))
        if "constrained" in entry:
            fig, ax = plt.subplots(figsize=(5, 4))
            for row in entry["constrained"]:
                ax.scatter(row["sensitivity"], row["precision_at_k"])
                ax.annotate(row["constraint"], (row["sensitivity"], row["precision_at_k"]), fontsize=7)
            ax.set(xlabel="sensitivity (share of changed predictions)", ylabel="P@k",
                   title=f"{name}: constrained ERAttack on Vanilla")
            paths.append(_save(fig, out / f"{name}_constrained.png"))
        figures[name] = paths
    return figures


def _save(fig, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path.name


def _fmt(stat: dict) -> str:
    return f"{stat['mean']:.4f} ± {stat['std']:.4f}" if stat["std"] else f"{stat['mean']:.4f}"


def render_report(results: dict, figures: dict[str, list[str]]) -> str:
    cfg = results["config"]
    budget = f"{cfg['steps']} l2-normalised steps of {cfg['alpha']:g} in an l-inf ball of {cfg['eps']:g}"
    lines = ["# r2et-fast reproduce: tabular data", "",
             f"k = {cfg['k']}; ERAttack and MSE attack: {budget}; explained class: "
             f"{cfg['explain_target']}; {cfg['seeds']} seed(s); quick = {cfg['quick']}.", ""]
    for name, entry in results["datasets"].items():
        lines += [f"## {name}", "", "### Table 1", "",
                  "| method | cAUC | P@k ERAttack | P@k MSE | aAUC (ERAttack) |", "|---|---:|---:|---:|---:|"]
        for method, row in entry["table1"].items():
            keys = ("cauc", "precision_at_k_erattack", "precision_at_k_mse", "aauc")
            cells = [_fmt(row[key]) for key in keys]
            lines.append(f"| {METHOD_LABELS[method]} | " + " | ".join(cells) + " |")
        if entry.get("correlation"):
            lines += ["", "### Correlation with the manipulation epoch (Spearman)", "",
                      "| model | thickness | Hessian norm |", "|---|---:|---:|"]
            for method, corr in entry["correlation"].items():
                t, h = corr["spearman_thickness_epoch"], corr["spearman_hessian_epoch"]
                lines.append(f"| {METHOD_LABELS[method]} | {t if t is None else f'{t:.3f}'} | "
                             f"{h if h is None else f'{h:.3f}'} |")
        if entry.get("constrained"):
            lines += ["", "### Constrained ERAttack on Vanilla", "", "| constraint | P@k | sensitivity |",
                      "|---|---:|---:|"]
            lines += [f"| {r['constraint']} | {r['precision_at_k']:.4f} | {r['sensitivity']:.4f} |"
                      for r in entry["constrained"]]
        lines += ["", "### Faithfulness (saliency of the loss)", "", "| method | DFFOT | COMP | SUFF |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {METHOD_LABELS[m]} | {f['dffot']:.4f} | {f['comp']:.4f} | {f['suff']:.4f} |"
                  for m, f in entry["faithfulness"].items()]
        lines += ["", *[f"![{p}]({p})" for p in figures.get(name, [])], ""]
    return "\n".join(lines)
