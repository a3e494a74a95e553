"""Parsers of the shipped Adult, Bank and COMPAS files and the column encodings of each data set.

The rows kept and the columns encoded are documented in :mod:`r2et_fast.datasets.tabular`.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from r2et_fast.datasets._tabular_encoding import _MISSING, ColumnEncoding, TabularEncoder

DATASETS: tuple[str, ...] = ("adult", "bank", "compas")


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


def _field_getter(row: Sequence[str], first: Mapping[str, int]) -> Callable[[str], str]:
    """column name → ``row``'s value in the first column of that name."""
    return lambda c: row[first[c]]


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
        if keep is not None and not keep(_field_getter(r, first)):
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
