"""Data sets. Everything runs offline: nothing is downloaded at run time."""

from r2et_fast.datasets.synthetic import Split, make_tabular

__all__ = ["Split", "make_tabular"]
