"""report.md of the bound experiment (docs/spec.md §7, §9): the analogues of the bound paper's
Tables 3-5, the headline numbers pooled over models and radii, and the models' diagnostics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from r2et_fast.experiments._bounds_diagnostics import JUMP_RADIUS
from r2et_fast.experiments._bounds_eval import select_runs
from r2et_fast.train import METHOD_LABELS


def _num(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}"


def strong_attack(summaries: Sequence[dict]) -> str:
    """The attack behind the exceedance columns, with the number of restarts it actually used
    (read from the records, not from a default): e.g. "strong PGD (5 restarts)"."""
    attacks = sorted({a for s in summaries for a in s["attacks"]}, key=["pgd", "topk"].index)
    restarts = sorted({int(s["restarts"]) for s in summaries})
    name = " + ".join({"pgd": "strong PGD", "topk": "top-k attack"}[a] for a in attacks)
    count = "/".join(str(r) for r in restarts)
    return f"{name} ({count} restart{'' if restarts == [1] else 's'})"


def summary_table(rows: Sequence[tuple[str, dict]], *, validated: bool = True, first: str = "model") -> str:
    """Markdown table, one row per (label, summary): the bound paper's Table 3/4 columns, the
    attacked deviations both as the worst case over the restarts and as the paper's mean over
    them, the % of samples whose bound the strong attack exceeded (for T_e, its linearised
    deviation, T'_e and T_c, compared in float64), the tightness r and the certified top-k check."""
    if not validated:
        lines = [f"| {first} | eps | mean xi_max | T_e | T'_e | T_c (deg) | top-k certified |",
                 "|---|---:|---:|---:|---:|---:|---:|"]
        for label, s in rows:
            lines.append(f"| {label} | {s['eps']:g} | {_num(s['mean_xi_max'])} | {_num(s['mean_t_e'])} | "
                         f"{_num(s['mean_t_e_generalized'])} | {_num(s['mean_t_c_deg'], 2)} | "
                         f"{s['n_topk_certified']}/{s['n_samples']} |")
        return "\n".join(lines)
    summaries = [s for _, s in rows]
    attack = strong_attack(summaries) if summaries else "strong PGD"
    n = "/".join(str(r) for r in sorted({int(s["restarts"]) for s in summaries})) or "?"
    lines = [f"| {first} | eps | T^_e (worst of {n}) | T^_e (mean over {n}) | T_e | "
             f"% of samples with T_e exceeded by {attack} | % with T_e exceeded (linearised) | T'_e | "
             f"% of samples with T'_e exceeded by {attack} | T^_c deg (worst of {n}) | "
             f"T^_c deg (mean over {n}) | T_c (deg) | % with T_c exceeded (float64) | "
             "r = min(T_e - T^_e) | top-k certified / violated |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, s in rows:
        lines.append(
            f"| {label} | {s['eps']:g} | {_num(s['mean_hat_t_e'])} | "
            f"{_num(s['mean_hat_t_e_over_restarts'])} | "
            f"{_num(s['mean_t_e'])} | {s['pct_t_e_exceeded_by_strong_pgd']:.1f} | "
            f"{s['pct_outside_t_e_linear']:.1f} | {_num(s['mean_t_e_generalized'])} | "
            f"{s['pct_t_e_generalized_exceeded_by_strong_pgd']:.1f} | {_num(s['mean_hat_t_c_deg'], 2)} | "
            f"{_num(s['mean_hat_t_c_deg_over_restarts'], 2)} | {_num(s['mean_t_c_deg'], 2)} | "
            f"{s['pct_outside_t_c']:.1f} | {s['tightness_r']:+.4f} | "
            f"{s['n_topk_certified']}/{s['n_topk_violations']} |")
    return "\n".join(lines)


# the headline's percentages: samples exceeded by the strong attack (worst case over the
# restarts), the linearised check, T'_e and T_c, and the paper's per-attack share of T_e
PCT_FIELDS = ("pct_t_e_exceeded_by_strong_pgd", "pct_outside_t_e_linear",
              "pct_t_e_generalized_exceeded_by_strong_pgd", "pct_outside_t_c", "pct_restarts_outside_t_e")


def headline(runs: Sequence[dict]) -> list[dict]:
    """Per (pooling, attribution, norm), pooled over models and radii: the share of samples whose
    T_e the strong attack exceeded, the same for the linearised deviation, for T'_e and T_c, the
    share of single attacks (sample x restart) above T_e, the smallest tightness r and the
    certified top-k violations (the bound paper's headline numbers), and the attack behind them."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["pooling"], r["attribution"], r["norm"]), []).append(r)
    rows = []
    for (pooling, attribution, norm), items in groups.items():
        n = sum(len(r["hat_t_e"]) for r in items)
        summaries = [r["summary"] for r in items]
        rows.append({"pooling": pooling, "attribution": attribution, "norm": norm, "n": n,
                     "strong_attack": strong_attack(summaries),
                     "restarts": sorted({s["restarts"] for s in summaries}),
                     **{f: _pooled_pct(items, f) for f in PCT_FIELDS},
                     "min_tightness_r": min(s["tightness_r"] for s in summaries),
                     "n_tightness_positive": sum(s["tightness_r"] > 0 for s in summaries),
                     "n_settings": len(items),
                     "n_topk_certified": sum(s["n_topk_certified"] for s in summaries),
                     "n_topk_violations": sum(s["n_topk_violations"] for s in summaries)})
    return rows


def _pooled_pct(items: Sequence[dict], field: str) -> float:
    """A percentage of the summaries, pooled over settings (weighted by their sample counts)."""
    n = sum(len(r["hat_t_e"]) for r in items)
    return sum(r["summary"][field] * len(r["hat_t_e"]) for r in items) / n


def _radii(cfg: dict, norm: str) -> list[float]:
    return cfg["l2_eps"] if norm == "l2" else cfg["linf_eps"]


POOLING_TITLES = {"max": "models as trained (max pooling)",
                  "lse": "smooth-pooling surrogate (same weights, LSE pooling)",
                  "avg": "smooth-pool CNN (avgpool_cnn: trained with average pooling)"}
ARCH_LABELS = {"cnn": "max-pool CNN", "avgpool_cnn": "avg-pool CNN"}


def _intro(results: dict) -> list[str]:
    cfg = results["config"]
    subset = "" if cfg["max_train"] is None else f" on {cfg['max_train']} images"
    # the restarts the records were attacked with (not the configured default)
    used = sorted({r["summary"]["restarts"] for r in results["runs"]})
    restarts = "/".join(str(r) for r in used) or str(cfg["restarts"])
    return [
        "# Attribution-deviation bounds on MNIST (Wang & Kong, CVPR 2023; docs/spec.md §7, §9)", "",
        f"Single-input softplus CNNs (beta {cfg['softplus_beta']:g}; SP beta {cfg['sp_beta']:g}), "
        "10 classes, "
        f"{cfg['epochs']} epochs{subset}; "
        f"first {results['n_test']} test images, explained class = prediction, pixels kept in [0, 1]. "
        f"Attacks: l2 PGD-{cfg['steps']}; l_inf top-k attack ({cfg['topk_steps']} steps, k = {cfg['k']}) "
        f"plus PGD-{cfg['steps']}; {restarts} random start(s) each; "
        f"label {'kept (early stop)' if cfg['keep_label'] else 'unconstrained'}."
        f"{' **Quick run.**' if cfg['quick'] else ''}", "",
        "T_e and T'_e are first-order bounds (exact for a locally linear attribution), so an attack "
        "can exceed them where g is curved; the tables measure how often. T^_e, T^_c: attacked "
        "Euclidean / cosine (degrees) deviation, as the worst case over the restarts of a sample "
        "(our statistic) and as the mean over them (the bound paper's: 'each sample is attacked 20 "
        "times and the mean distance is computed'), then averaged over samples; T_e, T'_e, T_c: mean "
        "bounds; '% of samples with T_e exceeded by strong PGD (N restarts)': share of samples for "
        "which some restart of the attack went beyond the sample's bound (under l_inf each restart "
        "runs the top-k attack and PGD), N the restarts actually used; '(linearised)': the same for "
        "||J (x' - x)||, which must be 0; T_c is compared in float64; r: tightness "
        "min_i (T_e - T^_e) (negative: a violation); top-k: samples certified (eps below the "
        "first-order top-k radius) / certified samples whose top-k set an attack changed.", ""]


def _models(results: dict) -> list[str]:
    cfg = results["config"]
    attributions, poolings = cfg["attributions"], cfg["poolings"]
    archs = list(results["models"][cfg["methods"][0]]["val_accuracy"])
    lines = ["## Models", "",
             "| model | " + " | ".join(f"val acc ({ARCH_LABELS.get(a, a)})" for a in archs) + " | "
             + " | ".join(f"test acc ({p}) | jump ({p})" for p in poolings) + " | tied max-pool windows |",
             "|---|" + "---:|" * len(archs) + "---:|---:|" * len(poolings) + "---:|"]
    for method in cfg["methods"]:
        m = results["models"][method]
        cells = [f"{m['val_accuracy'][a]:.4f}" for a in archs]
        for p in poolings:
            d = m["pooling"][p]
            cells += [f"{d['test_accuracy']:.4f}", f"{d['jump'][attributions[0]]:.3g}"]
        tied = m["pooling"].get("max", {}).get("tied_pool_share")
        lines.append(f"| {m['label']} | " + " | ".join(cells)
                     + f" | {'–' if tied is None else f'{100 * tied:.1f}%'} |")
    return lines + ["", f"jump: mean relative change ||g(x + d) - g(x)|| / ||g(x)|| of the {attributions[0]} "
                    f"map for random ||d||_2 = {JUMP_RADIUS:g} (worst of 4): about "
                    f"xi_max * {JUMP_RADIUS:g} / ||g|| for a smooth model, of order 0.1-1 where g jumps. "
                    "Tied windows: share of first-layer 2 x 2 "
                    "max-pool windows with an exactly tied maximum on the evaluated images.", ""]


def _headline(results: dict) -> list[str]:
    return ["## Headline (pooled over models and radii)", "", *headline_table(results["headline"])]


def pct_cells(row: dict) -> str:
    """The percentage columns (:data:`PCT_FIELDS`) of one headline row, as table cells."""
    return " | ".join(f"{row[f]:.1f}" for f in PCT_FIELDS)


def headline_table(rows: Sequence[dict]) -> list[str]:
    """The markdown table of :func:`headline`'s rows."""
    lines = ["| pooling | attribution | norm | samples | strong attack | % of samples with T_e exceeded "
             "| % with T_e exceeded (linearised) | % with T'_e exceeded | % with T_c exceeded (float64) "
             "| % of single restarts above T_e | min r | settings with r > 0 | top-k certified / violated |",
             "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for h in rows:
        lines.append(f"| {h['pooling']} | {h['attribution']} | {h['norm']} | {h['n']} | "
                     f"{h['strong_attack']} | "
                     + pct_cells(h)
                     + f" | {h['min_tightness_r']:+.4f} | "
                     f"{h['n_tightness_positive']}/{h['n_settings']} | "
                     f"{h['n_topk_certified']}/{h['n_topk_violations']} |")
    return lines + [""]


def render_report(results: dict) -> str:
    """report.md of :func:`run_bounds`."""
    cfg, runs = results["config"], results["runs"]
    methods, attributions = cfg["methods"], cfg["attributions"]
    lines = _intro(results) + _models(results) + _headline(results)
    for pooling in cfg["poolings"]:
        title = POOLING_TITLES[pooling]
        lines += [f"## {title[0].upper() + title[1:]}", ""]  # not capitalize(): it lowercases "CNN"
        if pooling == "lse":
            lines += [f"Each max pool replaced by tau log mean exp(h / tau), tau = {cfg['tau']:g} "
                      "(twice differentiable; the model's weights unchanged).", ""]
        if pooling == "avg":
            lines += ["The same layout trained with average pooling after each activation "
                      "(r2et_fast.models.AvgPoolCNN): twice differentiable as trained, no surrogate.", ""]
        for attribution in attributions:
            for norm, table in (("l2", "Table 3"), ("linf", "Table 4")):
                if norm not in cfg["norms"]:
                    continue
                rows = [(METHOD_LABELS[r["model"]], r["summary"])
                        for eps in _radii(cfg, norm)
                        for r in select_runs(runs, pooling=pooling, attribution=attribution, norm=norm,
                                             eps=eps)]
                lines += [f"### {attribution}, {norm} (analogue of the bound paper's {table})", "",
                          summary_table(rows), ""]
            lines += [f"### {attribution}: tightness r = min_i (T_e - T^_e) (analogue of Table 5)", "",
                      "| model | " + " | ".join(f"{n} eps {e:g}" for n in cfg["norms"]
                                                  for e in _radii(cfg, n)) + " |",
                      "|---|" + "---:|" * sum(len(_radii(cfg, n)) for n in cfg["norms"])]
            for method in methods:
                cells = [f"{r['summary']['tightness_r']:+.4f}" for n in cfg["norms"] for e in _radii(cfg, n)
                         for r in select_runs(runs, pooling=pooling, attribution=attribution, model=method,
                                              norm=n, eps=e)]
                lines.append(f"| {METHOD_LABELS[method]} | " + " | ".join(cells) + " |")
            lines += ["", f"![T_e - T^_e, {attribution}, {pooling}](hist_{pooling}_{attribution}.png)", ""]
    return "\n".join(lines) + "\n"
