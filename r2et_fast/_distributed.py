"""Process groups for torchrun launches (docs/spec.md "Devices and scale-out"): set-up from the
torchrun environment, rank and world queries, the threads each rank may use, how samples and work
items split over the ranks, and gathering what the ranks computed.

Without a launch (no ``WORLD_SIZE`` > 1 in the environment, no initialised group) every function
here is the single-process identity: rank 0 of a world of 1, shards that hold everything, gathers
that return their input. So the library's code calls them unconditionally.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def launch_size() -> int:
    """The processes of the launch this process belongs to (torchrun's ``WORLD_SIZE``; 1 without)."""
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


def launched() -> bool:
    """This process was started by torchrun (or another launcher) with more than one process."""
    return launch_size() > 1


# Inside one rank's share of map_items the rank works alone: nested sharding, gathers and DDP
# would wait for ranks busy with other items, so there every function here is single-process.
_ALONE: ContextVar[bool] = ContextVar("r2et_fast_alone", default=False)


@contextlib.contextmanager
def alone() -> Iterator[None]:
    """This process works alone while active (rank 0 of a world of 1, as far as this module says)."""
    token = _ALONE.set(True)
    try:
        yield
    finally:
        _ALONE.reset(token)


def active() -> bool:
    """A process group of more than one process is initialised (and this process is not working
    alone on its share of :func:`map_items`)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1 and not _ALONE.get()


def initialized() -> bool:
    """A process group (of any size) is initialised."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0: the process that writes files."""
    return rank() == 0


def init(device: torch.device | None = None) -> bool:
    """Join the torchrun launch this process belongs to (a no-op without one, or when a group is
    already initialised): NCCL when ``device`` is CUDA, gloo otherwise, rendezvous from the
    torchrun environment (``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``). Returns
    whether a group of more than one process is active."""
    if launched() and dist.is_available() and not dist.is_initialized():
        cuda = device is not None and device.type == "cuda"
        if cuda:
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return active()


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def local_world_size() -> int:
    """Processes of this launch on this machine (torchrun's ``LOCAL_WORLD_SIZE``)."""
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def _user_set_omp() -> bool:
    """OMP_NUM_THREADS was set by the user: torchrun sets it to 1 itself for every launch of more
    than one process per machine that lacks it, which on a machine of many cores leaves all but a
    few idle; that value is taken as torchrun's default, not a choice (``--threads 1`` is one)."""
    value = os.environ.get("OMP_NUM_THREADS")
    if value is None:
        return False
    return not ("TORCHELASTIC_RUN_ID" in os.environ and value == "1" and local_world_size() > 1)


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads and return them: ``threads`` when given; otherwise, under a
    launch of several processes per machine, the available cores divided among them (at least
    one), unless the user set ``OMP_NUM_THREADS``. OpenMP threads of ranks sharing cores
    spin-wait on each other: two ranks at torch's default (every core each) run a step many times
    slower than one rank alone."""
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive int, got {threads!r}")
        torch.set_num_threads(threads)
    elif not _user_set_omp() and local_world_size() > 1:
        torch.set_num_threads(max(1, available_cores() // local_world_size()))
    return torch.get_num_threads()


def barrier() -> None:
    if active():
        dist.barrier()


def bounds(n: int, part: int | None = None, parts: int | None = None) -> tuple[int, int]:
    """[start, stop) of part ``part`` (default this rank) when ``n`` items split into ``parts``
    (default the world) contiguous parts whose sizes differ by at most one, larger first (the
    split of ``torch.tensor_split``)."""
    part = rank() if part is None else part
    parts = world_size() if parts is None else parts
    size, extra = divmod(n, parts)
    start = part * size + min(part, extra)
    return start, start + size + (1 if part < extra else 0)


def batch_mean(value: torch.Tensor, share: float) -> torch.Tensor:
    """The whole batch's mean from each rank's mean over its ``share`` of the rows (an all-reduce
    on the device, no host sync)."""
    total = (value * share).detach().clone()
    dist.all_reduce(total)
    return total


def gather(value: T) -> list[T]:
    """Every rank's ``value`` (any picklable object; tensors travel as CPU tensors), in rank order."""
    if not active():
        return [value]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, _to_cpu(value))
    return out


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    return value


def map_items(items: Sequence[T], compute: Callable[[T], Any],
              progress: Callable[[Iterable[int]], Iterable[int]] | None = None) -> list[Any]:
    """``[compute(item) for item in items]`` with the items split over the ranks (round-robin, so
    similar neighbours spread) and the results gathered on every rank in the items' order. Each
    item is computed by one rank working :func:`alone`. ``progress`` wraps the indices this rank
    computes (a progress bar)."""
    wrap = progress or (lambda indices: indices)
    if not active():
        return [compute(items[i]) for i in wrap(range(len(items)))]
    r, w = rank(), world_size()
    with alone():
        mine = {i: compute(items[i]) for i in wrap(range(r, len(items), w))}
    merged: dict[int, Any] = {}
    for part in gather(mine):
        merged.update(part)
    return [merged[i] for i in range(len(items))]


def unwrap(model: Any) -> Any:
    """The module inside a DistributedDataParallel wrapper (else ``model`` itself)."""
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model
