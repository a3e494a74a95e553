"""Why BZR pair classification is hard, and how the ``bzr`` experiment's task differs (about 2 min).

Usage: ``OMP_NUM_THREADS=1 python scripts/bzr_diagnostics.py`` (CPU; needs torch_geometric).

Prints, for the shipped 163 BZR molecules (docs/reproduction/images-graphs.md, "BZR"):

1. how well one molecule's class is predicted: 5-fold cross-validated ROC AUC (4 shuffles) of an
   L2 logistic regression on summary features (atom counts per element, bond counts per type,
   degree histogram, size; atom types are not in the GCN's input) and on the flattened,
   node-order-dependent adjacency, for several activity cuts and two margin tasks;
2. the Bayes-optimal pair AUC that a single-molecule score of a given AUC allows: two independent
   molecules, equal-variance Gaussian scores, pair score P(same) = p1 p2 + (1 - p1)(1 - p2);
3. per split seed 0-4 (the experiments' graph split): the pair AUC of those logistic regressions
   fitted on the training molecules (pair score as in 2), and of the Vanilla siamese GCN trained
   with the ``bzr`` spec's settings, for the loader's default task (cut 7.0, all 163 molecules) and
   the spec's (cut 7.8, margin 0.5: 102 molecules).
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
import torch
from scipy.stats import norm

from r2et_fast.datasets.graphs import load_bzr, load_bzr_molecules, load_graph_pairs
from r2et_fast.experiments._specs import get_spec
from r2et_fast.metrics import roc_auc
from r2et_fast.train import TrainConfig, train

SEEDS = range(5)


def auc(scores, labels) -> float:
    return roc_auc(torch.as_tensor(np.asarray(scores), dtype=torch.float64), torch.as_tensor(labels).long())


def features(molecules, adjacency: torch.Tensor) -> dict[str, torch.Tensor]:
    elements = sorted({a for m in molecules for a in m.atoms})
    rows = []
    for g, mol in enumerate(molecules):
        atoms = collections.Counter(mol.atoms)
        bonds = collections.Counter(b[2] for b in mol.bonds)
        degree = torch.bincount((adjacency[g] > 0).sum(1).long(), minlength=6)[:6].tolist()
        rows.append([atoms[e] for e in elements] + [bonds[t] for t in (1, 2, 3, 4)] + degree + [mol.n_atoms])
    return {"summary": torch.tensor(rows, dtype=torch.float64),
            "flat_adj": adjacency.reshape(len(adjacency), -1).double()}


def fit_logreg(x: torch.Tensor, y: torch.Tensor, l2: float):
    """L2 logistic regression on standardised columns; returns x -> P(class 1)."""
    mu, sd = x.mean(0), x.std(0) + 1e-9

    def design(q):
        return torch.cat([(q - mu) / sd, torch.ones(len(q), 1, dtype=q.dtype)], 1)

    w = torch.zeros(x.shape[1] + 1, dtype=x.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=300)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(design(x) @ w, y.double())
        loss = loss + l2 * (w[:-1] ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return lambda q: torch.sigmoid(design(q) @ w).detach()


def cv_auc(x: torch.Tensor, y: torch.Tensor, l2: float, folds: int = 5, shuffles: int = 4) -> float:
    out = []
    for rep in range(shuffles):
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(rep))
        score = torch.zeros(len(x), dtype=x.dtype)
        for f in range(folds):
            test = perm[f::folds]
            mask = torch.ones(len(x), dtype=torch.bool)
            mask[test] = False
            score[test] = fit_logreg(x[mask], y[mask], l2)(x[test])
        out.append(auc(score, y))
    return float(np.mean(out))


def bayes_pair_auc(graph_auc: float, p_active: float, n: int = 200_000) -> float:
    rng = np.random.default_rng(0)
    d = np.sqrt(2) * norm.ppf(graph_auc)
    y1, y2 = rng.random(n) < p_active, rng.random(n) < p_active
    s1, s2 = rng.normal(d * y1, 1), rng.normal(d * y2, 1)

    def posterior(s):
        a, b = p_active * norm.pdf(s, d), (1 - p_active) * norm.pdf(s, 0)
        return a / (a + b)

    p1, p2 = posterior(s1), posterior(s2)
    return auc(p1 * p2 + (1 - p1) * (1 - p2), (y1 == y2).astype(int))


def main() -> None:
    torch.manual_seed(0)
    molecules = load_bzr_molecules()
    adjacency, _ = load_bzr()
    pic50 = torch.tensor([float(m.properties["ACTIVITY"]) for m in molecules], dtype=torch.float64)
    feats = features(molecules, adjacency)
    print(f"1. single-molecule class, 5-fold CV AUC of logistic regression (median pIC50 "
          f"{float(pic50.median())})")
    tasks = [(cut, 0.0) for cut in (6.5, 7.0, 7.5, 7.8, 8.0, 8.3)] + [(7.0, 0.5), (7.8, 0.5)]
    for cut, margin in tasks:
        keep = (pic50 < cut - margin) | (pic50 >= cut + margin)
        y = (pic50[keep] >= cut + margin).long()
        print(f"   cut {cut} margin {margin}: {int(keep.sum())} molecules, {int(y.sum())} active; "
              f"summary {cv_auc(feats['summary'][keep], y, 1e-2):.3f}, "
              f"flat adjacency {cv_auc(feats['flat_adj'][keep], y, 1e-1):.3f}", flush=True)
    print("2. Bayes-optimal pair AUC from a single-molecule score of a given AUC")
    for graph_auc, p_active in ((0.72, 121 / 163), (0.8, 0.5), (0.85, 48 / 102), (0.9, 0.5)):
        print(f"   graph AUC {graph_auc}, P(active) {p_active:.2f}: pair AUC "
              f"{bayes_pair_auc(graph_auc, p_active):.3f}")
    spec = get_spec("bzr")
    tasks3: dict[str, dict[str, Any]] = {"cut 7.0, all 163 (loader default)": {},
              "cut 7.8, margin 0.5 (bzr spec)": {"activity_cut": 7.8, "margin": 0.5}}
    print("3. pair AUC per split seed (val / test), 600 training pairs")
    for name, kw in tasks3.items():
        margin = kw.get("margin", 0.0)
        cut = kw.get("activity_cut", 7.0)
        keep = (pic50 < cut - margin) | (pic50 >= cut + margin)
        y_all = (pic50 >= cut + margin).long()
        rows: dict[str, list[list[float]]] = collections.defaultdict(list)
        for seed in SEEDS:
            split, _ = load_graph_pairs("bzr", n_pairs=600, seed=seed, **kw)
            index = keep.nonzero().squeeze(1)  # split graph ids -> molecule ids
            for fname in ("summary", "flat_adj"):
                x = feats[fname][index]
                p = fit_logreg(x[split.graphs_train], y_all[index][split.graphs_train], 1e-2)(x)
                rows[f"logreg {fname}"].append([
                    auc(p[pr[:, 0]] * p[pr[:, 1]] + (1 - p[pr[:, 0]]) * (1 - p[pr[:, 1]]), yy)
                    for pr, yy in ((split.pairs_val, split.y_val), (split.pairs_test, split.y_test))])
            cfg = TrainConfig(method="vanilla", arch=spec.arch, seed=seed, device="cpu", **spec.train)
            model = train(split, cfg, progress=False).model.eval()
            with torch.no_grad():
                rows["GCN (spec training)"].append(
                    [auc((lambda z: z[:, 1] - z[:, 0])(model(xx)), yy)
                     for xx, yy in ((split.x_train, split.y_train), (split.x_val, split.y_val),
                                    (split.x_test, split.y_test))])
        print(f"   {name}:")
        for method, r in rows.items():
            arr = np.array(r)
            cols = "train/val/test" if arr.shape[1] == 3 else "val/test"
            print(f"     {method}: mean {cols} {arr.mean(0).round(3).tolist()}; "
                  f"val per seed {arr[:, -2].round(3).tolist()}, test {arr[:, -1].round(3).tolist()}",
                  flush=True)


if __name__ == "__main__":
    main()
