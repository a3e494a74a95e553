"""Checks of plain Python arguments: flags, integers, real numbers, fractions, choices, dtypes."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong kind (a float for an int, a str for a number, ...).

    A ``TypeError``, as the rest of the toolkit expects; also a ``ValueError`` because the data-set
    loaders have always reported every bad argument as ``ValueError`` and their callers catch that.
    """


def check_bool(value: object, name: str) -> bool:
    """A real ``bool`` (not a tensor or an int)."""
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def _int(value: object, name: str) -> int:
    # Any Integral counts (numpy integers too), as an exact Python int for the comparisons
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be an int, got {type(value).__name__}")
    return int(value)


def check_int(value: object, name: str, minimum: int | None = None) -> int:
    """An int (bool excluded), at least ``minimum`` when given."""
    out = _int(value, name)
    if minimum is not None and out < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return out


def check_positive_int(value: object, name: str) -> int:
    """An int >= 1."""
    out = _int(value, name)
    if out <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return out


def check_optional_positive_int(value: object, name: str) -> int | None:
    """None or an int >= 1."""
    return None if value is None else check_positive_int(value, name)


def _real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def check_finite_real(value: object, name: str) -> float:
    """A finite real number."""
    out = _real(value, name)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return out


def check_nonnegative_float(value: object, name: str) -> float:
    """A finite real number >= 0."""
    out = _real(value, name)
    if not (math.isfinite(out) and out >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return out


def check_positive_float(value: object, name: str) -> float:
    """A finite real number > 0 (a radius, a step)."""
    out = _real(value, name)
    if not (math.isfinite(out) and out > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return out


def check_in_range(value: object, name: str, low: float, high: float, *, low_open: bool = False,
                   high_open: bool = False) -> float:
    """A real number in the interval from ``low`` to ``high`` (each end closed unless ``*_open``)."""
    out = _real(value, name)
    above = out > low if low_open else out >= low
    below = out < high if high_open else out <= high
    if not (above and below):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return out


def check_fraction(value: object, name: str, *, allow_zero: bool = False) -> float:
    """A share of a whole that leaves something over: in (0, 1), or [0, 1) with ``allow_zero``."""
    return check_in_range(value, name, 0.0, 1.0, low_open=not allow_zero, high_open=True)


def check_choice(value: object, name: str, choices: Sequence[object]) -> object:
    """One of ``choices``; the message lists the valid ones."""
    if not any(value is c or (isinstance(value, str) and value == c) for c in choices):
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {valid}; got {value!r}")
    return value


def check_float_dtype(value: object, name: str = "dtype") -> torch.dtype:
    """A floating-point ``torch.dtype``."""
    if not isinstance(value, torch.dtype):
        raise ArgumentTypeError(f"{name} must be a torch.dtype, got {type(value).__name__}")
    if not value.is_floating_point:
        raise ValueError(f"{name} must be a floating-point dtype, got {value}")
    return value
