"""Figures (PNG) and the markdown report of `r2et-fast reproduce`."""

from __future__ import annotations

from pathlib import Path

from r2et_fast.experiments._report_studies import fmt_stat, study_lines, verdict_text
from r2et_fast.train import METHOD_LABELS


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, dpi: int = 110) -> str:
    plt = _plt()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path.name


# One (colour, marker) per method: methods of similar cAUC and P@k sit on top of each other, so
# they are told apart by a legend beside the axes, not by labels written at the points (which overlap).
MARKERS = "osD^vP*Xph<>"


def tradeoff_figure(plt, name: str, entry: dict):
    """The accuracy-robustness scatter of one data set (mean ± std over seeds), a legend per method."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (method, row) in enumerate(entry["table1"].items()):
        ax.errorbar(row["cauc"]["mean"], row["precision_at_k_erattack"]["mean"], xerr=row["cauc"]["std"],
                    yerr=row["precision_at_k_erattack"]["std"], fmt=MARKERS[i % len(MARKERS)],
                    color=colours[i % len(colours)], label=METHOD_LABELS[method], capsize=2)
    ax.set(xlabel="cAUC", ylabel="P@k under ERAttack", title=f"{name}: accuracy vs robustness")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    return fig


def _tradeoff(plt, name: str, entry: dict, out: Path) -> str:
    return _save(tradeoff_figure(plt, name, entry), out / f"{name}_tradeoff.png")


def _correlation(plt, name: str, method: str, corr: dict, out: Path) -> str:
    """The first study seed's samples; each title gives the mean Spearman over the seeds."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
    points = corr["points"]
    for ax, key, label in ((axes[0], "thickness", "thickness"), (axes[1], "hessian", "Hessian norm")):
        ax.scatter(points[key], points["epoch"], s=8)
        rho = corr[f"spearman_{key}_epoch"]
        ax.set(xlabel=label, ylabel="manipulation epoch",
               title=f"Spearman {rho['mean']:.2f} (mean of {rho['seeds']} seeds)" if rho else "Spearman n/a")
        if key == "hessian" and min(points[key], default=0) > 0:
            ax.set_xscale("log")  # the Hessian norm spans orders of magnitude
    fig.suptitle(f"{name}, {METHOD_LABELS[method]} (points: seed {points.get('seed', 0)}'s test samples)")
    return _save(fig, out / f"{name}_{method}_correlation.png")


