"""The scripts under docs/examples run (a small version of each)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("layer", ["batchnorm", "dropout"])
def test_own_model_trains_with_r2et_loss_and_is_attacked(layer):
    records = load("own_model").main(["--layer", layer, "--epochs", "1", "--steps", "5",
                                      "--max-samples", "64"])
    assert [r["loss"] for r in records] == ["cross-entropy", "R2ETLoss"]
    for r in records:
        assert 0.5 < r["cauc"] <= 1 and 0 <= r["precision_at_k"] <= 1
