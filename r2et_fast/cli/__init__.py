"""Command line: ``r2et-fast <command>``. Results print as a table and can be saved as JSON.

One private module per group of commands: ``_basic`` (demo, info), ``_list``, ``_tabular``
(train, attack, compare), ``_experiments`` (reproduce, bounds) and ``_certify``; ``_options`` holds
the options they share. Bad input ends with one ``r2et-fast <command>: error: ...`` line.
"""

from __future__ import annotations

import argparse
import sys

from r2et_fast.cli import _basic, _certify, _experiments, _list, _tabular

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="r2et-fast", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _basic.add_demo(sub)
    _basic.add_info(sub)
    _list.add_list(sub, parser)
    _tabular.add_train(sub)
    _tabular.add_attack(sub)
    _tabular.add_compare(sub)
    _experiments.add_reproduce(sub)
    _certify.add_certify(sub)
    _experiments.add_bounds(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:  # bad settings or files: the message, no traceback
        raise SystemExit(f"r2et-fast {args.command}: error: {err}") from err


if __name__ == "__main__":
    sys.exit(main())
