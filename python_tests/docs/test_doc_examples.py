"""The documentation site's examples work as shown (docs/*.md; docs/reproduction holds committed
runs, not examples).

Every ```python block of a page runs as written, in order, in one namespace per page (as a reader
would paste them), in a temporary folder. Every command of a ```bash block parses: ``r2et-fast``
and ``torchrun ... -m r2et_fast.cli`` lines through the CLI's own parser (nothing is run), ``make``
lines name a target of the Makefile. And every page is in the site's nav (mkdocs.yml).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch

import r2et_fast
from r2et_fast.cli import build_parser
from r2et_fast.engine import _base as engine_base
from r2et_fast.train import _methods

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))


def blocks(page: Path, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", page.read_text(encoding="utf-8"), flags=re.S | re.M)


def commands(code: str) -> list[list[str]]:
    """The commands of a bash block: continuation lines joined, comments and blank lines dropped,
    leading ``NAME=value`` assignments removed."""
    out = []
    for line in code.replace("\\\n", " ").splitlines():
        argv = shlex.split(line, comments=True)
        while argv and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", argv[0]):
            argv = argv[1:]
        if argv:
            out.append(argv)
    return out


def cli_args(argv: list[str]) -> list[str] | None:
    """The arguments given to the r2et-fast CLI, or None when ``argv`` does not run it."""
    if argv[0] == "r2et-fast":
        return argv[1:]
    if argv[0] == "torchrun" and "-m" in argv and argv[argv.index("-m") + 1] == "r2et_fast.cli":
        return argv[argv.index("-m") + 2:]
    return None


MAKE_TARGETS = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), flags=re.M))
SHOWN_COMMANDS = [(page.name, argv) for page in PAGES for code in blocks(page, "bash")
                  for argv in commands(code)]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A scratch cwd, and the backend and the engine and method registries restored afterwards
    (the extending page registers an engine and a method)."""
    monkeypatch.chdir(tmp_path)
    engines, methods = dict(engine_base._REGISTRY), dict(_methods._REGISTRY)
    yield
    r2et_fast.set_backend("auto")
    engine_base._REGISTRY.clear()
    engine_base._REGISTRY.update(engines)
    _methods._REGISTRY.clear()
    _methods._REGISTRY.update(methods)


def test_the_pages_have_examples():
    with_python = [p.name for p in PAGES if blocks(p, "python")]
    assert len(with_python) >= 7, with_python
    assert len(SHOWN_COMMANDS) >= 20


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")], ids=lambda p: p.stem)
def test_every_python_example_runs(page, isolated):
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for i, code in enumerate(blocks(page, "python")):
        exec(compile(code, f"docs/{page.name} python block {i + 1}", "exec"), namespace)


@pytest.mark.parametrize("page, argv", SHOWN_COMMANDS, ids=lambda v: v if isinstance(v, str) else "")
def test_every_shown_command_parses(page, argv):
    if argv[0] == "make":
        assert set(argv[1:]) <= MAKE_TARGETS, f"{page}: {shlex.join(argv)} names no Makefile target"
        return
    if argv[:2] == ["pip", "install"]:
        assert argv[2:] == ["--no-build-isolation", "-e", "."], f"{page}: {shlex.join(argv)}"
        return
    args = cli_args(argv)
    assert args is not None, f"{page}: {shlex.join(argv)} is neither r2et-fast, make nor pip"
    if not torch.cuda.is_available():  # --device checks the device exists: parse a GPU line as CPU
        args = ["cpu" if i and args[i - 1] == "--device" and a.startswith("cuda") else a
                for i, a in enumerate(args)]
    try:
        parsed = build_parser().parse_args(args)
    except SystemExit as exc:  # argparse's error (or --help): the shown command does not parse
        pytest.fail(f"{page}: {shlex.join(argv)} does not parse (exit {exc.code})")
    assert parsed.command == args[0]


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = [p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")]
    missing = [p for p in pages if not re.search(rf":\s*{re.escape(p)}\s*$", nav, flags=re.M)]
    assert not missing, f"pages missing from the nav of mkdocs.yml: {missing}"
    assert {"spec.md", "reproduction/tabular.md", "api/attacks.md"} <= set(pages)
