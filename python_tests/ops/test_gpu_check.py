"""scripts/gpu_check.py without a GPU (a report saying it did not run, exit 0), its stage runner's
timeout, and its report from junit and pytest-benchmark files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("_gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("reason", ["torch.cuda.is_available() is False (no GPU visible)",
                                    "no CUDA toolkit (nvcc) found: set CUDA_HOME"])
def test_without_a_gpu_it_reports_and_exits_0(gpu_check, monkeypatch, tmp_path, capsys, reason):
    monkeypatch.setattr(gpu_check, "probe", lambda: {"python": "3.x", "reason": reason})
    monkeypatch.setattr(gpu_check, "run_stage", lambda *a, **kw: pytest.fail("nothing may run"))
    assert gpu_check.main(["gpu_check.py", str(tmp_path)]) == 0
    assert reason in capsys.readouterr().out
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["ran"] is False and report["reason"] == reason and report["verdict"] == "DID NOT RUN"
    assert report["stages"] == [] and report["tests"] is None
    md = (tmp_path / "gpu_check.md").read_text()
    assert md.startswith("# gpu-check: DID NOT RUN") and reason in md


def test_the_real_probe_here(gpu_check):
    env = gpu_check.probe()
    import torch

    if not torch.cuda.is_available():
        assert "torch.cuda.is_available() is False" in env["reason"]


def test_out_defaults_to_the_environment(gpu_check, monkeypatch, tmp_path):
    monkeypatch.setattr(gpu_check, "probe", lambda: {"reason": "no GPU"})
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    assert gpu_check.main(["gpu_check.py"]) == 0
    assert (tmp_path / "out" / "gpu_check.md").is_file()


def test_a_stage_past_its_timeout_is_stopped(gpu_check, tmp_path):
    stage = gpu_check.run_stage("sleep", [sys.executable, "-c", "import time; time.sleep(60)"],
                                tmp_path / "sleep.log", timeout=0.5)
    assert stage["status"] == "timed out" and stage["seconds"] < 20
    ok = gpu_check.run_stage("print", [sys.executable, "-c", "print('hi')"], tmp_path / "ok.log", 30)
    assert ok["status"] == "ok" and "hi" in (tmp_path / "ok.log").read_text()
    bad = gpu_check.run_stage("fail", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "b.log", 30)
    assert bad["status"] == "failed" and bad["returncode"] == 3


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
<testcase classname="python_tests.ops.test_a" name="test_ok[cuda]"/>
<testcase classname="python_tests.ops.test_a" name="test_bad[cuda]"><failure message="x"/></testcase>
<testcase classname="python_tests.ops.test_b" name="test_skip[cuda]"><skipped message="s"/></testcase>
<testcase classname="python_tests.ops.test_b" name="test_err"><error message="e"/></testcase>
</testsuite></testsuites>
"""


def bench(group, name, median):
    return {"group": group, "name": name, "stats": {"median": median}}


def test_report_from_test_and_benchmark_results(gpu_check, tmp_path):
    (tmp_path / "t.xml").write_text(JUNIT)
    tests = gpu_check.parse_junit(tmp_path / "t.xml")
    assert {k: tests[k] for k in ("passed", "failed", "errors", "skipped", "total")} == {
        "passed": 1, "failed": 1, "errors": 1, "skipped": 1, "total": 4}
    assert tests["failures"] == ["python_tests.ops.test_a::test_bad[cuda]",
                                 "python_tests.ops.test_b::test_err (error)"]
    assert gpu_check.parse_junit(tmp_path / "missing.xml") is None

    results = {"benchmarks": [bench("kendall_tau, cuda", "native", 0.002),
                              bench("kendall_tau, cuda", "reference", 0.5),
                              bench("spearman, cuda", "native", 0.001)]}
    (tmp_path / "b.json").write_text(json.dumps(results))
    ratios = gpu_check.benchmark_ratios(tmp_path / "b.json")
    assert ratios[0] == {"group": "kendall_tau, cuda", "native_s": 0.002, "reference_s": 0.5,
                         "ratio": 250.0}
    assert ratios[1]["ratio"] is None

    stage = {"name": "CUDA tests", "status": "failed", "returncode": 1, "seconds": 3.0, "log": "t.log",
             "note": ""}
    report = {"ran": True, "reason": None, "environment": {"gpu": "H200"}, "stages": [stage],
              "tests": tests, "benchmarks": ratios}
    gpu_check.write_report(tmp_path / "out", report)
    saved = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert saved["verdict"] == "FAILED" and saved["tests"]["failed"] == 1
    md = (tmp_path / "out" / "gpu_check.md").read_text()
    assert md.startswith("# gpu-check: FAILED")
    assert "1 passed, 1 failed, 1 errors, 1 skipped" in md
    assert "`python_tests.ops.test_a::test_bad[cuda]`" in md
    assert "| kendall_tau, cuda | 0.002 | 0.5 | 250.0× |" in md


def test_verdict(gpu_check):
    ok = {"name": "x", "status": "ok", "note": ""}
    passed = {"passed": 3, "failed": 0, "errors": 0}
    no_bench = {"name": "CUDA benchmarks", "status": "skipped", "note": "pytest-benchmark is not installed"}
    late = {"name": "CUDA benchmarks", "status": "skipped", "note": "no time left"}
    verdict = lambda stages, tests: gpu_check.verdict({"ran": True, "stages": stages, "tests": tests})  # noqa: E731
    assert verdict([ok, ok], passed) == "PASSED"
    assert verdict([ok, no_bench], passed) == "PASSED"
    assert verdict([ok, late], passed) == "FAILED"
    assert verdict([ok], {"passed": 0, "failed": 0, "errors": 0}) == "FAILED"  # nothing ran on the GPU
    assert verdict([ok], None) == "FAILED"


def test_a_failed_pip_install_replaced_by_the_in_place_build_passes(gpu_check, monkeypatch, tmp_path):
    calls = []

    def fake_stage(name, cmd, log, timeout, env=None):
        calls.append(name)
        status = "failed" if name.startswith("build (pip") else "ok"
        return {"name": name, "status": status, "seconds": 1.0, "note": ""}

    monkeypatch.setattr(gpu_check, "run_stage", fake_stage)
    env = {"arch": "9.0", "cuda_home": "/usr/local/cuda"}
    stages = gpu_check.build_stages(tmp_path, env, lambda limit: limit)
    assert [s["status"] for s in stages] == ["superseded", "ok", "ok"]
    assert calls[1].startswith("build (setup.py")
    report = {"ran": True, "stages": stages, "tests": {"passed": 2, "failed": 0, "errors": 0}}
    assert gpu_check.verdict(report) == "PASSED"


def test_not_running_on_a_gpu_machine_exits_1(gpu_check, monkeypatch, tmp_path):
    reason = "python packages the tests import are missing: scipy"
    probe = {"python": "3.x", "reason": reason, "cuda_available": True}
    monkeypatch.setattr(gpu_check, "probe", lambda: probe)
    monkeypatch.setattr(gpu_check, "run_stage", lambda *a, **kw: pytest.fail("nothing may run"))
    assert gpu_check.main(["gpu_check.py", str(tmp_path)]) == 1
    assert json.loads((tmp_path / "gpu_check.json").read_text())["reason"] == reason
