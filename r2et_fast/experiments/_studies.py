"""The per-model studies of `r2et-fast reproduce` (docs/spec.md §5, §6, §9): Table 1 (ERAttack and
the MSE attack), the budget curves (P@k vs eps), Table 1's SmoothGrad and IG variants,
faithfulness, the correlation of thickness and Hessian norm with the manipulation epoch,
constrained attacks and the case study.

Each takes the model, the data, the data set's protocol (``DatasetSpec``), the resolved attack
budget and the ``ReproduceConfig``, and returns a JSON-ready result (cached by ``reproduce``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import scipy.stats
import torch

from r2et_fast import regularizers
from r2et_fast.attacks import ERAttack, MSEAttack
from r2et_fast.datasets import Split
from r2et_fast.experiments._specs import DatasetSpec
from r2et_fast.experiments._summary import log_eps_auc
from r2et_fast.experiments.protocol import data_box, explain_targets
from r2et_fast.explain import AdjacencyGradXInput, IntegratedGradients, Saliency, SmoothGrad
from r2et_fast.explain._score import TRAINING_SCORE
from r2et_fast.metrics import COMP, DFFOT, SUFF, Sensitivity, prediction_auc
from r2et_fast.thickness import topk_thickness

if TYPE_CHECKING:
    from r2et_fast.experiments.reproduce import ReproduceConfig


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


def attack_box(spec: DatasetSpec, data: Split):
    """The valid (lower, upper) range of attacked inputs: the data's per-feature range or the spec's."""
    return data_box(data) if spec.box == "data" else spec.box


def eval_samples(data: Split, cfg: ReproduceConfig, limit: int | None = None,
                 spec: DatasetSpec | None = None):
    """The first test samples, at most ``limit``, ``cfg.max_test`` and the protocol's ``max_test``."""
    caps = (cfg.max_test, limit, len(data.x_test), spec.max_test if spec is not None else None)
    n = min(v for v in caps if v is not None)
    return data.x_test[:n], data.y_test[:n]


def attacked_explainer(spec: DatasetSpec, model, score: str = TRAINING_SCORE):
    """The attacked explanation of the data set (default the loss score, like the attacks')."""
    if spec.explainer == "adjacency":
        return AdjacencyGradXInput(model, score=score)
    return Saliency(model, score=score)


def run_attack(attack_cls, model, data, spec, b: Budget, cfg, x, y, **kw):
    lower, upper = attack_box(spec, data)
    kw.setdefault("explainer", attacked_explainer(spec, model))
    attack = attack_cls(model, k=b.k, eps=b.eps, alpha=b.alpha, steps=b.steps, norm="linf",
                        step_norm=b.step_norm, lower=lower, upper=upper, backend=cfg.backend, **kw)
    return attack(x, explain_targets(model, x, y, cfg.explain_target))


def evaluate(model, data, spec, b: Budget, cfg) -> dict:
    """Table 1's scores; ``per_sample`` holds each test sample's P@k, for the bootstrap intervals."""
    x, y = eval_samples(data, cfg, spec=spec)
    er = run_attack(ERAttack, model, data, spec, b, cfg, x, y)
    mse = run_attack(MSEAttack, model, data, spec, b, cfg, x, y)
    return {"cauc": prediction_auc(model, x, y), "aauc": prediction_auc(model, er.x_adv, y),
            "precision_at_k_erattack": er.final_precision_at_k.double().mean().item(),
            "precision_at_k_mse": mse.final_precision_at_k.double().mean().item(),
            "aauc_mse": prediction_auc(model, mse.x_adv, y),
            "per_sample": {"precision_at_k_erattack": er.final_precision_at_k.double().tolist(),
                           "precision_at_k_mse": mse.final_precision_at_k.double().tolist()}}


def curve_budgets(b: Budget, cfg) -> list[Budget]:
    """One budget per multiplier of the protocol's eps: ``cfg.budget_steps`` steps (at most Table 1's,
    so a point never costs more than its attack) whose length scales with the radius, so every
    point's path is as long relative to its ball as Table 1's."""
    short = b.scaled(min(cfg.budget_steps, b.steps))
    return [dataclasses.replace(short, eps=b.eps * m, alpha=short.alpha * m) for m in cfg.eps_multipliers]


