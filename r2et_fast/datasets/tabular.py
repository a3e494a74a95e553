"""The real tabular data sets of the paper — Adult, Bank and COMPAS — loaded offline from the files
shipped in ``r2et_fast/datasets/data/`` (provenance, licences and digests: ``DATA_NOTICE.md``).

``load_tabular(name, seed=...)`` verifies the files' SHA-256, parses them with ``csv``/``gzip`` (no
pandas), drops rows with missing values, makes a seeded stratified train/validation/test split and
encodes the features with statistics from the training split only.

Encoding
--------
The paper reports 28 (Adult), 18 (Bank) and 16 (COMPAS) features, but its preprocessing code is not
available. The schemes below were chosen to land on exactly those counts with standard, documented
rules; the individual columns therefore need not coincide with the authors'.

* numeric columns: standardised, ``(x - mean) / std`` with mean and population std of the training split;
* binary categoricals: one 0/1 column (``column=positive level``);
* ``onehot`` categoricals: one 0/1 column per level (levels possibly grouped, as listed), not standardised;
* ``label`` categoricals: the level's index in a fixed level list, then standardised like a numeric column.

Level lists are fixed here (not learned from the data), so every split and seed produces the same
columns. Numeric and label-encoded columns are the ``standardized_features`` of the encoder.

Adult — 28 features (paper: 28). ``adult.data`` and ``adult.test`` are pooled (48,842 rows) and rows
with a ``'?'`` are dropped, leaving 45,222 (11,208 ``>50K``); the seeded split is made on the pool, so
the official train/test partition is not kept. Numeric (6): age, fnlwgt, education-num, capital-gain,
capital-loss, hours-per-week. Binary (2): sex=Male, native-country=United-States (every other country
→ 0). One-hot, grouped: workclass (4: private; self-employed = Self-emp-inc/-not-inc; government =
Federal/Local/State-gov; unpaid = Without-pay/Never-worked), marital-status (3: married =
Married-civ-spouse/-AF-spouse; never-married; previously-married = Divorced/Separated/Widowed/
Married-spouse-absent), occupation (4: professional = Exec-managerial/Prof-specialty/Tech-support;
clerical-sales = Adm-clerical/Sales; service = Other-service/Priv-house-serv/Protective-serv/
Armed-Forces; manual = Craft-repair/Farming-fishing/Handlers-cleaners/Machine-op-inspct/
Transport-moving), race (3: White, Black, other = Asian-Pac-Islander/Amer-Indian-Eskimo/Other);
one-hot, ungrouped: relationship (6). ``education`` is dropped: it is one-to-one with education-num.

Bank — 18 features (paper: 18). The official 10 % sample (4,521 rows, 521 ``yes``); the ``id`` column
is dropped; ``unknown`` is a regular level (no rows are dropped). Numeric (7): age, balance, day,
duration, campaign, pdays, previous. Binary (3): default, housing, loan (=yes). One-hot (3): marital.
Label-encoded (5): job (alphabetical), education (primary, secondary, tertiary, unknown), contact
(cellular, telephone, unknown), month (calendar order), poutcome (failure, other, success, unknown).
Note: UCI warns that ``duration`` is only known after the call; it is kept, as in most benchmarks.

COMPAS — 16 features (paper: 16). ProPublica's filter (``days_b_screening_arrest`` within ±30,
``is_recid != -1``, ``c_charge_degree != 'O'``, ``score_text != 'N/A'``) leaves 6,172 rows (2,809
reoffended). Target ``two_year_recid``. Binary (2): sex=Male, c_charge_degree=F (felony). Numeric (5):
age, juv_fel_count, juv_misd_count, juv_other_count, priors_count. One-hot (9): age_cat (3), race (6,
ProPublica's levels). Excluded: the COMPAS scores (decile_score, score_text, v_*: the tool's own
prediction), length of stay (would make 17), identifiers and dates, and everything that leaks the
label (is_recid, r_*, vr_*, violent_recid, is_violent_recid, start, end, event). Where the file repeats
a column name (decile_score, priors_count) the first occurrence is used; the copies are identical.

Duplicate records (Adult has a few identical rows) are kept; splits are disjoint by row index.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np
import torch

from r2et_fast.datasets._integrity import read_verified
from r2et_fast.datasets.synthetic import Split

DATASETS: tuple[str, ...] = ("adult", "bank", "compas")

_KINDS = ("numeric", "binary", "onehot", "label")
_MISSING = frozenset({"", "?"})


# ---- per-column encoding ------------------------------------------------------------------------

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

    def _raw_values(self, values: Sequence[object]) -> np.ndarray:
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


# ---- the data set object ------------------------------------------------------------------------

@dataclass(frozen=True)
class TabularDataset(Split):
    """A real tabular data set, split and encoded. The ``*_index`` tensors give each split's rows as
    indices into :func:`raw_records` (the cleaned table), so the three splits are disjoint by
    construction. Being a :class:`Split`, it works wherever the synthetic data set does."""

    feature_names: list[str]
    encoder: TabularEncoder
    class_names: tuple[str, ...]
    name: str
    train_index: torch.Tensor
    val_index: torch.Tensor
    test_index: torch.Tensor

    @property
    def standardized_features(self) -> list[int]:
        """Indices of the standardised (numeric and label-encoded) features."""
        return self.encoder.standardized_features


# ---- parsing ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Table:
    columns: Mapping[str, np.ndarray]   # column → object array of str, cleaned rows only
    labels: np.ndarray                  # int64, 0/1
    prepared: Mapping[str, np.ndarray] | None = None  # encoded column → raw float64 values / level codes


def _csv_rows(data: bytes, fname: str, **fmt) -> list[list[str]]:
    try:
        text = gzip.decompress(data).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise ValueError(f"{fname}: cannot decompress/decode ({e})") from None
    return list(csv.reader(io.StringIO(text, newline=""), **fmt))


def _make_table(header: Sequence[str], rows: list[list[str]], labels: list[int]) -> _Table:
    cols = {}
    for j, name in enumerate(header):
        if name in cols:
            continue
        arr = np.array([r[j] for r in rows], dtype=object)
        arr.setflags(write=False)
        cols[name] = arr
    y = np.array(labels, dtype=np.int64)
    y.setflags(write=False)
    return _Table(MappingProxyType(cols), y)


_ADULT_HEADER = ("age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
                 "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
                 "hours-per-week", "native-country", "income")


def _parse_adult(blobs: Mapping[str, bytes]) -> _Table:
    label_of = {"<=50K": 0, ">50K": 1}
    rows, labels = [], []
    for fname in ("adult.data.gz", "adult.test.gz"):
        for lineno, r in enumerate(_csv_rows(blobs[fname], fname, skipinitialspace=True), start=1):
            if not r or (len(r) == 1 and (not r[0].strip() or r[0].startswith("|"))):
                continue  # blank line, or adult.test's "|1x3 Cross validator" first line
            if len(r) != len(_ADULT_HEADER):
                raise ValueError(f"{fname}, line {lineno}: expected {len(_ADULT_HEADER)} fields, "
                                 f"got {len(r)}")
            r = [v.strip() for v in r]
            r[-1] = r[-1].rstrip(".")  # adult.test writes ">50K." / "<=50K."
            if r[-1] not in label_of:
                raise ValueError(f"{fname}, line {lineno}: unknown label {r[-1]!r}")
            if any(v in _MISSING for v in r):
                continue
            rows.append(r)
            labels.append(label_of[r[-1]])
    return _make_table(_ADULT_HEADER, rows, labels)


def _parse_with_header(blob: bytes, fname: str, label_col: str, label_of: Mapping[str, int],
                       keep: Callable[[Callable[[str], str]], bool] | None = None) -> _Table:
    header, *body = _csv_rows(blob, fname)
    first: dict[str, int] = {}
    for j, name in enumerate(header):
        first.setdefault(name, j)
    rows, labels = [], []
    for lineno, r in enumerate(body, start=2):
        if not r:
            continue
        if len(r) != len(header):
            raise ValueError(f"{fname}, line {lineno}: expected {len(header)} fields, got {len(r)}")
        r = [v.strip() for v in r]
        if keep is not None and not keep(lambda c, r=r: r[first[c]]):
            continue
        lab = r[first[label_col]]
        if lab not in label_of:
            raise ValueError(f"{fname}, line {lineno}: unknown {label_col} {lab!r}")
        rows.append(r)
        labels.append(label_of[lab])
    return _make_table(header, rows, labels)


def _parse_bank(blobs: Mapping[str, bytes]) -> _Table:
    return _parse_with_header(blobs["bank-uci.csv.gz"], "bank-uci.csv.gz", "y", {"no": 0, "yes": 1})


def _compas_keep(get: Callable[[str], str]) -> bool:
    """ProPublica's filter (their analysis notebook); an empty days_b_screening_arrest fails it."""
    days = get("days_b_screening_arrest")
    try:
        in_window = -30 <= float(days) <= 30
    except ValueError:
        return False
    return (in_window and get("is_recid") != "-1" and get("c_charge_degree") != "O"
            and get("score_text") not in ("N/A", ""))


