"""`r2et-fast certify --sound`: the sound top-k certificate of a saved model's test samples, its
certified and attacked P@k curves and the comparison with the first-order certificate
(docs/spec.md §7)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from r2et_fast._io import save_json
from r2et_fast.cli._data import check_fits, check_k, dataset_of, load, load_saved
from r2et_fast.experiments._report import _plt, _save
from r2et_fast.experiments._sound_eval import SoundBudget, sound_evaluate
from r2et_fast.train import METHOD_LABELS

DEFAULT_BUDGET = SoundBudget()


def curves_figure(record: dict, path: Path, title: str) -> str:
    """PNG of the certified (sound) P@k curve, the attacked P@k and the first-order share over eps."""
    plt = _plt()
    s = record["summary"]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(s["eps"], s["sound_certified_pak"], "o-", label="certified P@k (sound)")
    if "attacked_pak" in s:
        ax.plot(s["eps"], s["attacked_pak"], "s--", label="attacked P@k (upper bound)")
    ax.plot(s["eps"], s["first_order_certified_share"], "^:", label="first-order: share eps < radius")
    ax.set(xlabel="eps", ylabel=f"P@{s['k']}", ylim=(-0.03, 1.03), title=title)
    ax.legend(fontsize=7)
    return _save(fig, path, dpi=100)


def _fmt(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.4g}"


def markdown(record: dict, title: str, how: str) -> str:
    s = record["summary"]
    attacked = "attacked_pak" in s
    head = "| eps | certified P@k (sound) | T_k certified (sound) | first-order: eps < radius |"
    head += " attacked P@k |" if attacked else ""
    rows = [head, "|" + "---|" * (5 if attacked else 4)]
    for i, e in enumerate(s["eps"]):
        row = (f"| {e:g} | {s['sound_certified_pak'][i]:.3f} | {s['sound_topk_certified_share'][i]:.3f} | "
               f"{s['first_order_certified_share'][i]:.3f} |")
        rows.append(row + (f" {s['attacked_pak'][i]:.3f} |" if attacked else ""))
    lines = [f"# Sound top-k certificate: {title}", "", how, "",
             f"Median sound radius {_fmt(s['median_sound_radius'])}; median first-order radius "
             f"{_fmt(s['median_first_order_radius'])}.", "", *rows, ""]
    if attacked:
        lines += [f"Attacked inside the sound radius: {s['sound_broken']} of {s['sound_attacked']} samples "
                  f"broken ({s['sound_trials']} attack trials). Attacked at the first-order radius: "
                  f"{s['first_order_broken']} of {s['first_order_attacked']} samples broken "
                  f"({s['first_order_trials']} trials). Certified P@k above the attacked P@k: "
                  f"{s['bound_above_attack']} (sample, eps) cases.", ""]
    lines += [f"Note: {n}." for n in record["notes"]]
    return "\n".join(lines)


def certify_sound_saved(model_path: str | Path, *, dataset: str | None = None,
                        eps: Sequence[float] = (0.01, 0.05), norm: str = "linf", method: str = "saliency",
                        score: str = "logit", k: int | None = None, n_samples: int = 50,
                        out: str | Path = "runs/certify", budget: SoundBudget = DEFAULT_BUDGET,
                        attack: bool = True, eps_max: float = 1.0, data_seed: int = 0) -> dict:
    """The sound certificate of the first ``n_samples`` test samples (see :func:`sound_evaluate`).

    Writes ``<out>/sound_<norm>_<method>.json``, ``.md`` and ``.png``; returns the JSON payload.
    """
    path = str(model_path)
    model, tcfg, meta = load_saved(path)
    data = load(dataset_of(path, meta, dataset), seed=data_seed, arch=tcfg.arch)
    check_fits(path, meta, data)
    lower, upper = data.box()
    x = data.split.x_test[:n_samples]
    k = k if k is not None else data.spec.k
    check_k(k, data)
    record = sound_evaluate(model.eval(), x, eps, norm, k, score=score, method=method, budget=budget,
                            lower=lower, upper=upper, eps_max=eps_max, attack=attack)
    out = Path(out)
    stem = f"sound_{norm}_{method}"
    title = f"{METHOD_LABELS[tcfg.method]} on {data.label}, {method} ({score}), {norm}"
    figure = curves_figure(record, out / f"{stem}.png", title)
    how = (f"Model `{path}`; first {len(x)} test samples; k = {k}; sound bounds by interval propagation "
           f"(eps_max {eps_max:g}); " + (f"attacks: ERAttack, top-k, PGD on attributions, {budget.restarts} "
                                        f"random starts x {budget.steps} steps each, no label constraint."
                                        if attack else "no attacks."))
    payload = {"model": path, "dataset": data.name, "train_method": tcfg.method, "norm": norm,
               "method": method, "score": score, "k": k, "n_samples": len(x), **record,
               "files": {"json": f"{stem}.json", "markdown": f"{stem}.md", "figure": figure}}
    save_json(out / f"{stem}.json", payload)
    text = markdown(record, title, how)
    (out / f"{stem}.md").write_text(text + f"\n\n![curves]({figure})\n")
    payload["table"] = text
    return payload
