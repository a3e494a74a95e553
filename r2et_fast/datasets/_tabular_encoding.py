"""Per-column encoding of the real tabular data sets: how raw CSV values become feature columns.

The schemes and the reasons for them are documented in :mod:`r2et_fast.datasets.tabular`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

_KINDS = ("numeric", "binary", "onehot", "label")
_MISSING = frozenset({"", "?"})


@dataclass(frozen=True)
class ColumnEncoding:
    """How one raw column becomes feature columns.

    ``kind``: ``numeric`` (standardised), ``binary`` (one 0/1 column, 1 for ``levels[1]``), ``onehot``
    (one 0/1 column per level) or ``label`` (level index, standardised). ``groups`` maps raw values to
    levels; ``other`` (if set) is the level given to any value not otherwise listed. ``mean``/``std``
    are the training-split statistics of numeric and label columns."""

    column: str
    kind: str
    levels: tuple[str, ...] = ()
    groups: tuple[tuple[str, str], ...] = ()
    other: str | None = None
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"column {self.column!r}: kind must be one of {_KINDS}, got {self.kind!r}")
        if self.kind == "numeric":
            if self.levels or self.groups or self.other is not None:
                raise ValueError(f"column {self.column!r}: a numeric column takes no levels")
        else:
            if len(set(self.levels)) != len(self.levels) or len(self.levels) < 2:
                raise ValueError(f"column {self.column!r}: needs at least two distinct levels")
            if self.kind == "binary" and len(self.levels) != 2:
                raise ValueError(f"column {self.column!r}: a binary column has exactly two levels")
            bad = [lvl for _, lvl in self.groups if lvl not in self.levels]
            if self.other is not None and self.other not in self.levels:
                bad.append(self.other)
            if bad:
                raise ValueError(f"column {self.column!r}: groups/other name unknown levels {bad}")
        if not (math.isfinite(self.std) and self.std > 0 and math.isfinite(self.mean)):
            raise ValueError(f"column {self.column!r}: mean/std must be finite with std > 0")

    @property
    def standardized(self) -> bool:
        return self.kind in ("numeric", "label")

    @property
    def width(self) -> int:
        return len(self.levels) if self.kind == "onehot" else 1

    @property
    def feature_names(self) -> list[str]:
        if self.kind == "onehot":
            return [f"{self.column}={lvl}" for lvl in self.levels]
        if self.kind == "binary":
            return [f"{self.column}={self.levels[1]}"]
        return [self.column]

    def _raw_values(self, values: Sequence[object] | np.ndarray) -> np.ndarray:
        """Numeric values (numeric kind) or level indices (categorical kinds), float64."""
        arr = np.asarray(values, dtype=object).reshape(-1)
        if self.kind == "numeric":
            try:
                out = arr.astype(np.float64)
            except (TypeError, ValueError):
                out = None
            if out is not None and np.isfinite(out).all():
                return out
            for i, v in enumerate(arr):  # slow path, only to name the offending value
                try:
                    ok = math.isfinite(float(v))
                except (TypeError, ValueError):
                    ok = False
                if not ok:
                    raise ValueError(f"column {self.column!r}, row {i}: not a finite number: {v!r}")
            raise AssertionError("unreachable")  # pragma: no cover
        code = {lvl: i for i, lvl in enumerate(self.levels)}
        code.update({raw: code[lvl] for raw, lvl in self.groups})
        fallback = None if self.other is None else code[self.other]
        if arr.size == 0:
            return np.zeros(0, dtype=np.float64)
        uniq, inverse = np.unique(np.char.strip(arr.astype(str)), return_inverse=True)
        ucode = np.empty(len(uniq), dtype=np.float64)
        for k, s in enumerate(uniq.tolist()):
            c = code.get(s)
            if c is None:
                if s in _MISSING or fallback is None:
                    i = int(np.flatnonzero(inverse.reshape(-1) == k)[0])
                    raise ValueError(f"column {self.column!r}, row {i}: unknown or missing category "
                                     f"{arr[i]!r}; expected one of {sorted(code)}")
                c = fallback
            ucode[k] = c
        return ucode[inverse.reshape(-1)]

    def fitted(self, values: Sequence[object]) -> ColumnEncoding:
        """A copy with mean/std taken from ``values`` (training rows); identity for 0/1 columns."""
        return self._fitted_raw(self._raw_values(values))

    def _fitted_raw(self, v: np.ndarray) -> ColumnEncoding:
        if not self.standardized:
            return self
        std = float(v.std())
        return replace(self, mean=float(v.mean()), std=std if std > 1e-12 else 1.0)

    def encode_values(self, values: Sequence[object]) -> np.ndarray:
        """(len(values), width) float64 block."""
        return self._block(self._raw_values(values))

    def _block(self, v: np.ndarray) -> np.ndarray:
        if self.standardized:
            return ((v - self.mean) / self.std)[:, None]
        if self.kind == "binary":
            return v[:, None]
        return np.eye(len(self.levels), dtype=np.float64)[v.astype(np.int64)]


@dataclass(frozen=True)
class TabularEncoder:
    """The column encodings of a data set, fitted on its training split. ``encode(rows)`` turns raw
    records (mappings column → value, as from :func:`raw_records`) into feature rows exactly as the
    loader did; unknown categories raise ``ValueError``."""

    columns: tuple[ColumnEncoding, ...]

    @property
    def feature_names(self) -> list[str]:
        return [n for c in self.columns for n in c.feature_names]

    @property
    def n_features(self) -> int:
        return sum(c.width for c in self.columns)

    @property
    def standardized_features(self) -> list[int]:
        """Indices of the standardised (numeric and label-encoded) features."""
        out, j = [], 0
        for c in self.columns:
            if c.standardized:
                out.append(j)
            j += c.width
        return out

    def fit(self, table: Mapping[str, Sequence[object]]) -> TabularEncoder:
        """A copy with mean/std of every standardised column taken from ``table`` (column → values)."""
        return TabularEncoder(tuple(c.fitted(table[c.column]) for c in self.columns))

    def encode_columns(self, table: Mapping[str, Sequence[object]], *,
                       dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Encode a column-oriented table (column → equally long sequences of raw values)."""
        blocks = [c.encode_values(table[c.column]) for c in self.columns]
        return torch.from_numpy(np.concatenate(blocks, axis=1)).to(dtype)

    def encode(self, rows: Mapping[str, object] | Iterable[Mapping[str, object]], *,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Encode raw records into an (n_rows, n_features) tensor (one mapping → one row)."""
        if isinstance(rows, Mapping):
            rows = [rows]
        rows = list(rows)
        table: dict[str, list[object]] = {}
        for c in self.columns:
            vals = []
            for i, r in enumerate(rows):
                if not isinstance(r, Mapping):
                    raise TypeError(f"row {i}: expected a mapping column → value, got {type(r).__name__}")
                if c.column not in r:
                    raise ValueError(f"row {i} has no column {c.column!r}")
                vals.append(r[c.column])
            table[c.column] = vals
        if not rows:
            return torch.zeros(0, self.n_features, dtype=dtype)
        return self.encode_columns(table, dtype=dtype)
