"""`r2et-fast bounds --seeds N`: the bound validation repeated for N training and split seeds, each in
its own folder ``<out>/seed<s>/`` (its own results, report and figures), and a summary over them:
the headline pooled over every seed's samples beside each seed's own (docs/spec.md §9).

A bound is a per-sample claim, so pooling the seeds' samples is the natural summary: the share of
all attacked samples whose bound was exceeded, and the smallest tightness r of any seed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from r2et_fast import _distributed
from r2et_fast._io import save_json
from r2et_fast.experiments._bounds_report import PCT_FIELDS, headline, headline_table, pct_cells


def run_seeds(cfg, run_one: Callable, progress: bool = True) -> dict:
    """``run_one`` (:func:`~r2et_fast.experiments.bounds.run_bounds`) at seeds ``cfg.seed + s`` and
    data seeds ``cfg.data_seed + s`` for s < ``cfg.seeds``, then the summary in ``cfg.out``."""
    out = Path(cfg.out)
    per_seed = []
    for s in range(cfg.seeds):
        sub = dataclasses.replace(cfg, seeds=1, seed=cfg.seed + s, data_seed=cfg.data_seed + s,
                                  out=str(out / f"seed{s}"))
        per_seed.append((s, sub, run_one(sub, progress=progress)))
    runs = [{**r, "seed": s} for s, _, res in per_seed for r in res["runs"]]
    results = {"config": dataclasses.asdict(cfg), "headline": headline(runs),
               "seeds": [{"seed": sub.seed, "data_seed": sub.data_seed, "folder": f"seed{s}",
                          "headline": res["headline"],
                          "val_accuracy": {m: e["val_accuracy"] for m, e in res["models"].items()}}
                         for s, sub, res in per_seed]}
    if _distributed.is_main():
        save_json(out / "results.json", results)
        (out / "report.md").write_text(render_seeds_report(results))
    _distributed.barrier()
    return results


def render_seeds_report(results: dict) -> str:
    cfg, seeds = results["config"], results["seeds"]
    lines = ["# Attribution-deviation bounds on MNIST over seeds (Wang & Kong, CVPR 2023)", "",
             f"{len(seeds)} seeds: each trains every model with its own seed and split "
             "(training seed s, split seed s) and attacks its own first "
             f"{cfg['n_samples']} test images; each seed's full report is in its folder "
             "(" + ", ".join(f"[{e['folder']}]({e['folder']}/report.md)" for e in seeds) + ").", "",
             "## Headline, pooled over the seeds' samples", "", *headline_table(results["headline"]),
             "## Headline per seed", "",
             "| seed | pooling | attribution | norm | samples | "
             + " | ".join(_SHORT[f] for f in PCT_FIELDS) + " | min r | top-k certified / violated |",
             "|---:|---|---|---|---:|" + "---:|" * len(PCT_FIELDS) + "---:|---:|"]
    for e in seeds:
        lines += [f"| {e['seed']} | {h['pooling']} | {h['attribution']} | {h['norm']} | {h['n']} | "
                  + pct_cells(h)
                  + f" | {h['min_tightness_r']:+.4f} | {h['n_topk_certified']}/{h['n_topk_violations']} |"
                  for h in e["headline"]]
    archs = list(next(iter(seeds[0]["val_accuracy"].values())))
    lines += ["", "## Validation accuracy per seed", "",
              "| seed | model | " + " | ".join(archs) + " |", "|---:|---|" + "---:|" * len(archs)]
    lines += [f"| {e['seed']} | {m} | " + " | ".join(f"{acc[a]:.4f}" for a in archs) + " |"
              for e in seeds for m, acc in e["val_accuracy"].items()]
    return "\n".join(lines + [""])


_SHORT = {"pct_t_e_exceeded_by_strong_pgd": "% T_e exceeded",
          "pct_outside_t_e_linear": "% T_e exceeded (lin.)",
          "pct_t_e_generalized_exceeded_by_strong_pgd": "% T'_e exceeded",
          "pct_outside_t_c": "% T_c exceeded", "pct_restarts_outside_t_e": "% restarts above T_e"}
