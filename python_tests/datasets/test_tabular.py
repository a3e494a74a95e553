"""Real tabular data sets (Adult, Bank, COMPAS): shapes, encoding, seeded split, file integrity."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import shutil

import numpy as np
import pytest
import torch

from r2et_fast.datasets import _integrity
from r2et_fast.datasets.split import Split
from r2et_fast.datasets.tabular import (
    DATASETS,
    N_FEATURES,
    TabularDataset,
    load_tabular,
    raw_records,
)

# Documented in the module docstring and DATA_NOTICE.md (the paper: 28 / 18 / 16).
DOCUMENTED_FEATURES = {"adult": 28, "bank": 18, "compas": 16}
# Rows left after dropping missing values (Adult) / ProPublica's filter (COMPAS), and positives.
ROWS = {"adult": (45222, 11208), "bank": (4521, 521), "compas": (6172, 2809)}
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module", params=DATASETS)
def ds(request) -> TabularDataset:
    return load_tabular(request.param)


def _parts(d: TabularDataset):
    return [(getattr(d, f"x_{s}"), getattr(d, f"y_{s}"), getattr(d, f"{s}_index")) for s in SPLITS]


def test_datasets_tuple():
    assert DATASETS == ("adult", "bank", "compas")
    assert N_FEATURES == DOCUMENTED_FEATURES


def test_shapes_dtypes_and_feature_count(ds):
    f = DOCUMENTED_FEATURES[ds.name]
    assert isinstance(ds, Split)
    assert ds.n_features == f == len(ds.feature_names) == ds.encoder.n_features
    assert ds.feature_names == ds.encoder.feature_names
    assert len(set(ds.feature_names)) == f
    assert len(ds.class_names) == 2
    total = 0
    for x, y, idx in _parts(ds):
        assert x.dtype == torch.float32 and y.dtype == torch.int64 and idx.dtype == torch.int64
        assert x.ndim == 2 and x.shape[1] == f and y.shape == (x.shape[0],) == idx.shape
        assert torch.isfinite(x).all()
        total += x.shape[0]
    assert total == ROWS[ds.name][0]
    n = total
    assert abs(ds.x_val.shape[0] - 0.1 * n) <= 2 and abs(ds.x_test.shape[0] - 0.2 * n) <= 2


def test_labels_binary_both_classes_and_stratified(ds):
    n, pos = ROWS[ds.name]
    assert sum(int(y.sum()) for _, y, _ in _parts(ds)) == pos
    for _, y, _ in _parts(ds):
        assert set(y.unique().tolist()) == {0, 1}
        assert abs(y.double().mean().item() - pos / n) < 0.01


def test_splits_disjoint_and_cover_all_rows(ds):
    idx = torch.cat([i for _, _, i in _parts(ds)])
    assert idx.unique().numel() == idx.numel() == ROWS[ds.name][0]
    assert idx.min() == 0 and idx.max() == idx.numel() - 1


def test_standardised_columns_use_training_statistics(ds):
    std_cols = ds.standardized_features
    assert std_cols, "every data set has numeric columns"
    xs = ds.x_train.double()[:, std_cols]
    torch.testing.assert_close(xs.mean(0), torch.zeros(len(std_cols), dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(xs.std(0, unbiased=False), torch.ones(len(std_cols), dtype=torch.float64),
                               atol=1e-5, rtol=0)
    others = [j for j in range(ds.n_features) if j not in std_cols]
    for x, _, _ in _parts(ds):
        assert set(x[:, others].unique().tolist()) <= {0.0, 1.0}
    # The statistics are those of the training rows only (not of the pool).
    col = next(c for c in ds.encoder.columns if c.kind == "numeric")
    recs = raw_records(ds.name)
    vals = np.array([float(r[col.column]) for r in recs])
    train = vals[ds.train_index.numpy()]
    assert math.isclose(col.mean, train.mean(), rel_tol=1e-12)
    assert math.isclose(col.std, train.std(), rel_tol=1e-12)
    assert not math.isclose(col.mean, vals.mean(), rel_tol=1e-9)


def test_labels_and_encoder_match_raw_records(ds):
    recs = raw_records(ds.name)
    label_col = {"adult": "income", "bank": "y", "compas": "two_year_recid"}[ds.name]
    positive = {"adult": ">50K", "bank": "yes", "compas": "1"}[ds.name]
    for x, y, idx in _parts(ds):
        sel = idx[:300].tolist()
        assert [int(recs[i][label_col] == positive) for i in sel] == y[:300].tolist()
        torch.testing.assert_close(ds.encoder.encode([recs[i] for i in sel]), x[:300], atol=1e-6, rtol=0)


def test_same_seed_identical_other_seed_different():
    a, b = load_tabular("compas", seed=3), load_tabular("compas", seed=3)
    for f in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "train_index", "test_index"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f
    c = load_tabular("compas", seed=4)
    assert not torch.equal(a.train_index, c.train_index)
    assert not torch.equal(a.x_train, c.x_train)


def test_split_is_pinned_across_machines():
    # Only torch.randperm on a seeded CPU generator decides the split: these indices must not change
    # from one machine to another (a change here means the published splits changed).
    assert load_tabular("compas", seed=0).test_index[:8].tolist() == [5799, 4787, 717, 2790, 5966, 2340,
                                                                       1398, 653]
    assert load_tabular("bank", seed=0).test_index[:8].tolist() == [987, 740, 593, 596, 367, 1375, 1272, 4254]


def test_other_fractions_and_dtype():
    d = load_tabular("bank", seed=1, val_fraction=0.25, test_fraction=0.25, dtype=torch.float64)
    assert d.x_train.dtype == torch.float64
    assert abs(d.x_val.shape[0] - 0.25 * 4521) <= 2 and abs(d.x_test.shape[0] - 0.25 * 4521) <= 2


def test_dataset_is_frozen():
    d = load_tabular("compas")
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.x_train = d.x_test
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.encoder.columns = ()


# ---- encoder on raw records ---------------------------------------------------------------------

def test_encode_raw_records():
    d = load_tabular("adult")
    rec = dict(raw_records("adult")[int(d.train_index[0])])
    torch.testing.assert_close(d.encoder.encode(rec), d.x_train[:1], atol=1e-6, rtol=0)
    j = d.feature_names.index("native-country=United-States")
    assert d.encoder.encode({**rec, "native-country": "Mexico"})[0, j] == 0
    assert d.encoder.encode({**rec, "native-country": "United-States"})[0, j] == 1
    for col, bad in (("native-country", "?"), ("workclass", "Astronaut"), ("age", "old")):
        with pytest.raises(ValueError, match=col):
            d.encoder.encode({**rec, col: bad})
    with pytest.raises(ValueError, match="sex"):
        d.encoder.encode({k: v for k, v in rec.items() if k != "sex"})
    assert d.encoder.encode([]).shape == (0, 28)


# ---- integrity ----------------------------------------------------------------------------------

def test_sha256sums_file_matches_dict_and_files():
    lines = (_integrity.DATA_DIR / "SHA256SUMS").read_text().split("\n")
    listed = dict(reversed(line.split()) for line in lines if line.strip())
    assert listed == _integrity.SHA256
    for name, path in _integrity.verify_all().items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == _integrity.SHA256[name]


def _copy_all(dst):
    for name in _integrity.SHA256:
        shutil.copy(_integrity.data_path(name), dst / name)


@pytest.mark.parametrize("dataset,fname", [("compas", "compas-scores-two-years.csv.gz"),
                                           ("adult", "adult.test.gz"), ("bank", "bank-uci.csv.gz")])
def test_corrupted_file_is_named(tmp_path, dataset, fname):
    load_tabular(dataset)  # a cached parse must not bypass the check
    _copy_all(tmp_path)
    assert load_tabular(dataset, data_dir=tmp_path).n_features == DOCUMENTED_FEATURES[dataset]
    data = bytearray((tmp_path / fname).read_bytes())
    data[len(data) // 2] ^= 0x01
    (tmp_path / fname).write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{fname}: SHA-256 mismatch \(expected {_integrity.SHA256[fname]}"):
        load_tabular(dataset, data_dir=tmp_path)
    with pytest.raises(ValueError, match=fname):
        _integrity.verify(fname, tmp_path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="compas-scores-two-years.csv.gz"):
        load_tabular("compas", data_dir=tmp_path)
    _copy_all(tmp_path)
    (tmp_path / "adult.test.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"adult\.test\.gz"):
        load_tabular("adult", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"adult\.test\.gz"):
        _integrity.data_path("adult.test.gz", tmp_path)


def test_unknown_data_file():
    with pytest.raises(ValueError, match="mnist.npz"):
        _integrity.data_path("mnist.npz")


# ---- argument validation ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mnist", "Adult", "", None])
def test_unknown_dataset_lists_valid_names(name):
    with pytest.raises(ValueError, match="adult, bank, compas"):
        load_tabular(name)


@pytest.mark.parametrize("arg", ["val_fraction", "test_fraction"])
@pytest.mark.parametrize("bad", [0, 0.0, 1, 1.0, -0.1, 1.5, float("nan"), float("inf"), True, "0.1", None])
def test_fraction_out_of_range(arg, bad):
    with pytest.raises(ValueError, match=arg):
        load_tabular("compas", **{arg: bad})


@pytest.mark.parametrize("val,test", [(0.5, 0.5), (0.6, 0.5), (0.3, 0.7)])
def test_fractions_sum_below_one(val, test):
    with pytest.raises(ValueError, match=r"val_fraction \+ test_fraction"):
        load_tabular("compas", val_fraction=val, test_fraction=test)


def test_bad_dtype_and_seed():
    with pytest.raises(ValueError, match="floating"):
        load_tabular("compas", dtype=torch.int64)
    with pytest.raises(TypeError, match="dtype"):
        load_tabular("compas", dtype="float32")
    with pytest.raises(TypeError, match="seed"):
        load_tabular("compas", seed=1.5)
