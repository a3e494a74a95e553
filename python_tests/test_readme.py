"""The README's "Engines, methods and the Trainer" example runs as written (on Adult, which the
README's training example loads as ``data`` before it)."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _block_after(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("```python", text.index(heading)) + len("```python")
    return text[start:text.index("```", start)]


def test_engines_and_trainer_example_runs():
    code = _block_after("### Engines, methods and the Trainer")
    namespace: dict = {}
    exec("from r2et_fast.datasets import load_tabular\ndata = load_tabular('adult', seed=0)\n", namespace)
    exec(compile(code, str(README), "exec"), namespace)
    assert len(namespace["result"].history) == 2
    assert namespace["model"][0].weight.grad is not None
