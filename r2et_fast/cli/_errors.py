"""The one error style of every command: ``r2et-fast <command>: error: <what is wrong>`` on one line of
stderr, exit status 2, no traceback. argparse's own errors (a bad choice, a value out of range) and
the errors of a command's body go through the same two functions here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

USAGE_ERROR = 2  # argparse's status for bad command lines; ours too, so scripts see one code


class CliError(Exception):
    """A bad argument or input file, found after parsing; the message names the argument."""


def one_line(message: str) -> str:
    """``message`` on one line: library errors (a state-dict mismatch, say) can span several."""
    return " ".join(str(message).split())


def fail(prog: str, message: str) -> NoReturn:
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr)
    raise SystemExit(USAGE_ERROR)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (argparse prints the usage block first; with
    many options that buries the reason)."""

    def error(self, message: str) -> NoReturn:
        fail(self.prog, f"{message} (see {self.prog} --help)")


def run(prog: str, command: Callable[[], int]) -> int:
    """``command()``; a bad setting or file ends in one error line instead of a traceback.

    ``ValueError`` and ``OSError`` are the library's (and the file system's) way of refusing an input;
    they already name the value or the file. Anything else is a bug and keeps its traceback."""
    try:
        return command()
    except (CliError, ValueError, OSError) as err:
        fail(prog, str(err))
