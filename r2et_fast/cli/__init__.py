"""Command line: ``r2et-fast <command>``. Results print as a table and can be saved as JSON.

One private module per group of commands: ``_basic`` (demo, info), ``_list``, ``_train``,
``_attack``, ``_tabular`` (compare), ``_experiments`` (reproduce, bounds) and ``_certify`` (with
``_certify_sound`` for ``--sound``);
``_options`` holds the options they share, ``_data`` the data sets and saved models of every
modality. Bad input, from argparse or from a command, ends with one ``r2et-fast <command>: error:
...`` line on stderr and exit status 2 (``_errors``), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from r2et_fast.cli import _attack, _basic, _certify, _errors, _experiments, _list, _options, _tabular, _train

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    # subparsers are built with the parent's class: every command shares the one-line errors
    parser = _errors.Parser(prog="r2et-fast", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _basic.add_demo(sub)
    _basic.add_info(sub)
    _list.add_list(sub, parser)
    _train.add_train(sub)
    _attack.add_attack(sub)
    _tabular.add_compare(sub)
    _experiments.add_reproduce(sub)
    _certify.add_certify(sub)
    _experiments.add_bounds(sub)
    for command in sub.choices.values():  # `bounds` keeps its own --threads (default 1)
        _options.add_placement(command, threads=not any("--threads" in a.option_strings
                                                        for a in command._actions))
    return parser


def _run(args: argparse.Namespace) -> int:
    """The command, with its threads, its device (what "auto" means while it runs) and, under
    torchrun, the launch's process group; ranks other than 0 print nothing."""
    from r2et_fast import _device, _distributed

    _distributed.set_threads(getattr(args, "threads", None))
    with _device.auto_means(args.device) as device:
        _distributed.init(device)
        if not _distributed.is_main():  # one rank reports: the others' tables and bars would repeat it
            sys.stdout = open(os.devnull, "w")  # for the rest of the process
            args.no_progress = True
        return args.func(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return _errors.run(f"r2et-fast {args.command}", lambda: _run(args))
