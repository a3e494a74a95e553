"""Budget-free and uncertainty summaries of `r2et-fast reproduce` (docs/spec.md §9): the area under a
P@k-vs-eps curve, percentile bootstrap intervals over test samples and the paired verdicts of the
paper's claims. Pure numpy on the cached records, so they cost nothing to recompute and need no
cache of their own (the resampling is seeded)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Table 1's metrics that are means of one value per test sample: the ones with a bootstrap interval.
PER_SAMPLE = ("precision_at_k_erattack", "precision_at_k_mse")
# Resamples drawn at once: bounds the (chunk, n) index array for large test splits.
CHUNK = 100


def log_eps_auc(eps: Sequence[float], values: Sequence[float]) -> float:
    """Trapezoid area under ``values`` over log(eps), divided by the log-range: the mean of the curve
    on a log-eps axis, in the curve's own units (a P@k in [0, 1]).

    Log eps because the grid is geometric: each doubling of the budget weighs the same, where a
    linear axis would give the widest (largest-eps) interval most of the weight."""
    x = np.log(np.asarray(eps, dtype=float))
    y = np.asarray(values, dtype=float)
    if x.shape != y.shape or len(x) < 2 or not np.all(np.diff(x) > 0):
        raise ValueError("need >= 2 increasing eps values, one value each")
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))


def bootstrap_means(per_seed: Sequence[Sequence[float]], resamples: int, seed: int) -> np.ndarray:
    """``resamples`` bootstrap replicates of the mean over seeds of each seed's test-sample mean:
    each seed's samples are resampled with replacement on their own (each seed has its own test
    split), so the spread is the test-sample uncertainty of the table's mean, not the seeds'."""
    rng = np.random.default_rng(seed)
    total = np.zeros(resamples)
    for values in per_seed:
        v = np.asarray(values, dtype=float)
        for start in range(0, resamples, CHUNK):
            m = min(CHUNK, resamples - start)
            total[start:start + m] += v[rng.integers(0, len(v), size=(m, len(v)))].mean(axis=1)
    return total / len(per_seed)


def percentile_interval(per_seed: Sequence[Sequence[float]], resamples: int, seed: int,
                        level: float = 0.95) -> list[float]:
    """The percentile bootstrap interval of :func:`bootstrap_means` at ``level``."""
    means = bootstrap_means(per_seed, resamples, seed)
    tail = 100 * (1 - level) / 2
    return [float(v) for v in np.percentile(means, [tail, 100 - tail])]


def verdict_of(lo: float, hi: float) -> str:
    """A claim "a is higher than b" from the interval of the difference a - b."""
    return "supported" if lo > 0 else "not supported" if hi < 0 else "undecided"


def paired_verdict(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], resamples: int, seed: int,
                   level: float = 0.95) -> dict:
    """Is the mean of ``a`` higher than that of ``b``? Per seed the two methods are scored on the
    same test samples, so the per-sample differences are resampled (a paired bootstrap): supported
    when the interval of the mean difference lies above 0, not supported when below, else undecided."""
    diffs = [np.asarray(x, dtype=float) - np.asarray(y, dtype=float) for x, y in zip(a, b, strict=True)]
    lo, hi = percentile_interval(diffs, resamples, seed, level)
    verdict = verdict_of(lo, hi)
    # The interval holds the trained models fixed; how often a retrained pair keeps the sign is the
    # seeds' part of the uncertainty, which the interval does not cover.
    per_seed = [float(d.mean()) for d in diffs]
    return {"difference": float(np.mean(per_seed)), "ci": [lo, hi], "verdict": verdict,
            "seed_differences": per_seed, "seeds_higher": sum(d > 0 for d in per_seed)}


def mean_std(values: list[float]) -> dict:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}


def table1(per_method: dict[str, list[dict]], resamples: int, seed: int) -> dict:
    """Table 1 of one data set: mean ± std over seeds of every scalar score and, for the per-sample
    metrics (when the records hold their per-sample values), the 95 % bootstrap interval ``ci95``."""
    table = {}
    for method, runs in per_method.items():
        row = {key: mean_std([s[key] for s in runs]) for key, v in runs[0].items() if key != "per_sample"}
        if resamples and all("per_sample" in s for s in runs):
            for key in PER_SAMPLE:
                row[key]["ci95"] = percentile_interval([s["per_sample"][key] for s in runs], resamples, seed)
        table[method] = row
    return table


# The paper's headline (docs/spec.md §9): R2ET above each baseline, under both attacks.
CLAIM_METHOD = "r2et"
CLAIM_BASELINES = ("vanilla", "wd", "sp", "est_h")


def claims(per_method: dict[str, list[dict]], resamples: int, seed: int) -> list[dict]:
    """The paired verdict of "R2ET's P@k under <attack> is higher than <baseline>'s" for each
    baseline that ran (with per-sample records for every seed)."""
    ours = per_method.get(CLAIM_METHOD, [])
    if not resamples or not ours or not all("per_sample" in s for s in ours):
        return []
    out = []
    for base in CLAIM_BASELINES:
        theirs = per_method.get(base, [])
        if len(theirs) != len(ours) or not all("per_sample" in s for s in theirs):
            continue
        for key in PER_SAMPLE:
            found = paired_verdict([s["per_sample"][key] for s in ours],
                                   [s["per_sample"][key] for s in theirs], resamples, seed)
            out.append({"method": CLAIM_METHOD, "baseline": base, "metric": key, **found})
    return out


def curves(records: dict[str, list[dict]]) -> dict:
    """The budget curves of one data set: the grid and, per method, each point's mean over seeds."""
    if not records:
        return {}
    first = next(iter(records.values()))[0]
    out: dict = {key: first[key] for key in ("multipliers", "eps", "steps", "samples")}
    out["auc"] = "trapezoid over log eps, divided by the log-range"
    out["methods"] = {m: {key: np.mean([c[key] for c in runs], axis=0).tolist() for key in PER_SAMPLE}
                      for m, runs in records.items()}
    return out
