"""Brain networks from the ``.mat`` layout of the BP/HIV/PPMI/ADHD studies, or a plain ``.npz``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from r2et_fast._validation import check_choice, check_float_dtype, check_int

ADJACENCY_KEYS = ("adjacency", "adj", "dti", "fmri", "X", "A", "net", "networks", "connectivity")
LABEL_KEYS = ("labels", "label", "y", "Y")
SCALES = ("global", "graph")


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
    check_choice(scale, "scale", SCALES)
    view = check_int(view, "view", 0)
    dtype = check_float_dtype(dtype)
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