def _parse_compas(blobs: Mapping[str, bytes]) -> _Table:
    fname = "compas-scores-two-years.csv.gz"
    return _parse_with_header(blobs[fname], fname, "two_year_recid", {"0": 0, "1": 1}, keep=_compas_keep)


# ---- data set definitions -----------------------------------------------------------------------

def _num(col: str) -> ColumnEncoding:
    return ColumnEncoding(col, "numeric")


def _grouped(col: str, kind: str, groups: Mapping[str, Sequence[str]], other: str | None = None):
    return ColumnEncoding(col, kind, tuple(groups), tuple((raw, lvl) for lvl, raws in groups.items()
                                                          for raw in raws), other)


@dataclass(frozen=True)
class _Source:
    files: tuple[str, ...]
    parse: Callable[[Mapping[str, bytes]], _Table]
    encoder: TabularEncoder
    class_names: tuple[str, str]


_SOURCES: dict[str, _Source] = {
    "adult": _Source(
        ("adult.data.gz", "adult.test.gz"), _parse_adult,
        TabularEncoder((
            _num("age"),
            _grouped("workclass", "onehot", {
                "private": ["Private"], "self-employed": ["Self-emp-inc", "Self-emp-not-inc"],
                "government": ["Federal-gov", "Local-gov", "State-gov"],
                "unpaid": ["Without-pay", "Never-worked"]}),
            _num("fnlwgt"),
            _num("education-num"),
            _grouped("marital-status", "onehot", {
                "married": ["Married-civ-spouse", "Married-AF-spouse"], "never-married": ["Never-married"],
                "previously-married": ["Divorced", "Separated", "Widowed", "Married-spouse-absent"]}),
            _grouped("occupation", "onehot", {
                "professional": ["Exec-managerial", "Prof-specialty", "Tech-support"],
                "clerical-sales": ["Adm-clerical", "Sales"],
                "service": ["Other-service", "Priv-house-serv", "Protective-serv", "Armed-Forces"],
                "manual": ["Craft-repair", "Farming-fishing", "Handlers-cleaners", "Machine-op-inspct",
                           "Transport-moving"]}),
            ColumnEncoding("relationship", "onehot", ("Husband", "Not-in-family", "Other-relative",
                                                      "Own-child", "Unmarried", "Wife")),
            _grouped("race", "onehot", {"White": [], "Black": [],
                                        "other": ["Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other"]}),
            ColumnEncoding("sex", "binary", ("Female", "Male")),
            _num("capital-gain"),
            _num("capital-loss"),
            _num("hours-per-week"),
            ColumnEncoding("native-country", "binary", ("other", "United-States"), other="other"),
        )),
        ("<=50K", ">50K")),
    "bank": _Source(
        ("bank-uci.csv.gz",), _parse_bank,
        TabularEncoder((
            _num("age"),
            ColumnEncoding("job", "label", ("admin.", "blue-collar", "entrepreneur", "housemaid",
                                            "management", "retired", "self-employed", "services",
                                            "student", "technician", "unemployed", "unknown")),
            ColumnEncoding("marital", "onehot", ("divorced", "married", "single")),
            ColumnEncoding("education", "label", ("primary", "secondary", "tertiary", "unknown")),
            ColumnEncoding("default", "binary", ("no", "yes")),
            _num("balance"),
            ColumnEncoding("housing", "binary", ("no", "yes")),
            ColumnEncoding("loan", "binary", ("no", "yes")),
            ColumnEncoding("contact", "label", ("cellular", "telephone", "unknown")),
            _num("day"),
            ColumnEncoding("month", "label", ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                              "sep", "oct", "nov", "dec")),
            _num("duration"),
            _num("campaign"),
            _num("pdays"),
            _num("previous"),
            ColumnEncoding("poutcome", "label", ("failure", "other", "success", "unknown")),
        )),
        ("no", "yes")),
    "compas": _Source(
        ("compas-scores-two-years.csv.gz",), _parse_compas,
        TabularEncoder((
            ColumnEncoding("sex", "binary", ("Female", "Male")),
            _num("age"),
            ColumnEncoding("age_cat", "onehot", ("Less than 25", "25 - 45", "Greater than 45")),
            ColumnEncoding("race", "onehot", ("African-American", "Asian", "Caucasian", "Hispanic",
                                              "Native American", "Other")),
            _num("juv_fel_count"),
            _num("juv_misd_count"),
            _num("juv_other_count"),
            _num("priors_count"),
            ColumnEncoding("c_charge_degree", "binary", ("M", "F")),
        )),
        ("no-recid", "recid")),
}

