"""Validation of the Wang & Kong (CVPR 2023) attribution-deviation bounds on MNIST (SPEC §7, §9).

``run_bounds`` trains (or loads from ``<out>/models/<method>/``) single-input softplus CNNs on
single MNIST digits for several training methods, then, per model, per norm and radius of the spec
(l2 PGD-20 with eps in {0.05, 0.1, 0.2}; l_inf 200-step top-k attack plus PGD with eps in
{0.01, 0.03, 0.05}; pixels kept in [0, 1]) and per attribution method, certifies ``n_samples``
test images and attacks them (``r2et_fast.bounds.validate_bounds``, several random starts).
It writes ``results.json`` and ``report.md`` with the analogues of the bound paper's Tables 3-5
and histograms of T_e - T^_e. Every (pooling, model, attribution, norm, eps) result is cached as
JSON, so an interrupted run resumes.

Max pooling. The project's CNN (SPEC §8) pools with ``max``. On MNIST most pooling windows of the
first layer sit on the constant black background, where the four candidates are *exactly* equal:
the gradient is routed by a tie-break, and any perturbation, however small, re-routes it. The
attribution g is then discontinuous at x, and the bounds, which assume a twice-differentiable
model, cannot hold (the attacked deviation does not shrink with eps). The report therefore
evaluates every trained model twice: ``pooling="max"`` (the model as trained) and
``pooling="lse"``, the same weights with each max pool replaced by the smooth maximum
tau * log(mean(exp(h / tau))) over the window (equal to the max at a tie, within tau * log(window
size) of it elsewhere, infinitely differentiable). The surrogate's test accuracy is reported beside
the original's, and a "jump" diagnostic (the relative change of g under a random perturbation of
l2 size 1e-4) shows the discontinuity directly.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from r2et_fast._io import save_json
from r2et_fast.bounds import attribution as attribution_map
from r2et_fast.bounds import certify, validate_bounds
from r2et_fast.datasets import Split, load_mnist
from r2et_fast.experiments._report import _plt, _save
from r2et_fast.models import MnistCNN
from r2et_fast.train import METHOD_LABELS, TrainConfig, load_model, train

NORMS = ("l2", "linf")
POOLINGS = ("max", "lse")
ATTRIBUTIONS = ("saliency", "gradxinput", "ig")
L2_EPS = (0.05, 0.1, 0.2)
LINF_EPS = (0.01, 0.03, 0.05)
JUMP_RADIUS = 1e-4


# ---------------------------------------------------------------------------------------------
# The smooth-pooling surrogate


def lse_pool2d(h: torch.Tensor, size: int, tau: float) -> torch.Tensor:
    """Smooth max pooling (non-overlapping ``size`` x ``size`` windows, floor mode like
    ``F.max_pool2d(h, size)``): tau * log(mean(exp(h / tau))) per window."""
    b, c, height, width = h.shape
    ho, wo = height // size, width // size
    windows = h[:, :, : ho * size, : wo * size].reshape(b, c, ho, size, wo, size)
    return tau * torch.logsumexp(windows / tau, dim=(3, 5)) - tau * math.log(size * size)


class SmoothPoolCNN(nn.Module):
    """A trained :class:`~r2et_fast.models.MnistCNN` evaluated with :func:`lse_pool2d` in place of
    its max pools (same weights, shared with the wrapped model): twice differentiable, as the
    bounds assume. ``tau`` -> 0 recovers the max pool."""

    def __init__(self, cnn: MnistCNN, tau: float = 0.1) -> None:
        super().__init__()
        if not isinstance(cnn, MnistCNN):
            raise TypeError(f"SmoothPoolCNN wraps an MnistCNN (arch 'cnn'), got {type(cnn).__name__}")
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0 < tau < math.inf:
            raise ValueError(f"tau must be a finite number > 0, got {tau!r}")
        self.cnn = cnn
        self.tau = float(tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"SmoothPoolCNN expects inputs of shape (B, 1, 28, 28), got {tuple(x.shape)}")
        b = self.cnn.body
        h = b.act(lse_pool2d(b.conv1(x), 2, self.tau))
        h = b.act(lse_pool2d(b.conv2(h), 3, self.tau))
        h = b.act(b.fc1(h.flatten(1)))
        return b.fc3(b.act(b.fc2(h)))


def with_pooling(model: nn.Module, pooling: str, tau: float) -> nn.Module:
    """The model as trained (``"max"``) or its smooth-pooling surrogate (``"lse"``), in eval mode."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    return (model if pooling == "max" else SmoothPoolCNN(model, tau)).eval()


