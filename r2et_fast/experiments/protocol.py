"""The attack protocol shared by every modality (docs/spec.md §5, §9): the ERAttack budget, the
valid input box, the explained class, attacking a split (cAUC, aAUC, P@k), model selection on the
validation split, and training several methods side by side."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from tqdm.auto import tqdm

from r2et_fast import _distributed
from r2et_fast._device import compute_device, model_device, to
from r2et_fast.attacks import ERAttack
from r2et_fast.datasets import Split
from r2et_fast.experiments._cache import tensor_digest, train_or_load
from r2et_fast.metrics import prediction_auc
from r2et_fast.train import METHOD_LABELS, TrainConfig, train

EXPLAIN_TARGETS = ("predicted", "label")


def explain_targets(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, how: str) -> torch.Tensor:
    """The class explained per sample: the model's prediction, or the true label."""
    if how == "label":
        return y
    where = model_device(model) or x.device
    with torch.no_grad():  # on the data's device: the attack moves each batch with its targets
        return torch.cat([model(to(x[i:i + 8192], where)).argmax(dim=1).to(y.device)
                          for i in range(0, len(x), 8192)])


@dataclass(frozen=True)
class AttackConfig:
    """ERAttack budget for standardised tabular features (docs/spec.md §9): l2-normalised steps of
    ``alpha``, an l-inf ball of ``eps`` (default alpha * steps), the data's range as the box."""

    k: int = 8
    alpha: float = 1e-3
    steps: int = 1000
    eps: float | None = None
    pairs: str = "all"
    step_norm: str = "l2"
    batch_size: int = 2048
    max_samples: int | None = None  # attack only the first test samples (small budgets)
    seed: int = 0
    backend: str | None = None
    # The class whose explanation is attacked: "predicted" (default) or "label" (the authors'
    # code). With the true label the attack can use it: lowering the loss saliency at the right
    # class raises confidence in it, and aAUC exceeds cAUC.
    explain_target: str = "predicted"

    def __post_init__(self) -> None:
        if self.explain_target not in EXPLAIN_TARGETS:
            raise ValueError(f"explain_target must be one of {EXPLAIN_TARGETS}, got {self.explain_target!r}")

    @property
    def radius(self) -> float:
        return self.alpha * self.steps if self.eps is None else self.eps