#: Number of features each data set yields (equal to the paper's 28 / 18 / 16).
N_FEATURES: dict[str, int] = {k: s.encoder.n_features for k, s in _SOURCES.items()}


# ---- loading ------------------------------------------------------------------------------------

def _source(name: object) -> _Source:
    if not isinstance(name, str) or name not in _SOURCES:
        raise ValueError(f"unknown tabular data set {name!r}; valid names: {', '.join(DATASETS)}")
    return _SOURCES[name]


def _table(name: str, data_dir: str | os.PathLike[str] | None) -> _Table:
    src = _source(name)
    # Always verified, even when the parse is cached: the bytes then equal the recorded ones, so the
    # parse is the same whichever folder they came from and caching it by name is safe.
    blobs = {f: read_verified(f, data_dir) for f in src.files}
    if name not in _TABLES:
        table = src.parse(blobs)
        prepared = {}
        for c in src.encoder.columns:  # numbers / level indices: independent of the split
            v = c._raw_values(table.columns[c.column])
            v.setflags(write=False)
            prepared[c.column] = v
        _TABLES[name] = replace(table, prepared=MappingProxyType(prepared))
    return _TABLES[name]


_TABLES: dict[str, _Table] = {}


def raw_records(name: str, *, data_dir: str | os.PathLike[str] | None = None) -> list[dict[str, str]]:
    """The cleaned rows of data set ``name`` (after dropping missing values / ProPublica's filter) as
    dicts column → raw string, in the order that ``TabularDataset.*_index`` refers to. Adult's labels
    lose adult.test's trailing '.'; where COMPAS repeats a column name the first copy is kept."""
    t = _table(name, data_dir)
    names = list(t.columns)
    cols = [t.columns[n].tolist() for n in names]
    return [dict(zip(names, vals)) for vals in zip(*cols)]


