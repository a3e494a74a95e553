"""`r2et-fast list`: the data sets, training methods, attacks, attribution methods, gradient engines
and ops backends, read from the package's registries and from the parser's own choices (so the
listed commands are exactly those that accept each name)."""

from __future__ import annotations

import argparse
import inspect
import json
import re
from typing import Any

from r2et_fast import _backend

# How a brain-network file is given: it is read by path, so it is no registered name.
BRAIN = {"name": "brain",
         "about": "brain networks given as a path to a .mat (BP/HIV/PPMI/ADHD layout) or .npz file: "
                  "--dataset FILE, or r2et_fast.datasets.load_graph_pairs('brain', path=FILE)"}


def _summary(obj: object) -> str:
    """The first sentence of ``obj``'s docstring (its class's or module's when it has none)."""
    doc = inspect.cleandoc(obj.__doc__ or inspect.getmodule(obj).__doc__ or "")
    text = " ".join(doc.split("\n\n")[0].split())
    text = re.sub(r"\s*\(docs/spec\.md[^)]*\)", "", text)
    return text.split(". ")[0].rstrip(".")


def _accepted(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """Choice -> the ``command --option`` pairs of the parser that accept it."""
    out: dict[str, list[str]] = {}
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for command, sub in (subs[0].choices.items() if subs else ()):
        for action in sub._actions:
            if action.choices and action.option_strings:
                uses = list(action.choices)
                if getattr(action.choices, "accepts_files", False):  # cli._data.DatasetChoices
                    uses.append(BRAIN["name"])
                for choice in uses:
                    out.setdefault(str(choice), []).append(f"{command} {action.option_strings[0]}")
    return out


def catalogue(parser: argparse.ArgumentParser) -> dict[str, list[dict]]:
    """Everything `r2et-fast list` shows, as JSON-ready lists of entries."""
    from r2et_fast.attacks import ATTACKS
    from r2et_fast.datasets import DATASETS
    from r2et_fast.datasets.graphs import GRAPH_DATASETS
    from r2et_fast.engine import AUTO, engine_names, get_engine
    from r2et_fast.experiments._specs import SPECS
    from r2et_fast.experiments.bounds import DATASET as BOUNDS_DATASET
    from r2et_fast.explain import EXPLAINERS
    from r2et_fast.train import METHOD_LABELS

    accepted = _accepted(parser)
    datasets: list[dict[str, Any]] = []
    for name in dict.fromkeys((*DATASETS, *SPECS, BOUNDS_DATASET)):
        spec = SPECS.get(name)
        commands = sorted({use.split()[0] for use in accepted.get(name, ())
                           if use.split()[1] in ("--dataset", "--datasets")})
        if name == BOUNDS_DATASET:
            commands.append("bounds")
        datasets.append({"name": name, "about": spec.about if spec else "",
                         "modality": spec.modality if spec else None, "commands": commands})
    if "brain" in GRAPH_DATASETS:
        commands = sorted({use.split()[0] for use in accepted.get(BRAIN["name"], ())})
        datasets.append({**BRAIN, "modality": "graph", "commands": commands})
    engines = [{"name": AUTO, "about": "per model and input, the registered engine that prefers it"}]
    engines += [{"name": n, "about": _summary(type(get_engine(n)))} for n in engine_names() if n != AUTO]
    return {
        "datasets": datasets,
        "methods": [{"name": m, "label": label} for m, label in METHOD_LABELS.items()],
        "attacks": [{"name": n, "class": cls.__name__, "about": _summary(cls)} for n, cls in ATTACKS.items()],
        "attributions": [{"name": n, "class": cls.__name__, "about": _summary(cls),
                          "options": accepted.get(n, [])} for n, cls in EXPLAINERS.items()],
        "engines": engines,
        "backends": [{"name": b} for b in _backend.BACKENDS],
    }


def _cmd_list(args: argparse.Namespace) -> int:
    entries = catalogue(args.parser)
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    print("data sets (commands that accept them):")
    for d in entries["datasets"]:
        where = ", ".join(d["commands"]) or "no command; Python API"
        print(f"  {d['name']:<8} {d['about']} [{where}]")
    print("training methods (--method, --methods):")
    print("  " + ", ".join(f"{m['name']} ({m['label']})" for m in entries["methods"]))
    print("attacks (r2et_fast.attacks):")
    for a in entries["attacks"]:
        print(f"  {a['name']:<12} {a['about']} ({a['class']})")
    print("attribution methods (r2et_fast.explain):")
    for a in entries["attributions"]:
        where = f"; {', '.join(a['options'])}" if a["options"] else ""
        print(f"  {a['name']:<12} {a['about']} ({a['class']}{where})")
    print("gradient engines (--engine):")
    for e in entries["engines"]:
        print(f"  {e['name']:<12} {e['about']}")
    print("ops backends (--backend): " + ", ".join(b["name"] for b in entries["backends"]))
    return 0


def add_list(sub, parser: argparse.ArgumentParser) -> None:
    lst = sub.add_parser("list", help="list data sets, training methods, attacks, attribution methods, "
                         "gradient engines and backends")
    lst.add_argument("--json", action="store_true", help="print the lists as JSON")
    lst.set_defaults(func=_cmd_list, parser=parser)
