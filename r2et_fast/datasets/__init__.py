"""Data sets. Everything runs offline: the real data ship inside the package (SHA-256 checked)."""

from r2et_fast.datasets.graphs import (
    graph_pairs,
    load_brain_networks,
    load_bzr,
    load_graph_pairs,
    make_connectomes,
)
from r2et_fast.datasets.mnist import load_mnist, mnist_pairs
from r2et_fast.datasets.split import Split, stratified_split
from r2et_fast.datasets.synthetic import make_tabular
from r2et_fast.datasets.tabular import DATASETS, TabularDataset, TabularEncoder, load_tabular, raw_records

__all__ = ["graph_pairs", "load_brain_networks", "load_bzr", "load_graph_pairs", "make_connectomes",
           "load_mnist", "mnist_pairs", "Split", "stratified_split",
           "make_tabular", "DATASETS", "TabularDataset", "TabularEncoder", "load_tabular",
           "raw_records"]