def _check_fraction(arg: str, v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
        raise ValueError(f"{arg} must be a finite number in (0, 1), got {v!r}")
    v = float(v)
    if not 0.0 < v < 1.0:
        raise ValueError(f"{arg} must be in (0, 1), got {v!r}")
    return v


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def _stratified_split(labels: np.ndarray, seed: int, val_fraction: float, test_fraction: float,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: a seeded permutation, the first round(test_fraction·n_c) rows to test, the next
    round(val_fraction·n_c) to validation, the rest to train; each split is then shuffled. Only
    ``torch.randperm`` on a CPU generator is used, so the result is the same on every machine."""
    g = torch.Generator().manual_seed(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[torch.randperm(len(idx), generator=g).numpy()]
        n_test = _round_half_up(test_fraction * len(idx))
        n_val = _round_half_up(val_fraction * len(idx))
        if min(n_test, n_val, len(idx) - n_test - n_val) < 1:
            raise ValueError(f"class {int(c)} has {len(idx)} rows: too few for val_fraction={val_fraction} "
                             f"and test_fraction={test_fraction} to leave every split a row of it")
        parts[0].append(idx[n_test + n_val:])
        parts[1].append(idx[n_test:n_test + n_val])
        parts[2].append(idx[:n_test])
    out = []
    for p in parts:
        idx = np.concatenate(p)
        out.append(idx[torch.randperm(len(idx), generator=g).numpy()])
    return out[0], out[1], out[2]


def load_tabular(name: str, *, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2,
                 dtype: torch.dtype = torch.float32,
                 data_dir: str | os.PathLike[str] | None = None) -> TabularDataset:
    """Load ``adult``, ``bank`` or ``compas`` split into train/validation/test (stratified by label,
    seeded: the same seed gives identical tensors on every machine) and encoded with training-split
    statistics (see the module docstring). ``data_dir`` reads the files from another folder (they must
    still match the recorded SHA-256)."""
    src = _source(name)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    val_fraction = _check_fraction("val_fraction", val_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be < 1 to leave rows for training, got "
                         f"{val_fraction} + {test_fraction} = {val_fraction + test_fraction}")
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype, got {type(dtype).__name__}")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point dtype, got {dtype}")

    table = _table(name, data_dir)
    tr, va, te = _stratified_split(table.labels, int(seed), val_fraction, test_fraction)
    encoder = TabularEncoder(tuple(c._fitted_raw(table.prepared[c.column][tr]) for c in src.encoder.columns))
    x = np.concatenate([c._block(table.prepared[c.column]) for c in encoder.columns], axis=1)
    x = torch.from_numpy(x).to(dtype)
    y = torch.from_numpy(table.labels.copy())
    idx = [torch.from_numpy(i.astype(np.int64)) for i in (tr, va, te)]
    return TabularDataset(
        x_train=x[idx[0]], y_train=y[idx[0]], x_val=x[idx[1]], y_val=y[idx[1]],
        x_test=x[idx[2]], y_test=y[idx[2]],
        feature_names=encoder.feature_names, encoder=encoder, class_names=src.class_names, name=name,
        train_index=idx[0], val_index=idx[1], test_index=idx[2])
