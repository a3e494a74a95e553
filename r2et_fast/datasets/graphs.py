"""Graph data for the siamese GCN (SPEC §8-§9): weighted graphs → balanced pairs of upper triangles.

Sources
-------
* :func:`make_connectomes`: seeded synthetic brain-like networks (the default, offline).
* :func:`load_bzr`: the shipped ``bzr.sdf.gz`` (163 benzodiazepine-receptor ligands, SHA-256
  checked), parsed by a small V2000 SDF reader (no RDKit). Bonds become weights
  ``order / 3`` (single 1/3, double 2/3, triple 1, aromatic 1.5/3 = 0.5); hydrogens are implicit in
  the file and are not nodes; molecules are padded with isolated nodes to the largest one (29
  atoms). Label 1 = active, ``ACTIVITY`` (pIC50) >= ``activity_cut`` (7.0: 121 actives, 42 inactives).
* :func:`load_brain_networks`: the ``.mat`` layout of the BP/HIV/PPMI/ADHD brain-network studies,
  or a plain ``.npz`` with ``adjacency`` (G, N, N) and ``labels`` (G,).

Every source gives ``(adjacency, labels)``: float weights ``(G, N, N)`` in ``[0, 1]``, symmetric with a
zero diagonal, and integer class ids ``(G,)``. :func:`graph_pairs` splits the *graphs*
(stratified, seeded) into train / validation / test and draws balanced pairs inside each split, so no
graph of a test pair was seen in training. A pair is one input ``x`` of shape ``(2, m)``,
``m = N(N-1)/2``: the strict upper triangles (``torch.triu_indices(N, N, 1)`` order) of the two
adjacencies, as :class:`r2et_fast.models.gcn.SiameseGCN` expects; its label is 1 if the two graphs
have the same class.
"""

from __future__ import annotations

import gzip
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from r2et_fast.datasets._integrity import read_verified
from r2et_fast.datasets.synthetic import Split
from r2et_fast.models.gcn import adjacency_to_triu

GRAPH_DATASETS = ("connectomes", "bzr", "brain")

#: Edge weight of each V2000 bond type: order / 3 (aromatic counts as 1.5).
BOND_WEIGHTS = {1: 1.0 / 3.0, 2: 2.0 / 3.0, 3: 1.0, 4: 0.5}


# ---- argument checks ------------------------------------------------------------------------------

