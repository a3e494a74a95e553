"""The toolkit's one validation module: value first, the argument's name in every message, a wrong
kind of object a TypeError (that is also a ValueError), a bad value a ValueError."""

from __future__ import annotations

import pytest
import torch

from r2et_fast import _validation as v


def test_norms_are_defined_once():
    assert v.NORMS == ("l2", "linf")
    from r2et_fast import thickness
    from r2et_fast.attacks import _base

    assert thickness.NORMS is v.NORMS and _base.NORMS is v.NORMS


def test_wrong_kind_is_both_type_and_value_error():
    err = v.ArgumentTypeError("x")
    assert isinstance(err, TypeError) and isinstance(err, ValueError)


@pytest.mark.parametrize("check,good,expected", [
    (v.check_bool, True, True),
    (v.check_int, 3, 3),
    (v.check_positive_int, 2, 2),
    (v.check_optional_positive_int, None, None),
    (v.check_finite_real, -1, -1.0),
    (v.check_nonnegative_float, 0, 0.0),
    (v.check_positive_float, 0.5, 0.5),
    (v.check_fraction, 0.25, 0.25),
    (v.check_float_dtype, torch.float64, torch.float64),
])
def test_checks_return_the_value(check, good, expected):
    out = check(good, "arg")
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize("check,bad,exc,match", [
    (v.check_bool, 1, TypeError, "flag must be a bool"),
    (v.check_int, 1.5, TypeError, "count must be an int"),
    (v.check_int, True, TypeError, "count must be an int"),
    (v.check_positive_int, 0, ValueError, "count must be positive"),
    (v.check_positive_int, "3", TypeError, "count must be an int"),
    (v.check_optional_positive_int, -2, ValueError, "count must be positive"),
    (v.check_finite_real, float("inf"), ValueError, "x must be a finite number"),
    (v.check_nonnegative_float, -0.1, ValueError, "eps must be a finite number >= 0"),
    (v.check_nonnegative_float, float("nan"), ValueError, "eps must be a finite number >= 0"),
    (v.check_nonnegative_float, "0.1", TypeError, "eps must be a real number"),
    (v.check_positive_float, 0.0, ValueError, "eps must be a finite number > 0"),
    (v.check_fraction, 0.0, ValueError, r"val_fraction must be a number in \(0, 1\)"),
    (v.check_fraction, 1.0, ValueError, r"val_fraction must be a number in \(0, 1\)"),
    (v.check_float_dtype, torch.int64, ValueError, "dtype must be a floating-point dtype"),
    (v.check_float_dtype, "float32", TypeError, "dtype must be a torch.dtype"),
    (v.check_tensor, [1.0], TypeError, "t must be a torch.Tensor"),
    (v.check_callable, 3, TypeError, "model must be callable"),
])
def test_bad_values_name_the_argument(check, bad, exc, match):
    name = match.split(" ")[0]
    with pytest.raises(exc, match=match):
        check(bad, name)


def test_int_minimum_fraction_zero_range_and_choice():
    assert v.check_int(0, "seed", 0) == 0
    with pytest.raises(ValueError, match="seed must be an int >= 0, got -1"):
        v.check_int(-1, "seed", 0)
    assert v.check_fraction(0, "test_fraction", allow_zero=True) == 0.0
    with pytest.raises(ValueError, match=r"signal must be a number in \[0, 1\], got 2"):
        v.check_in_range(2, "signal", 0.0, 1.0)
    assert v.check_in_range(1, "signal", 0.0, 1.0) == 1.0
    assert v.check_choice("l2", "norm", v.NORMS) == "l2"
    with pytest.raises(ValueError, match="norm must be one of 'l2', 'linf'; got 'l1'"):
        v.check_choice("l1", "norm", v.NORMS)
    assert v.check_choice(None, "reduce_channels", v.REDUCE_CHOICES) is None


def test_tensor_checks():
    x = torch.zeros(2, 3)
    v.check_maps(x, "maps")
    v.check_batch(x, "x")
    assert v.check_inputs(torch.zeros(4), "inputs").shape == (4,)
    assert v.as_tensor(x.numpy(), "labels").shape == (2, 3)
    with pytest.raises(TypeError, match="maps must be float32 or float64"):
        v.check_maps(x.long(), "maps")
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        v.check_batch(torch.full((2, 3), float("nan")), "x")
    with pytest.raises(ValueError, match="k must satisfy"):
        v.check_k(3, 3)
    with pytest.raises(ValueError, match="a and b must have the same shape"):
        v.check_pair(x, torch.zeros(2, 4))
