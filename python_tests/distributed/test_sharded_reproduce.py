"""Sharded reproduction (docs/spec.md "Devices and scale-out"): two gloo ranks split the methods,
their studies and the k grid of a --quick ``reproduce`` and rank 0 writes the ``results.json`` of
one process."""

from __future__ import annotations

import json

import pytest

from python_tests.distributed import ddp_cases

pytestmark = pytest.mark.distributed


def test_two_ranks_reproduce_the_one_process_results(launch, tmp_path):
    two = launch("reproduce", out=str(tmp_path / "two"))
    one = ddp_cases.reproduce_job(str(tmp_path / "one"))
    written = {name: json.loads((tmp_path / name / "results.json").read_text()) for name in ("two", "one")}
    for results in (two, one, *written.values()):
        results["config"].pop("out")
    assert written["two"] == written["one"]
    assert json.loads(json.dumps(two)) == written["two"]  # rank 0 returns what it wrote
    assert set(written["two"]["datasets"]["compas"]["table1"]) == {"vanilla", "r2et", "est_h"}
    assert (tmp_path / "two" / "report.md").is_file()
    # both ranks trained: the run folders of the methods are shared out round-robin, and each
    # holds a model trained by one process alone (no DDP world size in its key)
    runs = tmp_path / "two" / "runs" / "compas" / "seed0"
    keys = [json.loads(p.read_text()) for p in runs.rglob("model_key.json")]
    assert keys and all("world_size" not in key for key in keys)
