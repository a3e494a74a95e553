"""Figures of the bound experiment (docs/spec.md §7): histograms of T_e - T^_e."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from r2et_fast.experiments._bounds_eval import gaps, select_runs
from r2et_fast.experiments._report import _plt, _save
from r2et_fast.train import METHOD_LABELS

if TYPE_CHECKING:
    from r2et_fast.experiments.bounds import BoundsConfig


def histogram(records: Sequence[dict], path: str | Path, title: str) -> str:
    """PNG of T_e - T^_e per sample, one colour per radius (``records`` of :func:`evaluate` with
    ``validate``); without attacks, of T_e per sample. Returns the file name."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    validated = all("hat_t_e" in r for r in records)
    for r in records:
        values = gaps(r) if validated else r["certificate"]["t_e"]
        ax.hist(values, bins=20, alpha=0.55, label=f"eps = {r['summary']['eps']:g}")
    if validated:
        ax.axvline(0.0, color="k", lw=1)
    ax.set(xlabel="T_e - T^_e (per sample)" if validated else "T_e (per sample)", ylabel="samples",
           title=title)
    ax.legend(fontsize=7)
    return _save(fig, Path(path), dpi=100)


def figure(runs: Sequence[dict], cfg: BoundsConfig, pooling: str, attribution: str, out: Path) -> str:
    """One PNG per (pooling, attribution): a panel of T_e - T^_e histograms per model x norm."""
    plt = _plt()
    rows, cols = len(cfg.norms), len(cfg.methods)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for i, norm in enumerate(cfg.norms):
        for j, method in enumerate(cfg.methods):
            ax = axes[i][j]
            for r in select_runs(runs, pooling=pooling, attribution=attribution, model=method, norm=norm):
                ax.hist(gaps(r), bins=15, alpha=0.55, label=f"eps {r['eps']:g}")
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
