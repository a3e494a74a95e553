"""Public ranking, similarity, regulariser, attack-step and thickness ops, on the native or the
reference backend (docs/spec.md §2, §3, §5, §6).

Every function takes ``(B, n)`` batches of maps (float32 or float64, one row per sample), checks its
arguments (a ``ValueError``/``TypeError`` naming the argument), and runs on the backend chosen by
``backend=`` or, if omitted, by ``r2et_fast.set_backend`` / ``R2ET_FAST_BACKEND``.

Ranking order everywhere: descending value, ties broken by the lower feature index, so ``T_k`` is
always a well-defined set. Correlations of a constant row are undefined and come back as NaN (as
in scipy).

The ops exported here are the public rows of the table in ``r2et_fast/ops/_table.py``; each
wrapper is defined in the submodule its row names.
"""

from __future__ import annotations

from r2et_fast import _autograd, _ops
from r2et_fast._validation import NORMS as NORMS
from r2et_fast.ops._table import OPS, public_names
from r2et_fast.ops.regularizers import GAP_TRANSFORMS as GAP_TRANSFORMS
from r2et_fast.ops.regularizers import PAIR_SELECTIONS as PAIR_SELECTIONS
from r2et_fast.ops.regularizers import pair_gap_at

# Autograd (formulas or fallthroughs) and fake kernels for every op of the loaded extension. Here
# rather than in _ops, which loads the library: the registrations need the table, whose package
# imports the backend switch, which imports _ops.
if _ops.native_available():
    _autograd.register(OPS)

for _op in OPS:
    if _op.public:
        globals()[_op.name] = _op.wrapper
del _op

# pair_gap_at is plain PyTorch over fixed pairs: a public function without a native op.
__all__ = [*public_names(), "pair_gap_at"]
