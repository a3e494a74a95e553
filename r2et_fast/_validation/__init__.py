"""Argument checks shared by the whole toolkit: one module, one argument order.

Every check takes the value first and its name second, ``check_x(value, name, ...)``, and names
the argument at the start of its message. A wrong kind of object raises :class:`ArgumentTypeError`
(a ``TypeError`` that is also a ``ValueError``, see its docstring); a right kind with a bad value
raises ``ValueError``. Checks that convert (``check_int``, ``check_fraction``, ...) return the
checked value as a plain Python or torch object.

``NORMS`` are the perturbation balls every attack, op and experiment accepts (docs/spec.md §5, §7).
"""

from ._labels import as_labels, check_label_range
from ._model import (
    REDUCE_CHOICES,
    check_callable,
    check_model_output,
    check_reduce_channels,
    check_target_range,
    prepare_baseline,
    prepare_target,
)
from ._scalars import (
    ArgumentTypeError,
    check_bool,
    check_choice,
    check_finite_real,
    check_float_dtype,
    check_fraction,
    check_in_range,
    check_int,
    check_nonnegative_float,
    check_optional_positive_int,
    check_positive_float,
    check_positive_int,
)
from ._tensors import (
    FLOAT_DTYPES,
    as_tensor,
    check_batch,
    check_finite,
    check_float,
    check_inputs,
    check_k,
    check_maps,
    check_pair,
    check_tensor,
    is_symbolic,
    trusted_values,
    values_trusted,
)

# The perturbation norms every public function accepts.
NORMS = ("l2", "linf")

__all__ = [
    "FLOAT_DTYPES", "NORMS", "REDUCE_CHOICES", "ArgumentTypeError", "as_labels", "as_tensor",
    "check_batch", "check_label_range", "trusted_values", "values_trusted", "check_bool",
    "check_callable", "check_choice",
    "check_finite", "check_finite_real", "check_float",
    "check_float_dtype", "check_fraction", "check_in_range", "check_inputs", "check_int", "check_k",
    "check_maps", "check_model_output", "check_nonnegative_float", "check_optional_positive_int",
    "check_pair", "check_positive_float", "check_positive_int", "check_reduce_channels",
    "check_target_range", "check_tensor", "is_symbolic", "prepare_baseline", "prepare_target",
]
