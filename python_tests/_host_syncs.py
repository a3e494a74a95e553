"""Counting host reads of tensor values, the CPU-side proof of docs/spec.md "Devices and scale-out"
("no host sync in a training step beyond one per epoch, none in the attack loop beyond the
early-stop check").

On a GPU every read of a tensor's values by Python (``.item()``, ``bool(t)``, ``.tolist()``, a numpy
conversion, ...) waits for the device; on the CPU the same calls happen, only cheaply. So the
count of those calls during a region, made on any device, is the number of host syncs it would
cost on a GPU. :func:`count_host_syncs` patches the reading entry points of ``torch.Tensor`` for
the duration of a ``with`` block and records each call made by the block's thread on a tensor
with values (numel >= 1), with the stack that made it.

Not seen: reads made inside C++ (the native kernels' own value checks, ``TORCH_CHECK(...
.item<bool>())``), and ops that sync without a Python read (``nonzero``, boolean-mask indexing).
"""

from __future__ import annotations

import contextlib
import threading
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

# The entry points by which Python reads a tensor's values. ``__format__`` (an f-string of a 0-d
# tensor) reads through ``.item()``; ``__array__`` through ``.numpy()``; the guard below counts such
# a nested read once, at the outermost call.
READS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy", "__array__",
         "__format__")

# Reads made by these modules read tensors that live on the host by design, never a device sync:
# torch.optim keeps the step counters of a non-capturable optimizer (Adam's ``state["step"]``) on
# the CPU and reads them every step.
HOST_STATE = ("torch/optim/",)


@dataclass
class HostSyncs:
    """The reads seen in one region: ``count`` and, per read, where it was made (innermost
    frames of the package under test first)."""

    sites: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.sites)

    def summary(self) -> str:
        """Each distinct site with its number of reads, for an assertion message."""
        return "\n".join(f"{n} x {site}" for site, n in Counter(self.sites).most_common())


_state = threading.local()


def _site(stack: traceback.StackSummary) -> str | None:
    """Where a read was made: the r2et_fast frames of the stack (None: a host-state read)."""
    if any(any(part in frame.filename for part in HOST_STATE) for frame in stack):
        return None
    ours = [f"{frame.filename.rsplit('r2et_fast/', 1)[-1]}:{frame.lineno} {frame.name}"
            for frame in stack if "/r2et_fast/" in frame.filename and "python_tests" not in frame.filename]
    return " <- ".join(reversed(ours[-3:])) if ours else stack[-1].filename + f":{stack[-1].lineno}"


def _counting(name: str, original):
    def read(self, *args, **kwargs):
        record: HostSyncs | None = getattr(_state, "record", None)
        if record is None or getattr(_state, "inside", False):
            return original(self, *args, **kwargs)
        _state.inside = True  # a read made by this read (``__array__`` -> ``numpy``) is the same sync
        try:
            if self.numel() >= 1:
                site = _site(traceback.extract_stack()[:-1])
                if site is not None:
                    record.sites.append(f"{name}: {site}")
            return original(self, *args, **kwargs)
        finally:
            _state.inside = False

    read.__name__ = name
    return read


@contextlib.contextmanager
def count_host_syncs() -> Iterator[HostSyncs]:
    """``with count_host_syncs() as syncs: ...`` -> ``syncs.count`` host reads in the block.

    The methods are patched on ``torch.Tensor`` (so also on ``nn.Parameter`` and the other
    subclasses) and restored on exit, even on an exception; only this thread's reads are counted.
    """
    if getattr(_state, "record", None) is not None:
        raise RuntimeError("count_host_syncs() regions do not nest")
    saved = {name: torch.Tensor.__dict__.get(name) for name in READS}
    record = HostSyncs()
    try:
        for name in READS:
            setattr(torch.Tensor, name, _counting(name, getattr(torch.Tensor, name)))
        _state.record = record
        yield record
    finally:
        _state.record = None
        for name, original in saved.items():
            if original is None:  # inherited from the C base class: remove the patch to uncover it
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, original)
