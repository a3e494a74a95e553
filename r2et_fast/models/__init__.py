"""Models of the papers (SPEC §8)."""

from r2et_fast.models.tabular import TabularMLP

__all__ = ["TabularMLP"]
