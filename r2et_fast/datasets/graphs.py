"""Graph data for the siamese GCN (docs/spec.md §8, §9): weighted graphs → balanced pairs of upper
triangles.

Sources
-------
* :func:`make_connectomes`: seeded synthetic brain-like networks (the default, offline).
* :func:`load_bzr`: the shipped ``bzr.sdf.gz`` (163 benzodiazepine-receptor ligands, SHA-256
  checked), parsed by a small V2000 SDF reader (no RDKit). Bonds become weights
  ``order / 3`` (single 1/3, double 2/3, triple 1, aromatic 1.5/3 = 0.5); hydrogens are implicit in
  the file and are not nodes; molecules are padded with isolated nodes to the largest one (29
  atoms). Label 1 = active, ``ACTIVITY`` (pIC50) >= ``activity_cut`` (7.0: 121 actives, 42 inactives);
  ``margin`` leaves out the molecules within it of the cut (the ``bzr`` experiment: 7.8 +- 0.5,
  102 molecules, 48 active).
* :func:`load_brain_networks`: the ``.mat`` layout of the BP/HIV/PPMI/ADHD brain-network studies,
  or a plain ``.npz`` with ``adjacency`` (G, N, N) and ``labels`` (G,).

Every source gives ``(adjacency, labels)``: float weights ``(G, N, N)`` in ``[0, 1]``, symmetric
with a zero diagonal, and integer class ids ``(G,)``. :func:`graph_pairs` splits the *graphs*
(stratified and seeded by :func:`~r2et_fast.datasets.split.stratified_split`, the splitter of every
data set) into train / validation / test and draws balanced pairs inside each split, so no graph of
a test pair was seen in training. A pair is one input ``x`` of shape ``(2, m)``, ``m = N(N-1)/2``:
the strict upper triangles (:mod:`r2et_fast.graph_encoding`) of the two adjacencies, as
:class:`r2et_fast.models.gcn.SiameseGCN` expects; its label is 1 if the two graphs have the same
class.

The sources live in private modules (``_connectomes``, ``_sdf``, ``_brain``); this module
re-exports them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from r2et_fast._validation import as_tensor, check_float_dtype, check_int
from r2et_fast.datasets._brain import ADJACENCY_KEYS, LABEL_KEYS, load_brain_networks
from r2et_fast.datasets._connectomes import make_connectomes
from r2et_fast.datasets._sdf import (
    BOND_WEIGHTS,
    Molecule,
    load_bzr,
    load_bzr_molecules,
    molecules_to_adjacency,
    parse_sdf,
)
from r2et_fast.datasets.split import Split, check_split_fractions, round_half_up, stratified_split
from r2et_fast.graph_encoding import adjacency_to_triangle, triangle_size

__all__ = ["ADJACENCY_KEYS", "BOND_WEIGHTS", "GRAPH_DATASETS", "LABEL_KEYS", "GraphPairSplit", "Molecule",
           "graph_pairs", "load_brain_networks", "load_bzr", "load_bzr_molecules", "load_graph_pairs",
           "make_connectomes", "molecules_to_adjacency", "parse_sdf"]

GRAPH_DATASETS = ("connectomes", "bzr", "brain")


@dataclass(frozen=True)
class GraphPairSplit(Split):
    """Balanced graph pairs split by graph. ``x_*`` have shape ``(P, 2, m)``; ``y_*`` is 1 for a
    same-class pair. ``pairs_*`` ``(P, 2)`` index the input graphs of each pair and ``graphs_*`` the
    graphs of each split (disjoint, in the splitter's shuffled order). ``n_features`` is the
    flattened length ``2m``."""

    n_nodes: int
    pairs_train: torch.Tensor
    pairs_val: torch.Tensor
    pairs_test: torch.Tensor
    graphs_train: torch.Tensor
    graphs_val: torch.Tensor
    graphs_test: torch.Tensor

    @property
    def n_features(self) -> int:
        return 2 * triangle_size(self.n_nodes)


def _draw_pairs(graphs: torch.Tensor, labels: torch.Tensor, n_pairs: int, gen: torch.Generator,
                split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_pairs`` pairs of distinct graphs (drawn with replacement): ``n_pairs // 2`` same-class
    pairs uniform over all same-class pairs, the rest different-class pairs uniform over those;
    the order inside a pair is random, the pairs are shuffled."""
    if n_pairs == 0:
        return torch.zeros(0, 2, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    n_same = n_pairs // 2
    n_diff = n_pairs - n_same
    lab = labels[graphs]
    classes = torch.unique(lab)
    members = [graphs[lab == c] for c in classes]
    sizes = torch.tensor([len(m) for m in members], dtype=torch.float64)
    same_weight = sizes * (sizes - 1) / 2
    if n_same and same_weight.sum() == 0:
        raise ValueError(f"the {split} split has no class with two graphs, so no same-class pair can be "
                         f"drawn; give it more graphs (adjust the fractions)")
    if len(classes) < 2:
        raise ValueError(f"the {split} split holds graphs of a single class, so no different-class pair "
                         f"can be drawn; give it more graphs (adjust the fractions)")
    pairs = []
    if n_same:
        cls = torch.multinomial(same_weight, n_same, replacement=True, generator=gen)
        for ci, mem in enumerate(members):
            k = int((cls == ci).sum())
            if not k:
                continue
            i = torch.randint(len(mem), (k,), generator=gen)
            j = torch.randint(len(mem) - 1, (k,), generator=gen)
            j = j + (j >= i).long()
            pairs.append(torch.stack([mem[i], mem[j]], 1))
    first_weight = torch.cat([torch.full((len(m),), float(len(graphs) - len(m)), dtype=torch.float64)
                              for m in members])
    ordered = torch.cat(members)
    first = torch.multinomial(first_weight, n_diff, replacement=True, generator=gen)
    offsets = np.cumsum([0] + [len(m) for m in members])
    for ci in range(len(members)):
        chosen = first[(first >= int(offsets[ci])) & (first < int(offsets[ci + 1]))]
        if not len(chosen):
            continue
        others = torch.cat([m for cj, m in enumerate(members) if cj != ci])
        second = others[torch.randint(len(others), (len(chosen),), generator=gen)]
        pairs.append(torch.stack([ordered[chosen], second], 1))
    pairs_t = torch.cat(pairs)
    y = (labels[pairs_t[:, 0]] == labels[pairs_t[:, 1]]).long()
    swap = torch.randint(2, (len(pairs_t),), generator=gen).bool()
    pairs_t = torch.where(swap.unsqueeze(1), pairs_t.flip(1), pairs_t)
    perm = torch.randperm(len(pairs_t), generator=gen)
    return pairs_t[perm], y[perm]


def graph_pairs(adjacency: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray,
                n_pairs: int = 1000, seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.2,
                n_eval_pairs: int | None = None, dtype: torch.dtype = torch.float32) -> GraphPairSplit:
    """Split graphs into train/validation/test, then draw balanced pairs inside each split.

    Args:
        adjacency: ``(G, N, N)`` symmetric weights in [0, 1] (only the upper triangle is used).
        labels: ``(G,)`` integer class ids (two or more classes).
        n_pairs: training pairs, half same-class (label 1) and half different-class (label 0; the
            extra one when odd). Pairs are drawn with replacement, never a graph with itself.
        seed: seeds the stratified graph split and the pair draws (same seed, same tensors).
        val_fraction, test_fraction: share of each class's graphs in validation / test, each in
            [0, 1) (:func:`~r2et_fast.datasets.split.stratified_split`: every class needs at least
            one graph in train and in every split with a positive fraction).
        n_eval_pairs: pairs in each of validation and test; default proportional to the split
            sizes, ``n_pairs * fraction / (1 - val_fraction - test_fraction)`` rounded half up (at
            least 2), 0 for an empty split (a zero fraction).
        dtype: floating dtype of the ``x_*`` tensors.
    """
    adjacency = as_tensor(adjacency, "adjacency")
    labels = as_tensor(labels, "labels")
    if adjacency.dim() != 3 or adjacency.shape[1] != adjacency.shape[2] or adjacency.shape[1] < 2:
        raise ValueError(f"adjacency must have shape (G, N, N) with N >= 2, got {tuple(adjacency.shape)}")
    if not adjacency.is_floating_point():
        raise ValueError(f"adjacency must be a floating-point tensor, got dtype {adjacency.dtype}")
    if not bool(torch.isfinite(adjacency).all()):
        raise ValueError("adjacency contains NaN or Inf values")
    if bool((adjacency < 0).any()) or bool((adjacency > 1).any()):
        raise ValueError(f"adjacency weights must lie in [0, 1], got range [{float(adjacency.min())}, "
                         f"{float(adjacency.max())}]")
    if not torch.allclose(adjacency, adjacency.transpose(1, 2), atol=1e-6, rtol=0):
        raise ValueError("adjacency must be symmetric (only its upper triangle is used); symmetrise it "
                         "first, e.g. (A + A^T) / 2")
    if labels.dim() != 1 or labels.shape[0] != adjacency.shape[0]:
        raise ValueError(f"labels must have shape ({adjacency.shape[0]},) to match adjacency, got "
                         f"{tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    labels = labels.long()
    if len(torch.unique(labels)) < 2:
        raise ValueError("labels must hold at least two classes (pairs need a different-class kind)")
    n_pairs = check_int(n_pairs, "n_pairs", 2)
    seed = check_int(seed, "seed", 0)
    val_fraction, test_fraction = check_split_fractions(val_fraction, test_fraction, allow_zero=True)
    if n_eval_pairs is not None:
        n_eval_pairs = check_int(n_eval_pairs, "n_eval_pairs", 0)
    dtype = check_float_dtype(dtype)

    gen = torch.Generator().manual_seed(seed)
    splits = stratified_split(labels, val_fraction, test_fraction, gen)
    train_fraction = 1.0 - val_fraction - test_fraction
    counts = [n_pairs]
    for frac, graphs in zip((val_fraction, test_fraction), splits[1:]):
        if len(graphs) == 0:
            counts.append(0)
        elif n_eval_pairs is not None:
            counts.append(n_eval_pairs)
        else:
            counts.append(max(2, round_half_up(n_pairs * frac / train_fraction)))
    triu = adjacency_to_triangle(adjacency.detach()).to(dtype)
    out: dict[str, torch.Tensor] = {}
    for name, graphs, count in zip(("train", "val", "test"), splits, counts):
        pairs, y = _draw_pairs(graphs, labels, count, gen, name)
        out[f"x_{name}"] = triu[pairs]
        out[f"y_{name}"] = y
        out[f"pairs_{name}"] = pairs
        out[f"graphs_{name}"] = graphs
    return GraphPairSplit(n_nodes=adjacency.shape[1], **out)


def load_graph_pairs(name: str, n_pairs: int = 1000, seed: int = 0,
                     path: str | os.PathLike[str] | None = None, val_fraction: float = 0.2,
                     test_fraction: float = 0.2, n_eval_pairs: int | None = None,
                     dtype: torch.dtype = torch.float32, **loader_kwargs: Any) -> tuple[GraphPairSplit, int]:
    """Graph pairs of a named source: ``"connectomes"`` (synthetic, :func:`make_connectomes` with
    ``seed``), ``"bzr"`` (:func:`load_bzr`) or ``"brain"`` (:func:`load_brain_networks`, ``path``
    required). ``loader_kwargs`` go to that function; the rest to :func:`graph_pairs`.

    Returns ``(split, n_nodes)``."""
    if name not in GRAPH_DATASETS:
        raise ValueError(f"name must be one of {GRAPH_DATASETS}, got {name!r}")
    if name == "brain":
        if path is None:
            raise ValueError("path is required for name='brain' (a .mat or .npz brain-network file)")
        adjacency, labels = load_brain_networks(path, **loader_kwargs)
    else:
        if path is not None:
            raise ValueError(f"path is only used with name='brain', got path={path!r} for {name!r}")
        if name == "connectomes":
            adjacency, labels = make_connectomes(seed=seed, **loader_kwargs)
        else:
            adjacency, labels = load_bzr(**loader_kwargs)
    split = graph_pairs(adjacency, labels, n_pairs=n_pairs, seed=seed, val_fraction=val_fraction,
                        test_fraction=test_fraction, n_eval_pairs=n_eval_pairs, dtype=dtype)
    return split, split.n_nodes