def data_box(data: Split) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature [min, max] over every split: the valid box of attacked inputs."""
    x = torch.cat([data.x_train, data.x_val, data.x_test])
    return x.min(dim=0).values, x.max(dim=0).values


def attack_model(model: torch.nn.Module, data: Split, cfg: AttackConfig, *, split: str = "test",
                 progress: bool = True, box: tuple | None = None, explainer=None, device=None) -> dict:
    """ERAttack on one split, in batches: cAUC, aAUC, mean P@k, label-kept share, mean epoch.

    ``box``: the valid (lower, upper) range of inputs; default the data's per-feature range.
    ``explainer``: a function model -> Explainer for the attacked explanation (default saliency).
    ``device``: where the model and the attack run (default the model's device); the data stay
    where they are and move one batch at a time. Under a torchrun launch the batches are split
    over the ranks and the per-sample records gathered on every rank: each batch is the one a
    single process attacks, so the scores are exactly the single-process scores."""
    x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
    if cfg.max_samples is not None:
        x, y = x[:cfg.max_samples], y[:cfg.max_samples]
    lower, upper = data_box(data) if box is None else box
    where = compute_device(device, model, x)
    model.eval()
    attack = ERAttack(model, k=cfg.k, eps=cfg.radius, alpha=cfg.alpha, steps=cfg.steps, norm="linf",
                      step_norm=cfg.step_norm, pairs=cfg.pairs, constraint="early_stop",
                      lower=to(lower, where), upper=to(upper, where), seed=cfg.seed, backend=cfg.backend,
                      explainer=None if explainer is None else explainer(model), device=where)
    targets = explain_targets(model, x, y, cfg.explain_target)

    def one(first: int) -> tuple[torch.Tensor, ...]:
        result = attack(x[first:first + cfg.batch_size], targets[first:first + cfg.batch_size])
        return tuple(t.detach().cpu() for t in (result.x_adv, result.final_precision_at_k,
                                                result.label_kept, result.manipulation_epoch))

    bar = partial(tqdm, desc="ERAttack", disable=not progress)
    records = _distributed.map_items(range(0, len(x), cfg.batch_size), one, progress=bar)
    advs, precision, kept, epochs = (torch.cat(column) for column in zip(*records))
    return {
        "n": len(x),
        "cauc": prediction_auc(model, x, y),
        "aauc": prediction_auc(model, advs.to(x.dtype), y),
        "precision_at_k": precision.double().mean().item(),
        "label_kept": kept.double().mean().item(),
        "manipulation_epoch": epochs.double().mean().item(),
        "attack": asdict(cfg),
    }


class Trained(Protocol):
    """What :func:`select_model` reads of a candidate: a ``TrainResult`` or a :class:`Candidate`."""

    @property
    def model(self) -> torch.nn.Module: ...

    @property
    def config(self) -> TrainConfig: ...


TrainedT = TypeVar("TrainedT", bound=Trained)


@dataclass
class Candidate:
    """A trained model and its configuration: the fields of a ``TrainResult`` that
    :func:`select_model` reads."""

    model: torch.nn.Module
    config: TrainConfig


def compare_methods(data: Split, methods: list[str], train_cfg: dict[str, Any], attack_cfg: AttackConfig, *,
                    out_dir: str | Path | None = None, dataset_name: str | None = None,
                    trained_on: dict[str, Any] | None = None, lambda_gap_grid: list[float] | None = None,
                    selection_threshold: float = 0.02, progress: bool = True) -> list[dict[str, Any]]:
    """Train each method and attack its test split.

    With ``out_dir`` a model in ``out_dir/<method>`` is reused only when it was trained with the same
    ``TrainConfig`` on the same data, else it is retrained there (``_cache.train_or_load``). The data
    are identified by ``trained_on`` (a ``_cache.data_key``: data set, split seed, subset) and a
    digest of the training tensors, which also tells apart data that ``trained_on`` does not name.

    With ``lambda_gap_grid`` every R2ET-family method trains one candidate per weight and keeps the
    one chosen by :func:`select_model` against Vanilla's validation AUC (Vanilla is trained for
    this even when not listed).
    """
    on = {**(trained_on or {}), "train_digest": tensor_digest(data.x_train, data.y_train)}

    def run(cfg: TrainConfig, name: str) -> Candidate:
        if out_dir is None:
            model = train(data, cfg, progress=progress, dataset_name=dataset_name).model
        else:
            model = train_or_load(data, cfg, Path(out_dir) / name, on, dataset_name=dataset_name,
                                  progress=progress)
        return Candidate(model, cfg)

    vanilla_auc = 0.0
    if lambda_gap_grid:
        # a reused model comes without its training log: its final validation AUC, as the log has it
        vanilla = run(TrainConfig(method="vanilla", **train_cfg), "vanilla").model
        vanilla_auc = prediction_auc(vanilla, data.x_val, data.y_val)
    rows = []
    for method in methods:
        selection = None
        if lambda_gap_grid and method.startswith("r2et"):
            base = {k: v for k, v in train_cfg.items() if k != "lambda_gap"}
            candidates = [run(TrainConfig(method=method, lambda_gap=g, **base), f"{method}/lambda_gap={g:g}")
                          for g in lambda_gap_grid]
            result, selection = select_model(candidates, data, attack_cfg, vanilla_auc,
                                             threshold=selection_threshold, progress=progress)
        else:
            result = run(TrainConfig(method=method, **train_cfg), method)
        scores = attack_model(result.model, data, attack_cfg, progress=progress)
        row = {"method": method, "label": METHOD_LABELS[method], "config": result.config.to_dict(), **scores}
        if selection is not None:
            row["selection"] = selection
        rows.append(row)
    return rows


def markdown_table(rows: list[dict], k: int) -> str:
    lines = [f"| method | cAUC | aAUC | P@{k} under ERAttack | labels kept | mean manipulation epoch |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['cauc']:.4f} | {r['aauc']:.4f} | {r['precision_at_k']:.4f} | "
                     f"{r['label_kept']:.3f} | {r['manipulation_epoch']:.1f} |")
    return "\n".join(lines)


def select_model(candidates: Sequence[TrainedT], data: Split, attack_cfg: AttackConfig, vanilla_auc: float,
                 *, threshold: float = 0.02, progress: bool = False, box: tuple | None = None,
                 explainer=None) -> tuple[TrainedT, list[dict[str, Any]]]:
    """The paper's model selection on the validation split.

    Keep the candidates (``TrainResult``s) whose validation AUC is at least ``vanilla_auc -
    threshold``, then pick the one with the best validation P@k under ERAttack. If none is within
    the threshold, the one with the best validation AUC is returned. Returns (chosen, per-candidate
    records).
    """
    if not candidates:
        raise ValueError("candidates must not be empty")
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold!r}")
    records = []
    for result in candidates:
        scores = attack_model(result.model, data, attack_cfg, split="val", progress=progress, box=box,
                              explainer=explainer)
        records.append({"config": result.config.to_dict(), "val_auc": scores["cauc"],
                        "val_precision_at_k": scores["precision_at_k"],
                        "eligible": scores["cauc"] >= vanilla_auc - threshold})
    eligible = [i for i, r in enumerate(records) if r["eligible"]]
    if eligible:
        best = max(eligible, key=lambda i: records[i]["val_precision_at_k"])
    else:
        best = max(range(len(records)), key=lambda i: records[i]["val_auc"])
    records[best]["chosen"] = True
    return candidates[best], records
