"""The markdown of the studies beside Table 1 in the `r2et-fast reproduce` report: each cell is the
mean ± std over the seeds that ran the study and, in brackets, the 95 % bootstrap interval over
test samples (``_study_summary``)."""

from __future__ import annotations

from r2et_fast.train import METHOD_LABELS


def fmt_stat(stat: dict | None) -> str:
    """``mean ± std [lo, hi]`` (the std only with more than one seed, the interval where it exists)."""
    if stat is None:
        return "n/a"
    text = f"{stat['mean']:.4f} ± {stat['std']:.4f}" if stat["std"] else f"{stat['mean']:.4f}"
    if "ci95" in stat:  # the bootstrap interval over test samples
        text += " [{:.3f}, {:.3f}]".format(*stat["ci95"])
    return text


def verdict_text(claim: dict) -> str:
    """``**verdict** (difference d, [lo, hi]; higher in N of M seeds)``: the seeds count is the seeds'
    part of a claim's uncertainty, which the interval (models held fixed) does not cover."""
    text = f"**{claim['verdict']}** (difference {claim['difference']:+.4f}, " + \
        "[{:+.4f}, {:+.4f}]".format(*claim["ci"])
    if "seed_differences" in claim:  # results written before the per-seed record have none
        n = len(claim["seed_differences"])
        text += f"; higher in {claim['seeds_higher']} of {n} seed{'s' if n > 1 else ''}"
    return text + ")"


def _seeds_of(entry: dict) -> int:
    for kind in ("faithfulness", "variants"):
        for row in entry.get(kind, {}).values():
            return next(iter(row.values()))["seeds"]
    return 0


def _rho(stat: dict | None, n: int) -> str:
    """A Spearman cell: it may average fewer seeds than ran (a rho is undefined on a constant column)."""
    text = fmt_stat(stat)
    return text + f" ({stat['seeds']} of {n} seeds)" if stat is not None and stat["seeds"] < n else text


def study_lines(entry: dict, heading: str = "###", which: str = "", resamples: int = 1) -> list[str]:
    """Variants, correlations, constrained attacks, the k / k' grid and faithfulness of one entry;
    ``which`` names the models in each heading (", fine-tuned"); ``resamples``: the bootstrap's."""
    lines: list[str] = []
    n = _seeds_of(entry)
    if n:
        subject = "The studies below" if not which else f"The studies of the{which.lstrip(',')} models"
        lines += ["", f"{subject} ran on the first {n} seed(s): mean ± std over them" + (
                      " and, in brackets, the 95 % bootstrap interval over test samples (left out where a "
                      "cached record predates its per-sample values or a Spearman rho is undefined on a seed)"
                      if resamples else "") + "."]
    if entry.get("variants"):
        lines += ["", f"{heading} Table 1 with SmoothGrad and IG explanations (P@k under ERAttack on them)"
                  f"{which}", "", "| method | SmoothGrad | IG |", "|---|---:|---:|"]
        lines += [f"| {METHOD_LABELS[m]} | {fmt_stat(v['smoothgrad'])} | {fmt_stat(v['ig'])} |"
                  for m, v in entry["variants"].items()]
    if entry.get("correlation"):
        threshold = next(iter(entry["correlation"].values())).get("manipulation_threshold", 1.0)
        when = "its top-k first changes" if threshold >= 1 else f"P@k first falls below {threshold:g}"
        lines += ["", f"{heading} Correlation with the manipulation epoch (Spearman){which}", "",
                  f"Manipulation epoch: the attack step at which {when}.", "",
                  "| model | thickness | Hessian norm |", "|---|---:|---:|"]
        lines += [f"| {METHOD_LABELS[m]} | {_rho(c['spearman_thickness_epoch'], n)} | "
                  f"{_rho(c['spearman_hessian_epoch'], n)} |" for m, c in entry["correlation"].items()]
        claims = [(m, c["claim"]) for m, c in entry["correlation"].items() if c.get("claim")]
        if claims:  # the paper's second claim, per model (paired bootstrap over test samples)
            lines += [""] + [f"- {METHOD_LABELS[m]}: thickness tracks the manipulation epoch more closely "
                             f"than the Hessian norm does: {verdict_text(c)}" for m, c in claims]
    if entry.get("constrained") and not which:  # Vanilla's: the same model in either init
        lines += ["", f"{heading} Constrained ERAttack on Vanilla (label's explanation, twice the radius)",
                  "", "| constraint | P@k | sensitivity |", "|---|---:|---:|"]
        lines += [f"| {r['constraint']} | {fmt_stat(r['precision_at_k'])} | {fmt_stat(r['sensitivity'])} |"
                  for r in entry["constrained"]]
    if entry.get("k_grid"):
        lines += ["", f"{heading} Sensitivity to k and k'", "", "| method | k | k' | cAUC | P@k ERAttack |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {METHOD_LABELS[r['method']]} | {r['k']} | {r['n_pairs'] or '–'} | "
                  f"{fmt_stat(r['cauc'])} | {fmt_stat(r['precision_at_k_erattack'])} |"
                  for r in entry["k_grid"]]
    if entry.get("faithfulness"):
        lines += ["", f"{heading} Faithfulness (saliency of the loss){which}", "",
                  "| method | DFFOT | COMP | SUFF |", "|---|---:|---:|---:|"]
        lines += [f"| {METHOD_LABELS[m]} | {fmt_stat(f['dffot'])} | {fmt_stat(f['comp'])} | "
                  f"{fmt_stat(f['suff'])} |" for m, f in entry["faithfulness"].items()]
    return lines