def _constrained(plt, name: str, rows: list[dict], out: Path) -> str:
    fig, ax = plt.subplots(figsize=(6.5, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, row in enumerate(rows):  # several handlers often share a point: a legend, as the trade-off
        ax.errorbar(row["sensitivity"]["mean"], row["precision_at_k"]["mean"], xerr=row["sensitivity"]["std"],
                    yerr=row["precision_at_k"]["std"], fmt=MARKERS[i % len(MARKERS)],
                    color=colours[i % len(colours)], label=row["constraint"], capsize=2)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    ax.set(xlabel="sensitivity (share of changed predictions)", ylabel="P@k (lower: stronger attack)",
           title=f"{name}: constrained ERAttack on Vanilla")
    return _save(fig, out / f"{name}_constrained.png")


def _k_grid(plt, name: str, rows: list[dict], out: Path) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
    def points(method: str, x: str):  # (x, mean, std) of each row of the method (mean ± std over seeds)
        return list(zip(*[(r[x], r["precision_at_k_erattack"]["mean"], r["precision_at_k_erattack"]["std"])
                          for r in rows if r["method"] == method]))

    for method in ("vanilla", "r2et"):
        if any(r["method"] == method for r in rows):
            axes[0].errorbar(*points(method, "k"), fmt="o-", capsize=2, label=METHOD_LABELS[method])
    axes[0].set(xlabel="k", ylabel="P@k under ERAttack", title="k (trained and attacked at k)")
    axes[0].legend()
    if any(r["method"] == "r2et_mm" for r in rows):
        axes[1].errorbar(*points("r2et_mm", "n_pairs"), fmt="o-", capsize=2)
    axes[1].set(xlabel="k' (pairs of R2ET-mm)", ylabel="P@k under ERAttack", title="k'")
    fig.suptitle(name)
    return _save(fig, out / f"{name}_k_grid.png")


def _topk_mask(values: list[float], k: int):
    import numpy as np

    v = np.abs(np.asarray(values))
    mask = np.zeros(v.shape, dtype=bool)
    mask[np.argsort(-v, kind="stable")[:k]] = True
    return mask


def _case_images(plt, name: str, cases: dict, out: Path) -> str:
    """Rows: methods; columns: the pair, its clean saliency, the attacked saliency (top-k marked)."""
    import numpy as np

    fig, axes = plt.subplots(len(cases), 3, figsize=(7.5, 1.9 * len(cases)), squeeze=False)
    for row, (method, case) in zip(axes, cases.items()):
        shape = case["shape"]  # (2, 28, 28)
        def tile(v, shape=shape):
            return np.concatenate(list(np.asarray(v).reshape(shape)), axis=1)

        row[0].imshow(tile(case["x"]), cmap="gray", vmin=0, vmax=1)
        for ax, key in ((row[1], "clean"), (row[2], "adv")):
            ax.imshow(tile(np.abs(case[key])), cmap="viridis")
            ys, xs = np.nonzero(tile(_topk_mask(case[key], case["k"])))
            ax.scatter(xs, ys, s=2, c="red", marker="s")
        row[0].set_ylabel(METHOD_LABELS[method], fontsize=8)
        row[2].set_title(f"P@k {case['precision_at_k']:.2f}", fontsize=8)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0][0].set_title("pair", fontsize=8)
    axes[0][1].set_title("clean saliency (top-k red)", fontsize=8)
    fig.suptitle(f"{name}: ERAttack case study", fontsize=9)
    return _save(fig, out / f"{name}_case_study.png")


def _case_graphs(plt, name: str, cases: dict, out: Path) -> str:
    """Heat maps of the first graph's adjacency explanation, clean and attacked, per method."""
    import numpy as np

    fig, axes = plt.subplots(len(cases), 2, figsize=(6, 2.8 * len(cases)), squeeze=False)
    for row, (method, case) in zip(axes, cases.items()):
        m = case["shape"][1]
        n = (1 + int(np.sqrt(1 + 8 * m))) // 2
        iu = np.triu_indices(n, 1)
        for ax, key in ((row[0], "clean"), (row[1], "adv")):
            mat = np.zeros((n, n))
            mat[iu] = np.abs(np.asarray(case[key][:m]))
            ax.imshow(mat + mat.T, cmap="magma")
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(METHOD_LABELS[method], fontsize=8)
        row[1].set_title(f"attacked, P@k {case['precision_at_k']:.2f}", fontsize=8)
    axes[0][0].set_title("clean explanation (graph 1)", fontsize=8)
    fig.suptitle(f"{name}: adjacency explanation before / after ERAttack", fontsize=9)
    return _save(fig, out / f"{name}_case_study.png")


_ATTACKS = {"precision_at_k_erattack": "ERAttack", "precision_at_k_mse": "the MSE attack"}


def budget_figure(plt, name: str, curves: dict):
    """P@k vs eps (log axis) under each attack, one line (colour and marker) per method."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (key, attack) in zip(axes, _ATTACKS.items()):
        for i, (method, row) in enumerate(curves["methods"].items()):
            ax.plot(curves["eps"], row[key], marker=MARKERS[i % len(MARKERS)],
                    color=colours[i % len(colours)], label=METHOD_LABELS[method])
        ax.axvline(curves["eps"][0] / curves["multipliers"][0], color="grey", ls=":", lw=1)  # Table 1's eps
        ax.set_xscale("log")
        ax.set(xlabel="eps (l-inf radius)", title=f"{attack.removeprefix('the ')}, {curves['steps']} steps")
    axes[0].set_ylabel("P@k")
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.suptitle(f"{name}: P@k vs attack budget")
    return fig


def validation_figure(plt, name: str, curves: dict[str, list[list[float]]]):
    """Validation AUC after each epoch, one thin line per seed and method (a colour per method)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (method, runs) in enumerate(curves.items()):
        for j, run in enumerate(runs):
            ax.plot(range(1, len(run) + 1), run, color=colours[i % len(colours)], lw=1, alpha=0.8,
                    marker=MARKERS[i % len(MARKERS)], ms=3, label=METHOD_LABELS[method] if j == 0 else None)
    ax.set(xlabel="epoch", ylabel="validation AUC", title=f"{name}: training curves (one line per seed)")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    return fig


def write_figures(results: dict, out: Path) -> dict[str, list[str]]:
    """PNG figures per data set; returns data set -> file names."""
    plt = _plt()
    figures: dict[str, list[str]] = {}
    for name, entry in results["datasets"].items():
        paths = [_tradeoff(plt, name, entry, out)]
        if entry.get("budget_curves"):
            paths.append(_save(budget_figure(plt, name, entry["budget_curves"]), out / f"{name}_budget.png"))
        tuned = entry.get("pretrained") or {}
        if tuned.get("budget_curves"):
            paths.append(_save(budget_figure(plt, f"{name} (fine-tuned)", tuned["budget_curves"]),
                               out / f"{name}_budget_finetuned.png"))
        if entry.get("validation_auc"):
            paths.append(_save(validation_figure(plt, name, entry["validation_auc"]),
                               out / f"{name}_validation.png"))
        paths += [_correlation(plt, name, m, c, out) for m, c in entry.get("correlation", {}).items()]
        if entry.get("constrained"):
            paths.append(_constrained(plt, name, entry["constrained"], out))
        if entry.get("k_grid"):
            paths.append(_k_grid(plt, name, entry["k_grid"], out))
        if entry.get("case_study"):
            draw = _case_images if entry["modality"] == "image" else _case_graphs
            paths.append(draw(plt, name, entry["case_study"], out))
        figures[name] = paths
    return figures


def _table1(entry: dict) -> list[str]:
    keys: tuple[str, ...] = ("cauc", "precision_at_k_erattack", "precision_at_k_mse", "aauc")
    head = "| method | cAUC | P@k ERAttack | P@k MSE | aAUC (ERAttack) |"
    if entry.get("budget_curves"):  # the budget-free summaries: areas under the P@k-vs-eps curves
        keys += ("auc_precision_at_k_erattack", "auc_precision_at_k_mse")
        head += " eps-AUC ERAttack | eps-AUC MSE |"
    lines = [head + " selected |", "|---|" + "---:|" * len(keys) + "---|"]
    for method, row in entry["table1"].items():
        chosen = entry.get("selected", {}).get(method)
        picked = ", ".join(f"{v:g}" for v in chosen) if chosen else "–"
        lines.append(f"| {METHOD_LABELS[method]} | " + " | ".join(fmt_stat(row[key]) for key in keys)
                     + f" | {picked} |")
    return lines


def _notes(entry: dict) -> list[str]:
    """What Table 1's brackets and eps-AUC columns are, and the verdicts of the paper's claims."""
    lines = []
    boot = entry.get("bootstrap", {})
    if boot.get("resamples"):
        lines += ["", f"Brackets: {100 * boot['level']:g} % percentile bootstrap interval of the mean over "
                  f"test samples ({boot['resamples']} resamples, seed {boot['seed']})."]
    curves = entry.get("budget_curves")
    if curves:
        grid = ", ".join(f"{e:g}" for e in curves["eps"])
        lines += ["", f"eps-AUC: area under P@k vs eps ({grid}), a trapezoid over log eps divided by the "
                  f"log-range (the curve's mean on a log axis), {curves['steps']} steps per radius, "
                  f"{curves['samples']} test samples of each seed's split (mean over seeds)."]
    return lines + _claims(entry, "")


def _claims(entry: dict, which: str) -> list[str]:
    if not entry.get("claims"):
        return []
    lines = ["", f"### The paper's claims{which} (paired bootstrap over test samples, 95 %)", ""]
    lines += [f"- {METHOD_LABELS[c['method']]}'s P@k under {_ATTACKS[c['metric']]} is higher than "
              f"{METHOD_LABELS[c['baseline']]}'s: {verdict_text(c)}" for c in entry["claims"]]
    return lines + ["", "The interval resamples test samples with the trained models held fixed; the seeds "
                    "count says in how many seeds (retrained models, new split) the difference was positive."]


def _validation(entry: dict) -> list[str]:
    """Validation AUC per epoch (mean over seeds): whether training had converged."""
    curves = entry.get("validation_auc") or {}
    if not curves:
        return []
    lines = ["", "### Validation AUC per epoch (mean over seeds)", "",
             "| method | epochs | AUC after each epoch |", "|---|---:|---|"]
    for method, runs in curves.items():
        n = min(len(r) for r in runs)
        means = [sum(r[e] for r in runs) / len(runs) for e in range(n)]
        lines.append(f"| {METHOD_LABELS[method]} | {n} | " + " ".join(f"{v:.3f}" for v in means) + " |")
    return lines


def _init_note(cfg: dict) -> list[str]:
    init = cfg.get("init", "scratch")  # results written before the option: from scratch
    if init == "scratch":
        return []
    grid = cfg.get("finetune_grid")
    weights = ", ".join(f"{v:g}" for v in grid) if grid else "the data set's grid (given with each table)"
    how = (f"fine-tuned from the selected Vanilla model of the same seed (its weights, a fresh Adam at lr "
           f"{cfg['finetune_lr']:g}, {cfg['finetune_epochs']} epochs; regulariser weights over "
           f"{weights}, adaptive)")
    if init == "pretrained":
        return [f"Every method but Vanilla is {how}.", ""]
    return [f"Each data set shows the methods trained from scratch, then beside them the same methods {how}.",
            ""]


def _side_by_side(entry: dict, tuned: dict) -> list[str]:
    """Table 1's cAUC and P@k of each method from scratch and fine-tuned from Vanilla."""
    keys = ("cauc", "precision_at_k_erattack", "precision_at_k_mse")
    grid = tuned.get("finetune_grid")
    lines = ["", "### From scratch vs fine-tuned from Vanilla", "",
             *([f"Fine-tuning weights: {', '.join(f'{v:g}' for v in grid)} (adaptive).", ""] if grid else []),
             "| method | cAUC scratch | cAUC fine-tuned | P@k ERAttack scratch | P@k ERAttack fine-tuned | "
             "P@k MSE scratch | P@k MSE fine-tuned | selected (fine-tuned) |", "|---|" + "---:|" * 6 + "---|"]
    for method in dict.fromkeys([*entry["table1"], *tuned["table1"]]):
        cells = [fmt_stat(e["table1"][method][key]) if method in e["table1"] else "–"
                 for key in keys for e in (entry, tuned)]
        chosen = tuned.get("selected", {}).get(method)
        cells.append(", ".join(f"{v:g}" for v in chosen) if chosen else "–")
        lines.append(f"| {METHOD_LABELS[method]} | " + " | ".join(cells) + " |")
    return lines + _claims(tuned, ", fine-tuned")


def render_report(results: dict, figures: dict[str, list[str]]) -> str:
    cfg = results["config"]
    lines = ["# r2et-fast reproduce", "",
             f"Explained class: {cfg['explain_target']}; {cfg['seeds']} seed(s); model selection: "
             f"{cfg['select']}; quick = {cfg['quick']}.", "", *_init_note(cfg)]
    for name, entry in results["datasets"].items():
        b = entry["budget"]
        lines += [f"## {name}", "",
                  f"k = {b['k']}; ERAttack and MSE attack: {b['steps']} {b['step_norm']}-normalised steps "
                  f"of {b['alpha']:g} in an l-inf ball of {b['eps']:g}. The *selected* column gives the "
                  "value of the method's grid parameter chosen on the validation split (per seed).", "",
                  "### Table 1", "", *_table1(entry)]
        lines += [f"\n{METHOD_LABELS[m]}: not trained — {why}" for m, why in entry.get("refused", {}).items()]
        lines += _notes(entry)
        lines += _validation(entry)
        if entry.get("pretrained"):
            lines += _side_by_side(entry, entry["pretrained"])
        lines += study_lines(entry, resamples=cfg["bootstrap_resamples"])
        if entry.get("pretrained") and entry["pretrained"].get("faithfulness"):
            lines += ["", "### Studies of the fine-tuned models",
                      *study_lines(entry["pretrained"], "####", ", fine-tuned", cfg["bootstrap_resamples"])]
        lines += ["", *[f"![{p}]({p})" for p in figures.get(name, [])], ""]
    return "\n".join(lines)
