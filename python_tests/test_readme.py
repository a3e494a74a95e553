"""Every Python example in the README runs as written, in order, in one namespace (as a reader
would paste them). Placeholders the README leaves to the reader (``model = ...``, ``x, y = ...``)
are filled with a small model and batch; nothing else is changed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import r2et_fast

README = Path(__file__).resolve().parent.parent / "README.md"

# What the README leaves to the reader, and what this test puts there.
PLACEHOLDERS = {
    "model = ...": "model = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.Softplus(), "
                   "torch.nn.Linear(16, 2)).double()",
    "x, y = ..., ...": "x, y = torch.randn(6, 12, dtype=torch.float64), torch.tensor([0, 1, 0, 1, 1, 0])",
}


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def fill(code: str) -> str:
    for placeholder, value in PLACEHOLDERS.items():
        code = re.sub(rf"^{re.escape(placeholder)}(?=\s|$)", value, code, flags=re.M)
    return code


@pytest.fixture
def restore_backend():
    yield
    r2et_fast.set_backend("auto")


def test_every_readme_example_runs(tmp_path, monkeypatch, restore_backend):
    monkeypatch.chdir(tmp_path)  # the training example writes runs/ relative to the cwd
    blocks = python_blocks()
    assert len(blocks) >= 5, "README python examples not found"
    namespace: dict = {}
    for i, code in enumerate(blocks):
        if "r2et_fast.kendall_tau(a, b" in code:  # the backend block compares two batches of maps
            namespace.update(a=torch.rand(4, 10), b=torch.rand(4, 10))
        exec(compile(fill(code), f"README.md python block {i + 1}", "exec"), namespace)
    assert namespace["res"].x_adv.shape == (512, 28)          # ERAttack on Adult
    assert "t_e" in namespace["cert"].to_dict()                # the bound certificate
    assert len(namespace["result"].history) == 2               # the Trainer example
    assert namespace["mine"][0].weight.grad is not None        # the own loop's backward
    assert set(namespace["r2et_loss"].parts) == {"ce", "hess", "gap"}
    assert namespace["mine"][1].num_batches_tracked.item() == 8  # one BatchNorm update per step