def budget_curve(model, data, spec, b: Budget, cfg) -> dict:
    """Mean P@k under ERAttack and the MSE attack at each eps of the grid, and each curve's area
    (``_summary.log_eps_auc``)."""
    x, y = eval_samples(data, cfg, cfg.budget_samples, spec)
    budgets = curve_budgets(b, cfg)
    out: dict = {"multipliers": list(cfg.eps_multipliers), "eps": [c.eps for c in budgets],
                 "steps": budgets[0].steps if budgets else 0, "samples": len(x)}
    for key, attack_cls in (("precision_at_k_erattack", ERAttack), ("precision_at_k_mse", MSEAttack)):
        out[key] = [run_attack(attack_cls, model, data, spec, c, cfg, x, y).final_precision_at_k.double()
                    .mean().item() for c in budgets]
        out[f"auc_{key}"] = log_eps_auc(out["eps"], out[key])
    return out


def variants(model, data, spec, b: Budget, cfg) -> dict:
    """P@k of the SmoothGrad and IG explanations under an ERAttack on that explanation (the mean, and
    each sample's in ``per_sample``)."""
    x, y = eval_samples(data, cfg, cfg.variant_samples, spec)
    short = b.scaled(cfg.variant_steps)
    explainers = {
        "smoothgrad": SmoothGrad(model, n_samples=cfg.smoothgrad_samples, stdev=spec.smoothgrad_stdev, seed=0,
                                 score=TRAINING_SCORE, abs=True),
        "ig": IntegratedGradients(model, n_steps=cfg.ig_steps, method="gausslegendre", score=TRAINING_SCORE,
                                  abs=True),
    }
    out: dict = {"per_sample": {}}
    for name, explainer in explainers.items():
        er = run_attack(ERAttack, model, data, spec, short, cfg, x, y, explainer=explainer)
        p = er.final_precision_at_k
        out[name] = p.double().mean().item()
        out["per_sample"][name] = p.double().tolist()
    return out


def faithfulness(model, data, spec, cfg) -> dict:
    x, y = eval_samples(data, cfg, cfg.faithfulness_samples, spec)
    targets = explain_targets(model, x, y, cfg.explain_target)
    maps = attacked_explainer(spec, model).attribute(x, target=targets)
    per_sample = {name: metric()(model, x, maps).double() for name, metric in
                  (("dffot", DFFOT), ("comp", COMP), ("suff", SUFF))}
    return {**{name: float(v.mean()) for name, v in per_sample.items()},
            "per_sample": {name: v.tolist() for name, v in per_sample.items()}}


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float | None:
    r = scipy.stats.spearmanr(a.detach().numpy(), b.numpy()).statistic
    return None if r is None or math.isnan(r) else float(r)


def correlation(model, data, spec, b: Budget, cfg) -> dict:
    """Per test sample: Hessian norm, thickness and manipulation epoch (no early stop, so every
    sample runs the whole budget and the epoch is where its top-k first changes)."""
    x, y = eval_samples(data, cfg, cfg.correlation_samples, spec)
    y = explain_targets(model, x, y, cfg.explain_target)
    h, _ = regularizers.hessian_norm(model, x, y, backend=cfg.backend)
    explainer = attacked_explainer(spec, model)
    lower, upper = attack_box(spec, data)
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


def constrained(model, data, spec, b: Budget, cfg) -> list[dict]:
    """Each constraint handler on Vanilla, attacking the *label's* explanation (which can flip the
    prediction, unlike the predicted class's), twice the radius, margin constraint."""
    x, y = eval_samples(data, cfg, cfg.constrained_samples, spec)
    lower, upper = attack_box(spec, data)
    rows = []
    for constraint in cfg.constraints:
        result = ERAttack(model, k=b.k, eps=2 * b.eps, alpha=2 * b.alpha, steps=b.steps, norm="linf",
                          step_norm=b.step_norm, constraint=constraint, distance="margin", lower=lower,
                          upper=upper, backend=cfg.backend, explainer=attacked_explainer(spec, model))(x, y)
        p = result.final_precision_at_k.double()
        rows.append({"constraint": constraint, "precision_at_k": p.mean().item(),
                     "per_sample_precision_at_k": p.tolist(),
                     "sensitivity": Sensitivity().share(model, x, result.x_adv)})
    return rows


def case_study(model, data, spec, b: Budget, cfg) -> dict:
    """One test pair (the first of class "same"): input, clean and attacked explanation, top-k."""
    x, y = eval_samples(data, cfg, spec=spec)
    i = int(torch.nonzero(y == 1)[0]) if bool((y == 1).any()) else 0
    er = run_attack(ERAttack, model, data, spec, b, cfg, x[i:i + 1], y[i:i + 1])

    def r(t):
        return [round(v, 5) for v in t.flatten().tolist()]

    return {"shape": list(x.shape[1:]), "x": r(x[i]), "x_adv": r(er.x_adv[0]), "clean": r(er.clean_maps[0]),
            "adv": r(er.adv_maps[0]), "precision_at_k": er.final_precision_at_k[0].item(), "k": b.k}


