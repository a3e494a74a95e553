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
        "# Attribution-deviation bounds on MNIST (Wang & Kong, CVPR 2023; docs/spec.md §7, §9)", "",
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
