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
        try:
            mp.spawn(ddp_cases.run, args=(world, str(init), job, str(out), kwargs), nprocs=world)
        except mp.ProcessExitedException as exc:
            # gloo now and then aborts a rank while its threads shut down after the job ("terminate
            # called without an active exception"): rank 0 writes the result only after the job's
            # last collective, so a written result with no rank's error is the whole job's
            finished = out.exists() and not any(folder.glob(f"{out.name}.rank*.err"))
            if exc.signal_name != "SIGABRT" or not finished:
                raise
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
