"""The real tabular data sets of the paper — Adult, Bank and COMPAS — loaded offline from the files
shipped in ``r2et_fast/datasets/data/`` (provenance, licences and digests: ``DATA_NOTICE.md``).

``load_tabular(name, seed=...)`` verifies the files' SHA-256, parses them with ``csv``/``gzip`` (no
pandas), drops rows with missing values, makes a seeded stratified train/validation/test split
(:func:`r2et_fast.datasets.split.stratified_split`, the splitter of every data set) and encodes the
features with statistics from the training split only. The column encodings live in
``_tabular_encoding``, the parsers and per-data-set schemes in ``_tabular_sources``.

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

import os
from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np
import torch

from r2et_fast._validation import check_float_dtype, check_int
from r2et_fast.datasets._integrity import read_verified
from r2et_fast.datasets._tabular_encoding import ColumnEncoding, TabularEncoder
from r2et_fast.datasets._tabular_sources import _SOURCES, DATASETS, N_FEATURES, _Source, _Table
from r2et_fast.datasets.split import Split, check_split_fractions, stratified_split

__all__ = ["DATASETS", "N_FEATURES", "ColumnEncoding", "TabularDataset", "TabularEncoder", "load_tabular",
           "raw_records"]


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


def load_tabular(name: str, *, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2,
                 dtype: torch.dtype = torch.float32,
                 data_dir: str | os.PathLike[str] | None = None) -> TabularDataset:
    """Load ``adult``, ``bank`` or ``compas`` split into train/validation/test (stratified by label,
    seeded: the same seed gives identical tensors on every machine) and encoded with training-split
    statistics (see the module docstring). ``data_dir`` reads the files from another folder (they must
    still match the recorded SHA-256)."""
    src = _source(name)
    seed = check_int(seed, "seed")
    val_fraction, test_fraction = check_split_fractions(val_fraction, test_fraction)
    dtype = check_float_dtype(dtype)

    table = _table(name, data_dir)
    prepared = table.prepared
    assert prepared is not None  # _table always fills it
    idx = stratified_split(table.labels, val_fraction, test_fraction, seed)
    tr = idx[0].numpy()
    encoder = TabularEncoder(tuple(c._fitted_raw(prepared[c.column][tr]) for c in src.encoder.columns))
    x = torch.from_numpy(np.concatenate([c._block(prepared[c.column]) for c in encoder.columns],
                                        axis=1)).to(dtype)
    y = torch.from_numpy(table.labels.copy())
    return TabularDataset(
        x_train=x[idx[0]], y_train=y[idx[0]], x_val=x[idx[1]], y_val=y[idx[1]],
        x_test=x[idx[2]], y_test=y[idx[2]],
        feature_names=encoder.feature_names, encoder=encoder, class_names=src.class_names, name=name,
        train_index=idx[0], val_index=idx[1], test_index=idx[2])
