"""Launch a job of ``ddp_cases`` in 2 gloo processes on this CPU (``torch.multiprocessing``)."""

from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as mp

from python_tests.distributed import ddp_cases


def launcher(folder):
    calls = iter(range(1000))

    def run(job: str, world: int = 2, **kwargs):
        n = next(calls)
        out, init = folder / f"result{n}.pt", folder / f"init{n}"
        mp.spawn(ddp_cases.run, args=(world, str(init), job, str(out), kwargs), nprocs=world)
        return torch.load(out, weights_only=False)

    return run


@pytest.fixture
def launch(tmp_path):
    """``launch(job, **kwargs)``: rank 0's result of ``job`` run by 2 processes; a rank that dies
    raises ``mp.ProcessExitedException`` (the other is terminated)."""
    return launcher(tmp_path)


@pytest.fixture(scope="module")
def launch_once(tmp_path_factory):
    """``launch`` for module-scoped fixtures: one launch serving several tests."""
    return launcher(tmp_path_factory.mktemp("launch"))