def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def _check_fraction(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def _check_dtype(dtype: object) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    return dtype


def _sym(a: torch.Tensor) -> torch.Tensor:
    """Symmetric matrices with zero diagonal from the strict upper triangle of ``a``."""
    u = torch.triu(a, 1)
    return u + u.transpose(-1, -2)


# ---- synthetic connectomes --------------------------------------------------------------------------

def make_connectomes(n_graphs: int = 200, n_nodes: int = 82, n_communities: int = 6, seed: int = 0,
                     signal: float = 0.12, dtype: torch.dtype = torch.float32
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded synthetic connectomes: community-structured weighted graphs whose class changes a few
    blocks of connections.

    Nodes are split into ``n_communities`` contiguous communities (like brain systems; 82 nodes as
    in BP). A population template has strong intra-community blocks (mean weight 0.45-0.65), weak
    inter-community blocks (0.10-0.25) and a fixed edge-level pattern. Class 1 strengthens two
    inter-community blocks by ``signal`` and weakens one intra-community block by ``signal`` (which
    blocks is drawn from the seed). Each subject adds its own block-level offsets (sd 0.06), a global
    scale (sd 5 %) and edge noise (sd 0.08), so the class is learnable but not trivially: with the
    defaults a :class:`~r2et_fast.models.gcn.SiameseGCN` (identity features) reaches about 80-90 %
    held-out pair accuracy after ~10 epochs of Adam on 600 pairs (60-70 % at ``signal=0.1``, ~100 % at
    0.2). Weights are clipped to [0, 1],
    symmetric, with a zero diagonal. The classes are balanced (``n_graphs // 2`` of class 1).

    Returns ``(adjacency (G, N, N) dtype, labels (G,) int64)``; the same seed gives the same graphs
    on every machine.
    """
    g_count = _check_int("n_graphs", n_graphs, 2)
    n = _check_int("n_nodes", n_nodes, 4)
    k = _check_int("n_communities", n_communities, 2)
    if k > n // 2:
        raise ValueError(f"n_communities must be at most n_nodes // 2 = {n // 2}, got {k}")
    seed = _check_int("seed", seed, 0)
    if isinstance(signal, bool) or not isinstance(signal, numbers.Real) or not 0 <= signal <= 1:
        raise ValueError(f"signal must be a number in [0, 1], got {signal!r}")
    dtype = _check_dtype(dtype)

    gen = torch.Generator().manual_seed(seed)
    f64 = torch.float64

    def uniform(*shape):
        return torch.rand(*shape, generator=gen, dtype=f64)

    def normal(*shape):
        return torch.randn(*shape, generator=gen, dtype=f64)

    comm = torch.arange(n) * k // n
    blocks = _sym(0.10 + 0.15 * uniform(k, k)) + torch.diag(0.45 + 0.20 * uniform(k))
    template = blocks[comm][:, comm] + _sym(0.05 * normal(n, n))

    inter = torch.triu_indices(k, k, 1)
    chosen = inter[:, torch.randperm(inter.shape[1], generator=gen)[:2]]
    effect = torch.zeros(k, k, dtype=f64)
    effect[chosen[0], chosen[1]] = signal
    effect[chosen[1], chosen[0]] = signal
    weakened = int(torch.randint(k, (1,), generator=gen))
    effect[weakened, weakened] = -signal
    effect = effect[comm][:, comm]

    labels = torch.zeros(g_count, dtype=torch.long)
    labels[torch.randperm(g_count, generator=gen)[: g_count // 2]] = 1
    offsets = _sym(0.06 * normal(g_count, k, k)) + torch.diag_embed(0.06 * normal(g_count, k))
    offsets = offsets[:, comm][:, :, comm]
    scale = 1.0 + 0.05 * normal(g_count, 1, 1)
    noise = _sym(0.08 * normal(g_count, n, n))
    adj = (scale * (template + labels.view(-1, 1, 1).to(f64) * effect + offsets) + noise).clamp(0.0, 1.0)
    adj = adj * (1.0 - torch.eye(n, dtype=f64))
    return adj.to(dtype), labels


# ---- SDF (V2000) ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Molecule:
    """One SDF record: atom symbols, bonds ``(i, j, type)`` with 0-based atoms, and data fields."""

    name: str
    atoms: tuple[str, ...]
    bonds: tuple[tuple[int, int, int], ...]
    properties: dict[str, str]

    @property
    def n_atoms(self) -> int:
        return len(self.atoms)


def _parse_record(lines: list[str], start: int, index: int, source: str) -> Molecule:
    def fail(offset: int, problem: str) -> ValueError:
        return ValueError(f"{source}: record {index + 1} (line {start + offset + 1}): {problem}")

    if len(lines) < 4:
        raise fail(0, f"truncated molfile header ({len(lines)} lines, need 4)")
    name = lines[0].strip()
    counts = lines[3]
    if "V3000" in counts:
        raise fail(3, "V3000 molfiles are not supported (only V2000)")
    try:
        n_atoms, n_bonds = int(counts[0:3]), int(counts[3:6])
    except ValueError:
        raise fail(3, f"bad counts line {counts!r} (expected atom and bond counts in columns 1-6)") from None
    if n_atoms < 1 or n_bonds < 0:
        raise fail(3, f"bad counts line {counts!r}: {n_atoms} atoms, {n_bonds} bonds")
    if len(lines) < 4 + n_atoms + n_bonds:
        raise fail(len(lines), f"truncated: the counts line announces {n_atoms} atoms and {n_bonds} bonds")
    atoms = []
    for a in range(n_atoms):
        line = lines[4 + a]
        symbol = line[31:34].strip()
        if not symbol or not symbol[0].isalpha():
            raise fail(4 + a, f"atom {a + 1}: no element symbol in columns 32-34 of {line!r}")
        atoms.append(symbol)
    bonds = []
    seen = set()
    for b in range(n_bonds):
        off = 4 + n_atoms + b
        line = lines[off]
        try:
            i, j, kind = int(line[0:3]), int(line[3:6]), int(line[6:9])
        except ValueError:
            raise fail(off, f"bond {b + 1}: bad bond line {line!r}") from None
        if not (1 <= i <= n_atoms and 1 <= j <= n_atoms) or i == j:
            raise fail(off, f"bond {b + 1}: atoms ({i}, {j}) out of range 1..{n_atoms} or a self-bond")
        if kind not in BOND_WEIGHTS:
            raise fail(off, f"bond {b + 1}: bond type {kind} not supported (1-3 single/double/triple, "
                            "4 aromatic; query bond types 5-8 are not)")
        key = (min(i, j), max(i, j))
        if key in seen:
            raise fail(off, f"bond {b + 1}: duplicate bond between atoms {i} and {j}")
        seen.add(key)
        bonds.append((i - 1, j - 1, kind))
    rest = lines[4 + n_atoms + n_bonds:]
    end = next((p for p, line in enumerate(rest) if line.startswith("M  END")), None)
    if end is None:
        raise fail(4 + n_atoms + n_bonds, "no 'M  END' line after the bond block")
    properties: dict[str, str] = {}
    p = end + 1
    while p < len(rest):
        line = rest[p]
        if line.startswith(">"):
            lo, hi = line.find("<"), line.find(">", line.find("<") + 1)
            if lo < 0 or hi < 0:
                raise fail(4 + n_atoms + n_bonds + p, f"bad data header {line!r} (expected '> <NAME>')")
            field = line[lo + 1:hi]
            values = []
            p += 1
            while p < len(rest) and rest[p].strip():
                values.append(rest[p].strip())
                p += 1
            properties[field] = "\n".join(values)
        p += 1
    return Molecule(name, tuple(atoms), tuple(bonds), properties)


def parse_sdf(text: str, source: str = "<sdf>") -> list[Molecule]:
    """Parse V2000 SDF text (records ending in ``$$$$``) into :class:`Molecule` objects.

    Errors are ``ValueError`` naming ``source``, the record and the line."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    molecules: list[Molecule] = []
    record: list[str] = []
    start = 0
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if line.strip() == "$$$$":
            molecules.append(_parse_record(record, start, len(molecules), source))
            record, start = [], number + 1
        else:
            record.append(line)
    if any(line.strip() for line in record):
        raise ValueError(f"{source}: record {len(molecules) + 1} (line {start + 1}) is not terminated "
                         "by '$$$$' (truncated file?)")
    if not molecules:
        raise ValueError(f"{source}: no SDF records found")
    return molecules


def molecules_to_adjacency(molecules: list[Molecule], n_nodes: int | None = None,
                           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Weighted adjacencies ``(G, N, N)`` of molecules (weights :data:`BOND_WEIGHTS`), padded with
    isolated nodes to ``n_nodes`` (default: the largest molecule)."""
    dtype = _check_dtype(dtype)
    largest = max(m.n_atoms for m in molecules)
    n = largest if n_nodes is None else _check_int("n_nodes", n_nodes, 2)
    if n < largest:
        raise ValueError(f"n_nodes must be at least the largest molecule's atom count {largest}, got {n}")
    adj = torch.zeros(len(molecules), n, n, dtype=torch.float64)
    for g, mol in enumerate(molecules):
        for i, j, kind in mol.bonds:
            adj[g, i, j] = adj[g, j, i] = BOND_WEIGHTS[kind]
    return adj.to(dtype)


def load_bzr(activity_cut: float = 7.0, n_nodes: int | None = None, dtype: torch.dtype = torch.float32,
             data_dir: str | os.PathLike[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The BZR ligands as weighted graphs: ``(adjacency (163, N, N), labels (163,))``.

    Label 1 = active (``ACTIVITY`` pIC50 >= ``activity_cut``; 121 molecules at 7.0), 0 = inactive
    (42). ``N`` = 29 (the largest molecule; molecules have 13-29 heavy atoms) unless ``n_nodes`` is
    larger. The file's SHA-256 is checked before parsing."""
    if isinstance(activity_cut, bool) or not isinstance(activity_cut, numbers.Real) \
            or not math.isfinite(activity_cut):
        raise ValueError(f"activity_cut must be a finite number, got {activity_cut!r}")
    molecules = load_bzr_molecules(data_dir)
    activity = []
    for g, mol in enumerate(molecules):
        raw = mol.properties.get("ACTIVITY")
        try:
            activity.append(float(raw))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"bzr.sdf.gz: molecule {g + 1} ({mol.name!r}) has no numeric ACTIVITY field "
                             f"(got {raw!r})") from None
    labels = (torch.tensor(activity, dtype=torch.float64) >= float(activity_cut)).to(torch.long)
    return molecules_to_adjacency(molecules, n_nodes, dtype), labels


def load_bzr_molecules(data_dir: str | os.PathLike[str] | None = None) -> list[Molecule]:
    """The parsed records of the shipped ``bzr.sdf.gz`` (SHA-256 checked)."""
    data = read_verified("bzr.sdf.gz", data_dir)
    try:
        text = gzip.decompress(data).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ValueError(f"bzr.sdf.gz: cannot decompress/decode: {exc}") from None
    return parse_sdf(text, "bzr.sdf.gz")


# ---- brain networks (.mat / .npz) -------------------------------------------------------------------

ADJACENCY_KEYS = ("adjacency", "adj", "dti", "fmri", "X", "A", "net", "networks", "connectivity")
LABEL_KEYS = ("labels", "label", "y", "Y")


def _read_arrays(path: Path) -> dict[str, Any]:
    suffix = path.suffix.lower()
    if suffix == ".mat":
        try:
            import scipy.io
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("reading .mat files needs scipy: pip install scipy") from exc
        try:
            data = scipy.io.loadmat(str(path))
        except NotImplementedError as exc:  # MATLAB v7.3 (HDF5)
            raise ValueError(f"{path}: MATLAB v7.3 (HDF5) files are not supported ({exc}); "
                             "save it with -v7 or convert it to .npz (adjacency, labels)") from None
        except Exception as exc:  # scipy raises several kinds on a malformed file
            raise ValueError(f"{path}: cannot read as a MATLAB .mat file: {exc}") from None
        return {k: v for k, v in data.items() if not k.startswith("__")}
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except Exception as exc:  # zipfile / pickle / format errors
            raise ValueError(f"{path}: cannot read as a .npz archive: {exc}") from None
    raise ValueError(f"{path}: unsupported file type {suffix!r}; expected .mat or .npz")


def _pick(arrays: dict[str, Any], key: str | None, candidates: tuple[str, ...], what: str,
          path: Path) -> tuple[str, Any]:
    if key is not None:
        if key not in arrays:
            raise ValueError(f"{path}: no {what} key {key!r}; keys found: {sorted(arrays)}")
        return key, arrays[key]
    for cand in candidates:
        if cand in arrays:
            return cand, arrays[cand]
    raise ValueError(f"{path}: no {what} found (looked for {list(candidates)}); keys found: "
                     f"{sorted(arrays)}; name the key with {what.split()[0]}_key=")


def _stack_adjacency(raw: Any, key: str, path: Path, matlab: bool, view: int) -> np.ndarray:
    arr = np.asarray(raw)
    if arr.dtype == object:  # a MATLAB cell array of per-subject matrices
        cells = [np.asarray(c) for c in arr.ravel()]
        mats = []
        for g, c in enumerate(cells):
            if c.ndim == 3:
                if not 0 <= view < c.shape[2]:
                    raise ValueError(f"{path}: {key}[{g}] has {c.shape[2]} views, "
                                     f"view={view} is out of range")
                c = c[:, :, view]
            if c.ndim != 2 or c.shape[0] != c.shape[1]:
                raise ValueError(f"{path}: {key}[{g}] must be a square N x N matrix, got shape {c.shape}")
            mats.append(c)
        if len({m.shape for m in mats}) > 1:
            raise ValueError(f"{path}: the matrices in {key!r} have different shapes "
                             f"{sorted({m.shape for m in mats})}")
        if not mats:
            raise ValueError(f"{path}: {key!r} is an empty cell array")
        arr = np.stack(mats)
    elif arr.ndim == 3:
        d0, d1, d2 = arr.shape
        if matlab and d0 == d1:
            arr = np.moveaxis(arr, -1, 0)  # MATLAB layout N x N x G
        elif d1 == d2:
            pass  # G x N x N
        elif d0 == d1:
            arr = np.moveaxis(arr, -1, 0)
        else:
            raise ValueError(f"{path}: {key!r} of shape {arr.shape} holds no square matrices "
                             "(expected N x N x G or G x N x N)")
    elif arr.ndim == 2:
        raise ValueError(f"{path}: {key!r} of shape {arr.shape} is a single matrix; expected a stack of "
                         "adjacency matrices (N x N x G or G x N x N)")
    else:
        raise ValueError(f"{path}: {key!r} of shape {arr.shape} is not a stack of square matrices "
                         "(expected N x N x G or G x N x N)")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{path}: {key!r} must hold real numbers, got dtype {arr.dtype}")
    if arr.shape[1] < 2:
        raise ValueError(f"{path}: {key!r} holds {arr.shape[1]} x {arr.shape[2]} matrices; need N >= 2")
    return arr.astype(np.float64)


def _labels(raw: Any, key: str, path: Path) -> np.ndarray:
    arr = np.asarray(raw)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{path}: labels {key!r} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64).ravel()
    if not np.isfinite(arr).all():
        raise ValueError(f"{path}: labels {key!r} contain NaN or Inf")
    if not np.array_equal(arr, np.round(arr)):
        raise ValueError(f"{path}: labels {key!r} must be integer class ids (e.g. -1/1 or 0/1)")
    values, ids = np.unique(arr, return_inverse=True)
    if len(values) < 2:
        raise ValueError(f"{path}: labels {key!r} hold a single class {values.tolist()}; need at least 2")
    return ids.astype(np.int64)


def load_brain_networks(path: str | os.PathLike[str], adjacency_key: str | None = None,
                        label_key: str | None = None, view: int = 0, scale: str = "global",
                        dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Brain networks from a ``.mat`` file (the BP/HIV/PPMI/ADHD layout) or a ``.npz``.

    Adjacency: the first of :data:`ADJACENCY_KEYS` present (``"dti"`` before ``"fmri"`` for BP/HIV,
    which hold both; choose with ``adjacency_key=``), a 3-D array ``N x N x G`` (the MATLAB layout)
    or ``G x N x N``, or a cell array of ``N x N`` matrices (``N x N x V`` cells: view ``view``).
    Labels: the first of :data:`LABEL_KEYS` (or ``label_key=``), integer class ids; the sorted
    distinct values map to 0, 1, ... (so -1/+1 → 0/1, 0/1 unchanged).

    Weights are normalised into [0, 1]: absolute value (fMRI correlations may be negative),
    symmetrised ``(A + Aᵀ)/2``, diagonal set to 0, then divided by the largest weight of the whole
    data set (``scale="global"``, keeps between-subject differences) or of each graph
    (``scale="graph"``). A ``.mat`` needs scipy. Errors name the file and the problem.

    Returns ``(adjacency (G, N, N) dtype, labels (G,) int64)``.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {type(path).__name__}")
    if scale not in ("global", "graph"):
        raise ValueError(f"scale must be 'global' or 'graph', got {scale!r}")
    view = _check_int("view", view, 0)
    dtype = _check_dtype(dtype)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: brain-network file not found")
    arrays = _read_arrays(path)
    a_key, a_raw = _pick(arrays, adjacency_key, ADJACENCY_KEYS, "adjacency matrices", path)
    l_key, l_raw = _pick(arrays, label_key, LABEL_KEYS, "label array", path)
    adj = _stack_adjacency(a_raw, a_key, path, path.suffix.lower() == ".mat", view)
    labels = _labels(l_raw, l_key, path)
    if len(labels) != adj.shape[0]:
        raise ValueError(f"{path}: {adj.shape[0]} adjacency matrices in {a_key!r} but {len(labels)} labels "
                         f"in {l_key!r}")
    bad = ~np.isfinite(adj).all(axis=(1, 2))
    if bad.any():
        raise ValueError(f"{path}: {int(bad.sum())} of the {adj.shape[0]} matrices in {a_key!r} contain NaN "
                         f"or Inf (first: graph {int(np.argmax(bad))}); clean them before loading")
    adj = np.abs(adj)
    adj = (adj + adj.transpose(0, 2, 1)) / 2.0
    idx = np.arange(adj.shape[1])
    adj[:, idx, idx] = 0.0
    if scale == "global":
        top = adj.max()
        if top == 0:
            raise ValueError(f"{path}: every off-diagonal weight in {a_key!r} is zero")
        adj = adj / top
    else:
        top = adj.max(axis=(1, 2), keepdims=True)
        adj = adj / np.where(top > 0, top, 1.0)
    return torch.from_numpy(adj).to(dtype), torch.from_numpy(labels)


# ---- pairs ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GraphPairSplit(Split):
    """Balanced graph pairs split by graph. ``x_*`` have shape ``(P, 2, m)``; ``y_*`` is 1 for a
    same-class pair. ``pairs_*`` ``(P, 2)`` index the input graphs of each pair and ``graphs_*`` the
    graphs of each split (disjoint). ``n_features`` is the flattened length ``2m``."""

    n_nodes: int
    pairs_train: torch.Tensor
    pairs_val: torch.Tensor
    pairs_test: torch.Tensor
    graphs_train: torch.Tensor
    graphs_val: torch.Tensor
    graphs_test: torch.Tensor

    @property
    def n_features(self) -> int:
        return self.n_nodes * (self.n_nodes - 1)


def _as_tensor(value: object, name: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}")
    return value


def _stratified_graphs(labels: torch.Tensor, gen: torch.Generator, val_fraction: float,
                       test_fraction: float) -> list[torch.Tensor]:
    parts: list[list[torch.Tensor]] = [[], [], []]
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).flatten()
        members = members[torch.randperm(len(members), generator=gen)]
        n_val = math.floor(val_fraction * len(members) + 0.5)
        n_test = math.floor(test_fraction * len(members) + 0.5)
        n_train = len(members) - n_val - n_test
        for s, chunk in enumerate(members.split([n_train, n_val, n_test])):
            parts[s].append(chunk)
    return [torch.sort(torch.cat(p)).values for p in parts]


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
        val_fraction, test_fraction: share of each class's graphs in validation / test.
        n_eval_pairs: pairs in each of validation and test; default proportional to the split
            sizes, ``round(n_pairs * fraction / (1 - val_fraction - test_fraction))`` (at least 2),
            0 for an empty split.
        dtype: floating dtype of the ``x_*`` tensors.
    """
    adjacency = _as_tensor(adjacency, "adjacency")
    labels = _as_tensor(labels, "labels")
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
    n_pairs = _check_int("n_pairs", n_pairs, 2)
    seed = _check_int("seed", seed, 0)
    val_fraction = _check_fraction("val_fraction", val_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be < 1 to leave graphs for training, got "
                         f"{val_fraction} + {test_fraction}")
    if n_eval_pairs is not None:
        n_eval_pairs = _check_int("n_eval_pairs", n_eval_pairs, 0)
    dtype = _check_dtype(dtype)

    gen = torch.Generator().manual_seed(seed)
    splits = _stratified_graphs(labels, gen, val_fraction, test_fraction)
    train_fraction = 1.0 - val_fraction - test_fraction
    counts = [n_pairs]
    for frac, graphs in zip((val_fraction, test_fraction), splits[1:]):
        if len(graphs) == 0:
            counts.append(0)
        elif n_eval_pairs is not None:
            counts.append(n_eval_pairs)
        else:
            counts.append(max(2, math.floor(n_pairs * frac / train_fraction + 0.5)))
    triu = adjacency_to_triu(adjacency.detach()).to(dtype)
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
