"""The studies beside Table 1 summarised over seeds (docs/spec.md §9): for each study of
`r2et-fast reproduce` (SmoothGrad / IG variants, faithfulness, correlations, constrained attacks,
the k / k' grid), the mean ± std over the seeds that ran it and, where every seed's record holds
its per-sample values, the 95 % percentile bootstrap interval over test samples (``_summary``).

Records cached before they kept per-sample values still give the mean ± std; only the interval is
left out, so a resumed run never recomputes a study just to add it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.stats

from r2et_fast.experiments._summary import CHUNK, mean_std, percentile_interval, verdict_of

VARIANTS = ("smoothgrad", "ig")
FAITHFULNESS = ("dffot", "comp", "suff")
SPEARMAN = ("spearman_thickness_epoch", "spearman_hessian_epoch")


def stat(values: Sequence[float], per_sample: Sequence | None, resamples: int, seed: int) -> dict:
    """Mean ± std over seeds of ``values``; with ``per_sample`` (one list per seed, none missing) also
    the interval ``ci95`` of that mean over test samples."""
    out = mean_std(list(values))
    out["seeds"] = len(values)
    if resamples and per_sample is not None and all(p is not None and len(p) for p in per_sample):
        out["ci95"] = percentile_interval(per_sample, resamples, seed)
    return out


def _per_sample(records: list[dict], key: str) -> list | None:
    found = [r.get("per_sample", {}).get(key) for r in records]
    return None if any(v is None for v in found) else found


def variants(records: list[dict], resamples: int, seed: int) -> dict:
    """One method's SmoothGrad and IG P@k (one record per seed)."""
    return {name: stat([r[name] for r in records], _per_sample(records, name), resamples, seed)
            for name in VARIANTS}


def faithfulness(records: list[dict], resamples: int, seed: int) -> dict:
    return {name: stat([r[name] for r in records], _per_sample(records, name), resamples, seed)
            for name in FAITHFULNESS}


def _spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair (average ranks); NaN where a row is constant."""
    ra = scipy.stats.rankdata(a, axis=1)
    rb = scipy.stats.rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    den = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (ra * rb).sum(axis=1) / den, np.nan)


def _replicates(per_seed: Sequence[Sequence[Sequence[float]]], resamples: int, seed: int,
                statistic) -> np.ndarray:
    """``resamples`` replicates of the mean over seeds of ``statistic`` (rows of resampled columns):
    each seed's samples are resampled on their own, its columns together (the same indices)."""
    rng = np.random.default_rng(seed)
    total = np.zeros(resamples)
    for columns in per_seed:
        arrays = [np.asarray(c, dtype=float) for c in columns]
        n = len(arrays[0])
        for start in range(0, resamples, CHUNK):
            m = min(CHUNK, resamples - start)
            idx = rng.integers(0, n, size=(m, n))
            total[start:start + m] += statistic(*(a[idx] for a in arrays))
    return total / len(per_seed)


def _tails(replicates: np.ndarray, level: float) -> list[float] | None:
    """The percentile interval of the finite replicates; None when more than 1 % are undefined (a
    resample with a constant column has no rho), too many to trust the tails."""
    finite = replicates[np.isfinite(replicates)]
    if len(finite) < 0.99 * len(replicates):
        return None
    tail = 100 * (1 - level) / 2
    return [float(v) for v in np.percentile(finite, [tail, 100 - tail])]


def spearman_interval(pairs: Sequence[tuple[Sequence[float], Sequence[float]]], resamples: int, seed: int,
                      level: float = 0.95) -> list[float] | None:
    """Percentile bootstrap interval of the mean over seeds of Spearman(x, y) (None: see ``_tails``)."""
    return _tails(_replicates(pairs, resamples, seed, _spearman_rows), level)


def thickness_verdict(records: list[dict], resamples: int, seed: int, level: float = 0.95) -> dict | None:
    """The claim "thickness correlates with the manipulation epoch more strongly than the Hessian
    norm": a paired bootstrap of rho(thickness) - rho(Hessian norm), both on the same resampled
    samples, as ``_summary.paired_verdict``. None without resamples or where a rho is undefined."""
    if not resamples or any(r[key] is None for r in records for key in SPEARMAN):
        return None

    def gap(thick, hess, epoch):
        return _spearman_rows(thick, epoch) - _spearman_rows(hess, epoch)

    ci = _tails(_replicates([(r["thickness"], r["hessian"], r["epoch"]) for r in records], resamples, seed,
                            gap), level)
    if ci is None:
        return None
    per_seed = [r[SPEARMAN[0]] - r[SPEARMAN[1]] for r in records]
    return {"difference": float(np.mean(per_seed)), "ci": ci, "verdict": verdict_of(*ci),
            "seed_differences": per_seed, "seeds_higher": sum(d > 0 for d in per_seed)}


def correlation(records: list[dict], resamples: int, seed: int) -> dict:
    """Spearman of thickness and of the Hessian norm with the manipulation epoch, over seeds (seeds
    where a rho is undefined are left out of its mean); the first record's samples for the figure."""
    out: dict = {"manipulation_threshold": records[0].get("manipulation_threshold", 1.0),
                 "points": {key: records[0][key] for key in ("hessian", "thickness", "epoch")}}
    for key, column in zip(SPEARMAN, ("thickness", "hessian")):
        values = [r[key] for r in records if r[key] is not None]
        if not values:
            out[key] = None
            continue
        out[key] = stat(values, None, 0, seed)
        if resamples and len(values) == len(records):
            ci = spearman_interval([(r[column], r["epoch"]) for r in records], resamples, seed)
            if ci is not None:
                out[key]["ci95"] = ci
    out["claim"] = thickness_verdict(records, resamples, seed)
    return out


def _rows(per_seed: list[list[dict]], labels: tuple[str, ...], sampled: str, samples: str, plain: str,
          resamples: int, seed: int) -> list[dict]:
    """Row lists of several seeds (the same rows in the same order) as one: the ``labels`` kept from
    the first seed, ``sampled`` with its interval (from each row's ``samples``), ``plain`` without."""
    rows = []
    for i, first in enumerate(per_seed[0]):
        mine = [rows_of_seed[i] for rows_of_seed in per_seed]
        found = [r.get(samples) for r in mine]
        per_sample = None if None in found else found
        rows.append({**{key: first[key] for key in labels},
                     sampled: stat([r[sampled] for r in mine], per_sample, resamples, seed),
                     plain: stat([r[plain] for r in mine], None, 0, seed)})
    return rows


def constrained(per_seed: list[list[dict]], resamples: int, seed: int) -> list[dict]:
    """Each constraint handler's P@k and sensitivity over seeds (one row list per seed)."""
    return _rows(per_seed, ("constraint",), "precision_at_k", "per_sample_precision_at_k", "sensitivity",
                 resamples, seed)


def k_grid(per_seed: list[list[dict]], resamples: int, seed: int) -> list[dict]:
    """The k / k' grid over seeds: one row per (method, k, k'), in the first seed's order."""
    return _rows(per_seed, ("method", "k", "n_pairs"), "precision_at_k_erattack", "per_sample", "cauc",
                 resamples, seed)
