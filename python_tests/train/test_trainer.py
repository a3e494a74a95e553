"""The training loop: every method runs, determinism, checkpoints (weights_only), resume after a
kill reproduces the uninterrupted run exactly, and clear refusals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from r2et_fast.datasets import make_tabular
from r2et_fast.train import METHODS, TrainConfig, load_model, train

SMALL = dict(epochs=2, batch_size=64, k=4)


@pytest.fixture(scope="module")
def data():
    return make_tabular(n_samples=400, n_features=10, seed=0)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains(data, method):
    result = train(data, TrainConfig(method=method, **SMALL), progress=False)
    assert len(result.history) == 2
    last = result.history[-1]
    assert all(torch.isfinite(torch.tensor(v)) for k, v in last.items() if isinstance(v, float))
    assert 0.5 <= last["val_auc"] <= 1.0
    expected = {"est_h": "hess", "exact_h": "hess_exact", "ssr": "ssr", "r2et": "gap", "r2et_mm_noh": "gap"}
    if method in expected:
        assert expected[method] in last


def test_r2et_is_deterministic_and_differs_from_vanilla(data):
    cfg = TrainConfig(method="r2et", **SMALL)
    a, b = train(data, cfg, progress=False), train(data, cfg, progress=False)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)
    v = train(data, TrainConfig(method="vanilla", **SMALL), progress=False)
    assert not torch.equal(next(v.model.parameters()), next(a.model.parameters()))


def test_exact_h_refuses_large_inputs():
    big = make_tabular(n_samples=100, n_features=80, n_informative=3)
    with pytest.raises(ValueError, match="exact_h_max_features"):
        train(big, TrainConfig(method="exact_h", epochs=1), progress=False)


def test_config_errors():
    with pytest.raises(ValueError, match="method must be one of"):
        TrainConfig(method="r3et")
    with pytest.raises(ValueError, match="lambda_gap must be >= 0"):
        TrainConfig(lambda_gap=-1.0)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        TrainConfig(epochs=-1)


def test_checkpoint_and_model_files(data, tmp_path):
    cfg = TrainConfig(method="sp", **SMALL)
    result = train(data, cfg, out_dir=tmp_path, progress=False, dataset_name="synthetic")
    assert (tmp_path / "log.json").is_file() and (tmp_path / "checkpoint.pt").is_file()
    torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # plain tensors and containers only
    model, cfg2, meta = load_model(tmp_path / "model.pt")
    assert cfg2 == cfg and meta["dataset"] == "synthetic"
    torch.testing.assert_close(model(data.x_test), result.model(data.x_test))
    with pytest.raises(ValueError, match="another configuration"):
        train(data, TrainConfig(method="vanilla", **SMALL), out_dir=tmp_path, progress=False)


def test_resume_after_kill_reproduces_the_uninterrupted_run(data, tmp_path):
    """Kill a training subprocess once its first checkpoint exists, resume, compare parameters."""
    cfg = dict(method="r2et", epochs=6, batch_size=16, k=4)
    script = textwrap.dedent(f"""
        from r2et_fast.datasets import make_tabular
        from r2et_fast.train import TrainConfig, train
        data = make_tabular(n_samples=400, n_features=10, seed=0)
        train(data, TrainConfig(**{cfg!r}), out_dir={str(tmp_path / "run")!r}, progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    state = torch.load(checkpoint, weights_only=True)
    assert state["epoch"] < 6, "the run finished before it could be killed"
    resumed = train(data, TrainConfig(**cfg), out_dir=tmp_path / "run", progress=False)
    straight = train(data, TrainConfig(**cfg), progress=False)
    assert [h["epoch"] for h in resumed.history] == list(range(1, 7))
    for p, q in zip(resumed.model.parameters(), straight.model.parameters()):
        assert torch.equal(p, q)
