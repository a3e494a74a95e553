"""``--device`` and ``--threads`` on every command, the threads each rank takes, and a torchrun
launch of ``r2et-fast train`` (docs/spec.md "Devices and scale-out")."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from r2et_fast import _distributed
from r2et_fast.cli import build_parser, main
from r2et_fast.train import load_model

ROOT = Path(__file__).resolve().parents[2]


def commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices


@pytest.mark.parametrize("name", list(commands()))
def test_every_command_takes_device_and_threads(name):
    options = {o for a in commands()[name]._actions for o in a.option_strings}
    assert {"--device", "--threads"} <= options


@pytest.mark.parametrize(("argv", "message"), [
    (["info", "--device", "gpu"], "--device"),
    (["info", "--device", "cuda:x"], "--device"),
    (["info", "--threads", "0"], "--threads"),
    (["list", "--threads", "two"], "--threads"),
])
def test_bad_placement_is_one_line_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and "\n" not in err and message in err and "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["info", "--device", "cuda"])
    assert exit_.value.code == 2 and "CUDA is not available" in capsys.readouterr().err


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_threads_option_sets_torch_threads(threads, capsys):
    assert main(["info", "--threads", "1"]) == 0
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize(("env", "expected"), [
    ({"LOCAL_WORLD_SIZE": "2"}, "share"),                       # a launch: the cores divided
    ({"LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}, None),  # the user's choice stands
    ({"LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "1", "TORCHELASTIC_RUN_ID": "x"}, "share"),  # torchrun's
    ({"LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "2", "TORCHELASTIC_RUN_ID": "x"}, None),
    ({}, None),                                                 # no launch: torch's default
])
def test_each_rank_takes_its_share_of_the_cores(threads, monkeypatch, env, expected):
    for name in ("LOCAL_WORLD_SIZE", "OMP_NUM_THREADS", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    torch.set_num_threads(7)  # a value no rule below gives on a small machine
    got = _distributed.set_threads()
    share = max(1, _distributed.available_cores() // 2)
    assert got == (share if expected == "share" else 7)
    assert _distributed.set_threads(3) == 3  # --threads wins over everything


def torchrun() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "torch.distributed.run"]


@pytest.mark.distributed
@pytest.mark.skipif(shutil.which("true") is None, reason="needs a POSIX shell environment")
def test_torchrun_train_writes_one_model_equal_to_one_process(tmp_path):
    args = ["train", "--dataset", "compas", "--method", "r2et", "--max-train", "160", "--epochs", "2",
            "--batch-size", "32", "--no-progress", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    # --standalone: a rendezvous on a free local port; a new session, so that a timeout can end
    # the workers with the launcher
    proc = subprocess.Popen([*torchrun(), "--standalone", "--nproc_per_node", "2", "-m", "r2et_fast.cli",
                             *args, "--out", str(tmp_path / "two")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    launched = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert launched.returncode == 0, launched.stderr[-2000:]
    assert launched.stdout.count("trained r2et") == 1  # rank 1 prints nothing
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    two, one = (load_model(tmp_path / name / "model.pt")[0] for name in ("two", "one"))
    for a, b in zip(two.parameters(), one.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)  # float32: the ranks' sums round apart
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["checkpoint.pt", "log.json", "model.pt"]
