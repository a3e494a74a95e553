"""Sharded evaluation (docs/spec.md "Devices and scale-out"): under 2 gloo ranks ``attack_model``
splits its batches, ``certify`` its radii, ``topk_thickness`` its chunks of path points and COMP /
SUFF / DFFOT / Sensitivity their blocks of samples over the ranks and gather the records, giving
exactly the single-process result."""

from __future__ import annotations

import json

import pytest
import torch

from python_tests.distributed import ddp_cases
from r2et_fast import _distributed
from r2et_fast.cli import main

pytestmark = pytest.mark.distributed


def untimed(value):
    """``value`` without its wall-clock fields, which no two runs share."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def test_sharded_attack_is_the_single_process_attack(launch):
    two = launch("attack")
    one = ddp_cases.attack_job()
    assert two == one  # exact: every batch is the one a single process attacks


def test_sharded_certify_is_the_single_process_certify(launch, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "compas", "--method", "sp", "--epochs", "1", "--max-train", "200",
                 "--out", str(run), "--no-progress", "--device", "cpu"]) == 0
    two = launch("certify", model_path=str(run / "model.pt"), out=str(tmp_path / "two"))
    one = ddp_cases.certify_job(str(run / "model.pt"), str(tmp_path / "one"))
    assert two["world"] == 2
    assert [r["summary"]["eps"] for r in two["records"]] == [0.05, 0.1, 0.2]
    assert untimed(two["records"]) == untimed(one["records"])
    written = [json.loads((tmp_path / name / "l2_saliency.json").read_text()) for name in ("two", "one")]
    assert untimed(written[0]["records"]) == untimed(written[1]["records"])


def test_without_a_launch_the_helpers_are_the_single_process_identity():
    assert (_distributed.rank(), _distributed.world_size(), _distributed.is_main()) == (0, 1, True)
    assert _distributed.map_items([1, 2, 3], lambda v: v * 10) == [10, 20, 30]
    assert _distributed.gather("x") == ["x"]


@pytest.mark.parametrize(("n", "parts"), [(7, 2), (5, 3), (1, 2), (0, 2), (12, 4)])
def test_bounds_tile_the_items_like_tensor_split(n, parts):
    spans = [_distributed.bounds(n, p, parts) for p in range(parts)]
    sizes = [len(chunk) for chunk in torch.arange(n).tensor_split(parts)]
    assert [stop - start for start, stop in spans] == sizes
    assert spans[0][0] == 0 and spans[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


def test_sharded_thickness_and_removal_metrics_are_the_single_process_ones(launch):
    two = launch("thickness_metrics")
    one = ddp_cases.thickness_metrics_job()
    for name in ("thickness", "comp", "suff", "dffot", "dffot_flipped", "sensitivity"):
        assert torch.equal(two[name], one[name]), name
    assert bool(one["sensitivity"].any()) and bool(one["dffot_flipped"].any())  # not all-trivial
    assert 0 < one["thickness"].min() and one["thickness"].max() <= 1
