"""Plain-PyTorch twins of every native kernel.

They are the oracle for the kernel tests and the baseline of the benchmarks: batched and vectorised
as far as plain PyTorch allows, and written to be read. They assume validated input (the public
wrappers in ``r2et_fast.ops`` check it). The twin of op ``name`` is
``r2et_fast.reference.<module>.<name>``, the module named by its row of the ops table
(``r2et_fast/ops/_table.py``); every twin is also exported here under the op's name.
"""

from r2et_fast.ops._table import OPS, names

for _op in OPS:
    globals()[_op.name] = _op.twin
del _op

__all__ = names()