def tied_pool_share(model: nn.Module, x: torch.Tensor) -> float | None:
    """Share of the first layer's 2 x 2 max-pool windows whose maximum is tied (exactly equal
    candidates): there the gradient depends on the tie-break. None for other architectures."""
    if isinstance(model, SmoothPoolCNN) or not isinstance(model, MnistCNN):
        return None
    with torch.no_grad():
        h = model.body.conv1(x)
        win = F.unfold(h.flatten(0, 1).unsqueeze(1), 2, stride=2)  # (B*C, 4, windows)
        top2 = win.topk(2, dim=1).values
    return float((top2[:, 0] == top2[:, 1]).double().mean())


def jump(model: nn.Module, x: torch.Tensor, method: str = "saliency", *, radius: float = JUMP_RADIUS,
         draws: int = 4, lower: Any = 0.0, upper: Any = 1.0, seed: int = 0,
         explainer_kwargs: dict | None = None) -> float:
    """Mean over samples of max over ``draws`` random directions of ||g(x + d) - g(x)|| / ||g(x)||,
    ||d||_2 = ``radius`` (clipped to the box): about xi_max * radius / ||g|| for a smooth g, of
    order one where g jumps (max-pool ties)."""
    gen = torch.Generator().manual_seed(seed)
    g0 = attribution_map(model, x, method, explainer_kwargs=explainer_kwargs)
    target = _predict(model, x)
    worst = torch.zeros(len(x), dtype=torch.float64)
    for _ in range(draws):
        d = torch.randn(x.shape, generator=gen, dtype=x.dtype)
        d = d * (radius / d.flatten(1).norm(dim=1).clamp_min(1e-30)).view(-1, *([1] * (x.dim() - 1)))
        xp = _clip(x + d, lower, upper)
        g1 = attribution_map(model, xp, method, target, explainer_kwargs=explainer_kwargs)
        rel = (g1 - g0).norm(dim=1) / g0.norm(dim=1).clamp_min(1e-30)
        worst = torch.maximum(worst, rel.double())
    return float(worst.mean())


def _clip(x: torch.Tensor, lower: Any, upper: Any) -> torch.Tensor:
    if lower is not None:
        x = torch.maximum(x, torch.as_tensor(lower, dtype=x.dtype))
    if upper is not None:
        x = torch.minimum(x, torch.as_tensor(upper, dtype=x.dtype))
    return x


def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(x[i:i + 1024]).argmax(dim=1) for i in range(0, len(x), 1024)])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((_predict(model, x) == y).double().mean())


# ---------------------------------------------------------------------------------------------
# One setting: certify (+ attack) a batch for every radius


@dataclass(frozen=True)
class AttackBudget:
    """The attacks of ``validate_bounds``: ``restarts`` random starts of PGD-``steps`` (and, under
    l_inf, of the ``topk_steps``-step top-k attack)."""

    restarts: int = 3
    steps: int = 20
    topk_steps: int = 200
    keep_label: bool = False
    seed: int = 0


def evaluate(model: nn.Module, x: torch.Tensor, eps: float, norm: str, method: str, k: int, *,
             validate: bool = True, budget: AttackBudget = AttackBudget(), lower: Any = None,
             upper: Any = None, explainer_kwargs: dict | None = None) -> dict:
    """Certificate (and, with ``validate``, the attacks) of one (norm, eps, method) on a batch.

    Returns a JSON-ready dict: ``summary`` (the table row), ``certificate`` (per-sample bounds) and,
    with ``validate``, the per-sample attacked values (``hat_t_e``, ``hat_t_c``,
    ``hat_t_e_linear``, ``topk_changed``), plus ``seconds``.
    """
    began = time.perf_counter()
    if validate:
        report = validate_bounds(model, x, eps, norm, method, k, restarts=budget.restarts, steps=budget.steps,
                                 topk_steps=budget.topk_steps, lower=lower, upper=upper,
                                 keep_label=budget.keep_label, explainer_kwargs=explainer_kwargs,
                                 seed=budget.seed)
        out = report.to_dict()
    else:
        cert = certify(model, x, eps, norm, method, k, explainer_kwargs=explainer_kwargs, seed=budget.seed)
        out = {"summary": cert.summary(), "certificate": cert.to_dict()}
    out["seconds"] = time.perf_counter() - began
    return out


def _gaps(record: dict) -> list[float]:
    return [te - he for te, he in zip(record["certificate"]["t_e"], record["hat_t_e"])]


def histogram(records: Sequence[dict], path: str | Path, title: str) -> str:
    """PNG of T_e - T^_e per sample, one colour per radius (``records`` of :func:`evaluate` with
    ``validate``); without attacks, of T_e per sample. Returns the file name."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    validated = all("hat_t_e" in r for r in records)
    for r in records:
        values = _gaps(r) if validated else r["certificate"]["t_e"]
        ax.hist(values, bins=20, alpha=0.55, label=f"eps = {r['summary']['eps']:g}")
    if validated:
        ax.axvline(0.0, color="k", lw=1)
    ax.set(xlabel="T_e - T^_e (per sample)" if validated else "T_e (per sample)", ylabel="samples",
           title=title)
    ax.legend(fontsize=7)
    return _save(fig, Path(path), dpi=100)


def _num(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}"


def summary_table(rows: Sequence[tuple[str, dict]], *, validated: bool = True, first: str = "model") -> str:
    """Markdown table, one row per (label, summary): the bound paper's Table 3/4 columns, the % of
    attacked samples outside T_e (and outside it for the linearised deviation), outside T'_e and
    T_c, the tightness r and the certified top-k check."""
    if not validated:
        lines = [f"| {first} | eps | mean xi_max | T_e | T'_e | T_c (deg) | top-k certified |",
                 "|---|---:|---:|---:|---:|---:|---:|"]
        for label, s in rows:
            lines.append(f"| {label} | {s['eps']:g} | {_num(s['mean_xi_max'])} | {_num(s['mean_t_e'])} | "
                         f"{_num(s['mean_t_e_generalized'])} | {_num(s['mean_t_c_deg'], 2)} | "
                         f"{s['n_topk_certified']}/{s['n_samples']} |")
        return "\n".join(lines)
    lines = [f"| {first} | eps | T^_e | T_e [% out] | % out (linearised) | T'_e [% out] | T^_c (deg) | "
             "T_c (deg) [% out] | r = min(T_e - T^_e) | top-k certified / violated |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, s in rows:
        lines.append(
            f"| {label} | {s['eps']:g} | {_num(s['mean_hat_t_e'])} | {_num(s['mean_t_e'])} "
            f"[{s['pct_outside_t_e']:.1f}%] | {s['pct_outside_t_e_linear']:.1f}% | "
            f"{_num(s['mean_t_e_generalized'])} [{s['pct_outside_t_e_generalized']:.1f}%] | "
            f"{_num(s['mean_hat_t_c_deg'], 2)} | {_num(s['mean_t_c_deg'], 2)} "
            f"[{s['pct_outside_t_c']:.1f}%] | "
            f"{s['tightness_r']:+.4f} | {s['n_topk_certified']}/{s['n_topk_violations']} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The experiment


@dataclass(frozen=True)
class BoundsConfig:
    """What ``run_bounds`` runs. Defaults: the spec's budgets, 50 test images, 3 random starts."""

    methods: tuple[str, ...] = ("vanilla", "sp", "est_h", "r2et")
    attributions: tuple[str, ...] = ("saliency",)
    poolings: tuple[str, ...] = POOLINGS
    norms: tuple[str, ...] = NORMS
    l2_eps: tuple[float, ...] = L2_EPS
    linf_eps: tuple[float, ...] = LINF_EPS
    k: int = 50
    n_samples: int = 50
    restarts: int = 3
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
        for name in ("n_samples", "restarts", "steps", "topk_steps", "ig_steps", "epochs", "k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("l2_eps", "linf_eps"):
            if any(not (isinstance(e, (int, float)) and 0 < e < math.inf) for e in getattr(self, name)):
                raise ValueError(f"{name} must hold radii > 0, got {getattr(self, name)!r}")

    @classmethod
    def quick_defaults(cls, **overrides: Any) -> BoundsConfig:
        """Minutes on one core: 1 epoch on 1,000 images, 4 test images, short attacks."""
        base = dict(quick=True, epochs=1, max_train=1000, n_samples=4, restarts=1, steps=5, topk_steps=20,
                    ig_steps=4)
        base.update(overrides)
        return cls(**base)

    def train_config(self, method: str) -> TrainConfig:
        beta = self.sp_beta if method == "sp" else self.softplus_beta
        return TrainConfig(method=method, arch="cnn", activation="softplus", softplus_beta=beta,
                           epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=self.seed,
                           score="logit", k=self.k, lambda_hess=self.lambda_hess, lambda_gap=self.lambda_gap)

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


def _train(data: Split, cfg: BoundsConfig, method: str, out: Path, progress: bool) -> nn.Module:
    run = out / "models" / method
    tcfg = cfg.train_config(method)
    if (run / "model.pt").is_file():
        model, saved, _ = load_model(run / "model.pt")
        if saved.to_dict() == tcfg.to_dict():
            return model.eval()
    return train(data, tcfg, out_dir=run, progress=progress, dataset_name="mnist").model.eval()


def _cache_key(cfg: BoundsConfig, method: str, pooling: str) -> dict:
    key = {"n_samples": cfg.n_samples, "k": cfg.k, "budget": asdict(cfg.budget()),
           "train": cfg.train_config(method).to_dict(), "max_train": cfg.max_train,
           "data_seed": cfg.data_seed, "ig_steps": cfg.ig_steps}
    if pooling == "lse":
        key["tau"] = cfg.tau
    return key


def _cached(path: Path, key: dict, compute) -> dict:
    """The cached record at ``path`` when it was computed with ``key``; else compute and cache."""
    if path.is_file():
        record = json.loads(path.read_text())
        if record.get("key") == key:
            return record
    record = {"key": key, **compute()}
    save_json(path, record)
    return record


def run_bounds(cfg: BoundsConfig, progress: bool = True) -> dict:
    """Train / load the models, certify and attack every setting, write results.json + report.md.

    Returns the results dict (also written to ``<out>/results.json``).
    """
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    data = _subset(load_mnist(seed=cfg.data_seed), cfg.max_train)
    x = data.x_test[:cfg.n_samples]
    lower, upper = 0.0, 1.0
    budget = cfg.budget()

    models: dict[str, dict] = {}
    trained: dict[str, nn.Module] = {}
    for method in cfg.methods:
        model = _train(data, cfg, method, out, progress)
        trained[method] = model
        entry: dict[str, Any] = {"label": METHOD_LABELS[method], "config": cfg.train_config(method).to_dict(),
                                 "val_accuracy": accuracy(model, data.x_val, data.y_val), "pooling": {}}
        for pooling in cfg.poolings:
            variant = with_pooling(model, pooling, cfg.tau)

            def diagnostics(variant=variant):
                return {"test_accuracy": accuracy(variant, data.x_test, data.y_test),
                        "tied_pool_share": tied_pool_share(variant, x),
                        "jump": {a: jump(variant, x, a, explainer_kwargs=cfg.explainer_kwargs(a),
                                         seed=cfg.seed) for a in cfg.attributions}}

            path = out / "cache" / pooling / method / "diagnostics.json"
            record = _cached(path, _cache_key(cfg, method, pooling), diagnostics)
            entry["pooling"][pooling] = {k: v for k, v in record.items() if k != "key"}
        models[method] = entry

    settings = [(p, m, a, n, e) for p in cfg.poolings for m in cfg.methods for a in cfg.attributions
                for n in cfg.norms for e in cfg.radii(n)]
    runs = []
    bar = tqdm(settings, desc="bounds", disable=not progress)
    for pooling, method, attribution, norm, eps in bar:
        bar.set_postfix_str(f"{pooling} {method} {attribution} {norm} {eps:g}")
        variant = with_pooling(trained[method], pooling, cfg.tau)
        path = out / "cache" / pooling / method / attribution / f"{norm}_eps{eps:g}.json"
        compute = functools.partial(evaluate, variant, x, eps, norm, attribution, cfg.k, budget=budget,
                                    lower=lower, upper=upper,
                                    explainer_kwargs=cfg.explainer_kwargs(attribution))
        record = _cached(path, _cache_key(cfg, method, pooling), compute)
        runs.append({"pooling": pooling, "model": method, "attribution": attribution, "norm": norm,
                     "eps": eps, **{k: v for k, v in record.items() if k != "key"}})

    figures = []
    for pooling in cfg.poolings:
        for attribution in cfg.attributions:
            figures.append(_figure(runs, cfg, pooling, attribution, out))
    results = {"config": asdict(cfg), "n_test": len(x), "box": [lower, upper], "models": models, "runs": runs,
               "headline": headline(runs), "figures": figures}
    save_json(out / "results.json", results)
    (out / "report.md").write_text(render_report(results))
    return results


def _select(runs: Sequence[dict], **match: Any) -> list[dict]:
    return [r for r in runs if all(r[k] == v for k, v in match.items())]


def _figure(runs: Sequence[dict], cfg: BoundsConfig, pooling: str, attribution: str, out: Path) -> str:
    """One PNG per (pooling, attribution): a panel of T_e - T^_e histograms per model x norm."""
    plt = _plt()
    rows, cols = len(cfg.norms), len(cfg.methods)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for i, norm in enumerate(cfg.norms):
        for j, method in enumerate(cfg.methods):
            ax = axes[i][j]
            for r in _select(runs, pooling=pooling, attribution=attribution, model=method, norm=norm):
                ax.hist(_gaps(r), bins=15, alpha=0.55, label=f"eps {r['eps']:g}")
            ax.axvline(0.0, color="k", lw=1)
            ax.set_title(f"{METHOD_LABELS[method]}, {norm}", fontsize=9)
            ax.tick_params(labelsize=7)
            if i == rows - 1:
                ax.set_xlabel("T_e - T^_e", fontsize=8)
            if j == 0:
                ax.set_ylabel("samples", fontsize=8)
            ax.legend(fontsize=6)
    fig.suptitle(f"{attribution}, {pooling} pooling: T_e - T^_e per sample (< 0: attack above T_e)",
                 fontsize=10)
    return _save(fig, out / f"hist_{pooling}_{attribution}.png", dpi=100)


PCT_FIELDS = ("pct_outside_t_e", "pct_outside_t_e_linear", "pct_outside_t_e_generalized", "pct_outside_t_c")


def headline(runs: Sequence[dict]) -> list[dict]:
    """Per (pooling, attribution, norm), pooled over models and radii: the share of attacked
    samples outside T_e, outside T_e for the linearised deviation, outside T'_e, the smallest
    tightness r and the certified top-k violations (the bound paper's headline numbers)."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["pooling"], r["attribution"], r["norm"]), []).append(r)
    rows = []
    for (pooling, attribution, norm), items in groups.items():
        n = sum(len(r["hat_t_e"]) for r in items)
        rows.append({"pooling": pooling, "attribution": attribution, "norm": norm, "n": n,
                     **{f: _pooled_pct(items, f) for f in PCT_FIELDS},
                     "min_tightness_r": min(r["summary"]["tightness_r"] for r in items),
                     "n_tightness_positive": sum(r["summary"]["tightness_r"] > 0 for r in items),
                     "n_settings": len(items),
                     "n_topk_certified": sum(r["summary"]["n_topk_certified"] for r in items),
                     "n_topk_violations": sum(r["summary"]["n_topk_violations"] for r in items)})
    return rows


def _pooled_pct(items: Sequence[dict], field: str) -> float:
    """A percentage of the summaries, pooled over settings (weighted by their sample counts)."""
    n = sum(len(r["hat_t_e"]) for r in items)
    return sum(r["summary"][field] * len(r["hat_t_e"]) for r in items) / n


def _radii(cfg: dict, norm: str) -> list[float]:
    return cfg["l2_eps"] if norm == "l2" else cfg["linf_eps"]


POOLING_TITLES = {"max": "models as trained (max pooling)",
                  "lse": "smooth-pooling surrogate (same weights, LSE pooling)"}


def render_report(results: dict) -> str:
    """report.md of :func:`run_bounds`."""
    cfg, runs = results["config"], results["runs"]
    methods, attributions = cfg["methods"], cfg["attributions"]
    subset = "" if cfg["max_train"] is None else f" on {cfg['max_train']} images"
    lines = [
        "# Attribution-deviation bounds on MNIST (Wang & Kong, CVPR 2023; SPEC §7, §9)", "",
        f"Single-input softplus CNN (beta {cfg['softplus_beta']:g}; SP beta {cfg['sp_beta']:g}), 10 classes, "
        f"{cfg['epochs']} epochs{subset}; "
        f"first {results['n_test']} test images, explained class = prediction, pixels kept in [0, 1]. "
        f"Attacks: l2 PGD-{cfg['steps']}; l_inf top-k attack ({cfg['topk_steps']} steps, k = {cfg['k']}) "
        f"plus PGD-{cfg['steps']}; {cfg['restarts']} random start(s) each, worst case kept per sample; "
        f"label {'kept (early stop)' if cfg['keep_label'] else 'unconstrained'}."
        f"{' **Quick run.**' if cfg['quick'] else ''}", "",
        "T^_e, T^_c: mean attacked Euclidean / cosine (degrees) deviation; T_e, T'_e, T_c: mean bounds; "
        "[% out]: share of samples whose attacked deviation exceeds the sample's bound; "
        "'% out (linearised)': the same for ||J (x' - x)||, which must be 0; r: tightness "
        "min_i (T_e - T^_e) (negative: a violation); top-k: samples certified (eps below the "
        "first-order top-k radius) / certified samples whose top-k set an attack changed.", "",
        "## Models", "",
        "| model | val acc | " + " | ".join(f"test acc ({p}) | jump ({p}) " for p in cfg["poolings"])
        + "| tied max-pool windows |",
        "|---|---:|" + "---:|---:|" * len(cfg["poolings"]) + "---:|",
    ]
    for method in methods:
        m = results["models"][method]
        cells = []
        for p in cfg["poolings"]:
            d = m["pooling"][p]
            cells += [f"{d['test_accuracy']:.4f}", f"{d['jump'][attributions[0]]:.3g}"]
        tied = m["pooling"].get("max", {}).get("tied_pool_share")
        lines.append(f"| {m['label']} | {m['val_accuracy']:.4f} | " + " | ".join(cells)
                     + f" | {'–' if tied is None else f'{100 * tied:.1f}%'} |")
    lines += ["", f"jump: mean relative change ||g(x + d) - g(x)|| / ||g(x)|| of the {attributions[0]} "
              f"map for random ||d||_2 = {JUMP_RADIUS:g} (worst of 4): about "
              f"xi_max * {JUMP_RADIUS:g} / ||g|| for a smooth model, of order 0.1-1 where g jumps. "
              "Tied windows: share of first-layer 2 x 2 "
              "max-pool windows with an exactly tied maximum on the evaluated images.", ""]

    lines += ["## Headline (pooled over models and radii)", "",
              "| pooling | attribution | norm | samples | % > T_e | % > T_e (linearised) | % > T'_e "
              "| % > T_c | min r | settings with r > 0 | top-k certified / violated |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for h in results["headline"]:
        lines.append(f"| {h['pooling']} | {h['attribution']} | {h['norm']} | {h['n']} | "
                     + " | ".join(f"{h[f]:.1f}" for f in PCT_FIELDS)
                     + f" | {h['min_tightness_r']:+.4f} | "
                     f"{h['n_tightness_positive']}/{h['n_settings']} | "
                     f"{h['n_topk_certified']}/{h['n_topk_violations']} |")
    lines.append("")

    for pooling in cfg["poolings"]:
        lines += [f"## {POOLING_TITLES[pooling].capitalize()}", ""]
        if pooling == "lse":
            lines += [f"Each max pool replaced by tau log mean exp(h / tau), tau = {cfg['tau']:g} "
                      "(twice differentiable; the model's weights unchanged).", ""]
        for attribution in attributions:
            for norm, table in (("l2", "Table 3"), ("linf", "Table 4")):
                if norm not in cfg["norms"]:
                    continue
                rows = [(METHOD_LABELS[r["model"]], r["summary"])
                        for eps in _radii(cfg, norm)
                        for r in _select(runs, pooling=pooling, attribution=attribution, norm=norm, eps=eps)]
                lines += [f"### {attribution}, {norm} (analogue of the bound paper's {table})", "",
                          summary_table(rows), ""]
            lines += [f"### {attribution}: tightness r = min_i (T_e - T^_e) (analogue of Table 5)", "",
                      "| model | " + " | ".join(f"{n} eps {e:g}" for n in cfg["norms"]
                                                  for e in _radii(cfg, n)) + " |",
                      "|---|" + "---:|" * sum(len(_radii(cfg, n)) for n in cfg["norms"])]
            for method in methods:
                cells = [f"{r['summary']['tightness_r']:+.4f}" for n in cfg["norms"] for e in _radii(cfg, n)
                         for r in _select(runs, pooling=pooling, attribution=attribution, model=method,
                                          norm=n, eps=e)]
                lines.append(f"| {METHOD_LABELS[method]} | " + " | ".join(cells) + " |")
            lines += ["", f"![T_e - T^_e, {attribution}, {pooling}](hist_{pooling}_{attribution}.png)", ""]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# `r2et-fast certify`: one saved model


def _piecewise_linear(cfg: TrainConfig) -> str | None:
    """The activation's name when the model is piecewise linear (zero Hessian almost everywhere)."""
    from r2et_fast.models import DEFAULT_ACTIVATION

    act = "softplus" if cfg.method == "sp" else (cfg.activation or DEFAULT_ACTIVATION[cfg.arch])
    return None if act == "softplus" else act


def certify_saved(model_path: str | Path, *, dataset: str | None = None, eps: Sequence[float] = (0.1,),
                  norm: str = "l2", method: str = "saliency", k: int | None = None, n_samples: int = 50,
                  validate: bool = False, out: str | Path = "runs/certify",
                  budget: AttackBudget = AttackBudget(), ig_steps: int = 8, smooth_pool: float | None = None,
                  data_seed: int = 0, progress: bool = True) -> dict:
    """Certify (and with ``validate`` attack) the first ``n_samples`` test samples of ``dataset``
    with a model saved by ``r2et_fast.train`` for each radius in ``eps``.

    ``dataset``: "mnist" (single digits, box [0, 1]) or a tabular name (box: the data's per-feature
    range); default the one recorded in the model file. ``k`` defaults to 50 (mnist) / 8
    (tabular). ``smooth_pool``: evaluate a CNN with LSE pooling of this temperature
    (:class:`SmoothPoolCNN`). Writes ``<out>/<norm>_<method>.json``, ``.md`` and ``.png`` (histogram
    of T_e - T^_e, or of T_e without attacks); returns the JSON payload with the paths and notes.
    """
    from r2et_fast.datasets import DATASETS, load_tabular
    from r2et_fast.experiments.tabular import data_box

    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    model, tcfg, meta = load_model(path)
    name = dataset or meta.get("dataset")
    if name is None:
        raise ValueError("the model file does not name its data set: pass dataset "
                         f"('mnist' or one of {DATASETS})")
    if name == "mnist":
        data: Split = load_mnist(seed=data_seed)
        lower, upper = 0.0, 1.0
    elif name in DATASETS:
        data = load_tabular(name, seed=data_seed)
        lower, upper = data_box(data)
    else:
        raise ValueError(f"dataset must be 'mnist' or one of {DATASETS}, got {name!r}")
    x = data.x_test[:n_samples]
    if tuple(meta["input_shape"]) != tuple(x.shape[1:]):
        raise ValueError(f"the model takes inputs of shape {tuple(meta['input_shape'])}, but {name} samples "
                         f"have shape {tuple(x.shape[1:])}: wrong dataset for this model?")
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
    k = k if k is not None else (50 if name == "mnist" else 8)
    ekw = {"n_steps": ig_steps} if method == "ig" else None
    records = [evaluate(model, x, e, norm, method, k, validate=validate, budget=budget, lower=lower,
                        upper=upper, explainer_kwargs=ekw)
               for e in tqdm(eps, desc=f"certify {norm}", disable=not progress)]
    out = Path(out)
    stem = f"{norm}_{method}"
    title = f"{tcfg.method} on {name}, {method}, {norm}"
    figure = histogram(records, out / f"{stem}.png", title)
    payload = {"model": str(path), "dataset": name, "train_method": tcfg.method, "norm": norm,
               "method": method, "k": k, "n_samples": len(x), "validate": validate,
               "budget": asdict(budget) if validate else None, "smooth_pool": smooth_pool, "notes": notes,
               "records": records,
               "files": {"json": f"{stem}.json", "markdown": f"{stem}.md", "figure": figure}}
    save_json(out / f"{stem}.json", payload)
    rows = [(METHOD_LABELS[tcfg.method], r["summary"]) for r in records]
    table = summary_table(rows, validated=validate)
    how = "bounds only (no attacks)."
    if validate:
        how = f"attacked ({', '.join(records[0]['summary']['attacks'])}, {budget.restarts} random start(s))."
    lines = [f"# Attribution-deviation bounds: {title}", "",
             f"Model `{path}`; first {len(x)} test samples; k = {k}; {how}", "", table, ""]
    lines += [f"Note: {n}." for n in notes] + ["", f"![histogram]({figure})", ""]
    (out / f"{stem}.md").write_text("\n".join(lines))
    payload["table"] = table
    return payload
