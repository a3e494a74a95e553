"""One visit to a GPU machine: build the extension in place, run the CUDA tests and the CUDA
benchmarks, and write a report.

Usage: ``python3 scripts/gpu_check.py [OUT_DIR]`` (``make gpu-check``); OUT_DIR defaults to ``$OUT``,
else ``build/gpu-check``. Written there: ``gpu_check.json`` and ``gpu_check.md`` (what ran, the
tests' passed/failed/skipped counts and failures, the CUDA-native vs CUDA-reference benchmark
ratios) and one log per stage.

Meant for a machine with Python, a CUDA build of torch, nvcc and pytest already installed and no
package registry. Every stage has a timeout, and all of them
share one deadline, so the whole check ends within ``TOTAL_S`` seconds. Without a GPU (no torch,
``torch.cuda.is_available()`` False, or no nvcc) it writes a report saying so and exits 0; with a
GPU it exits 1 when a stage fails. Without pytest-benchmark the benchmark stage is skipped with a
note; without hypothesis the fuzz tests skip themselves.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOTAL_S = 330  # the whole check, under 6 minutes with the interpreter's start and make's
BUILD_S, TESTS_S, BENCH_S = 210, 100, 80
MIN_STAGE_S = 20  # a stage with less time left than this is skipped, not started
BENCH_FILES = ("benchmarks/test_bench_rank_metrics.py", "benchmarks/test_bench_thickness_attacks.py")


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def cuda_home() -> str | None:
    """The CUDA toolkit root (the folder whose bin/ holds nvcc), as ``make cuda-check`` finds it."""
    found = subprocess.run(["sh", str(ROOT / "scripts" / "find_cuda_home.sh")], capture_output=True,
                           text=True, check=False)
    return (found.stdout.strip() or None) if found.returncode == 0 else None


# Imported by python_tests/conftest.py, the package and pyproject's warning filters.
TEST_MODULES = ("numpy", "scipy", "tqdm")


def probe() -> dict:
    """What this machine offers; ``reason`` says why the check cannot run (None: it can)."""
    env = {"python": sys.version.split()[0], "cpu_count": os.cpu_count(), "cuda_home": cuda_home(),
           "pytest_benchmark": has_module("pytest_benchmark"), "hypothesis": has_module("hypothesis"),
           "pytest": has_module("pytest"), "reason": None}
    try:
        import torch
        from torch.utils import cpp_extension
    except ImportError as exc:
        env["reason"] = f"torch cannot be imported ({exc})"
        return env
    env.update(torch=torch.__version__, torch_cuda=torch.version.cuda,
               cuda_available=torch.cuda.is_available(), ninja=cpp_extension.is_ninja_available())
    if not env["cuda_available"]:
        build = "a CPU build of torch" if torch.version.cuda is None else "no GPU visible"
        env["reason"] = f"torch.cuda.is_available() is False ({build})"
    elif env["cuda_home"] is None:
        env["reason"] = "no CUDA toolkit (nvcc) found: set CUDA_HOME"
    elif not env["pytest"]:
        env["reason"] = "pytest is not installed"
    elif missing := [m for m in TEST_MODULES if not has_module(m)]:
        env["reason"] = f"python packages the tests import are missing: {', '.join(missing)}"
    else:
        major, minor = torch.cuda.get_device_capability(0)
        env.update(gpu=torch.cuda.get_device_name(0), arch=f"{major}.{minor}")
    return env


def run_stage(name: str, cmd: list[str], log: Path, timeout: float, env: dict | None = None) -> dict:
    """Runs ``cmd`` in the repository with its output in ``log``. On timeout pytest gets SIGINT
    first, so that it still writes its junit and benchmark files, then the group is killed."""
    start = time.monotonic()
    with open(log, "w") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, start_new_session=True)
        status = "ok"
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            status = "timed out"
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    if status == "ok" and proc.returncode != 0:
        status = "failed"
    return {"name": name, "status": status, "returncode": proc.returncode,
            "seconds": round(time.monotonic() - start, 1), "log": log.name,
            "note": f"timeout {timeout:.0f} s" if status == "timed out" else ""}


def skipped(name: str, note: str) -> dict:
    return {"name": name, "status": "skipped", "returncode": None, "seconds": 0.0, "log": None,
            "note": note}


def parse_junit(path: Path) -> dict | None:
    """passed/failed/errors/skipped counts and the failing tests' names from a junit XML file."""
    if not path.is_file():
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return None
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures = []
    for case in root.iter("testcase"):
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), None)
        name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
        if outcome == "failure":
            counts["failed"] += 1
            failures.append(name)
        elif outcome == "error":
            counts["errors"] += 1
            failures.append(f"{name} (error)")
        elif outcome == "skipped":
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return {**counts, "total": sum(counts.values()), "failures": failures}


def benchmark_ratios(path: Path) -> list[dict] | None:
    """Per CUDA benchmark group: medians of the native kernel and of the reference, and their
    ratio (how many times faster the kernel is)."""
    if not path.is_file():
        return None
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    medians: dict[str, dict[str, float]] = {}
    for bench in results.get("benchmarks", []):
        medians.setdefault(bench["group"], {})[bench["name"]] = bench["stats"]["median"]
    rows = []
    for group, ways in sorted(medians.items()):
        native, ref = ways.get("native"), ways.get("reference")
        rows.append({"group": group, "native_s": native, "reference_s": ref,
                     "ratio": ref / native if native and ref else None})
    return rows


def verdict(report: dict) -> str:
    """PASSED only when every stage finished (the benchmarks may be skipped for want of
    pytest-benchmark) and CUDA tests actually ran and all passed."""
    if not report["ran"]:
        return "DID NOT RUN"
    for stage in report["stages"]:
        if stage["status"] in ("failed", "timed out"):
            return "FAILED"
        if stage["status"] == "skipped" and "pytest-benchmark" not in stage["note"]:
            return "FAILED"
    tests = report.get("tests")
    if not tests or tests["passed"] == 0 or tests["failed"] or tests["errors"]:
        return "FAILED"
    return "PASSED"


def markdown(report: dict) -> str:
    lines = [f"# gpu-check: {verdict(report)}", ""]
    if not report["ran"]:
        lines += [f"Not run: {report['reason']}. Nothing was built or tested.", ""]
    env = report["environment"]
    lines += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in env.items() if k != "reason"]
    if report["stages"]:
        lines += ["", "## Stages", "", "| stage | status | seconds | note |", "|---|---|---:|---|"]
        lines += [f"| {s['name']} | {s['status']} | {s['seconds']} | {s['note']} |"
                  for s in report["stages"]]
    tests = report.get("tests")
    if tests:
        lines += ["", "## CUDA tests (`pytest -m cuda`)", "",
                  f"{tests['passed']} passed, {tests['failed']} failed, {tests['errors']} errors, "
                  f"{tests['skipped']} skipped ({tests['total']} in all)."]
        if tests["failures"]:
            lines += ["", "Failed:"] + [f"- `{name}`" for name in tests["failures"]]
    benches = report.get("benchmarks")
    if benches:
        lines += ["", "## CUDA benchmarks (median seconds; ratio = reference / native)", "",
                  "| workload | native | reference | ratio |", "|---|---:|---:|---:|"]
        for b in benches:
            cells = [f"{b[k]:.3g}" if b[k] is not None else "–" for k in ("native_s", "reference_s")]
            ratio = f"{b['ratio']:,.1f}×" if b["ratio"] is not None else "–"
            lines.append(f"| {b['group']} | {cells[0]} | {cells[1]} | {ratio} |")
    return "\n".join(lines) + "\n"


def write_report(out: Path, report: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report = {**report, "verdict": verdict(report)}
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "gpu_check.md").write_text(markdown(report))


def build_stages(out: Path, env: dict, left) -> list[dict]:
    """pip's editable install; if pip itself fails (no pip, a managed environment), setup.py's
    in-place build. Then an import check: the CUDA kernels must be there."""
    build_env = {"MAX_JOBS": str(os.cpu_count() or 16), "TORCH_CUDA_ARCH_LIST": env["arch"],
                 "CUDA_HOME": env["cuda_home"], "R2ET_FAST_FORCE_CUDA": "1"}
    pip = [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-index",
           "--disable-pip-version-check", "-e", "."]
    stages = [run_stage("build (pip install -e .)", pip, out / "build.log", left(BUILD_S), build_env)]
    rest = left(BUILD_S - stages[0]["seconds"])  # both attempts share the build's time
    if stages[0]["status"] == "failed" and rest >= 60:
        inplace = [sys.executable, "setup.py", "build_ext", "--inplace"]
        stages.append(run_stage("build (setup.py build_ext --inplace)", inplace,
                                out / "build-inplace.log", rest, build_env))
    if len(stages) == 2 and stages[1]["status"] == "ok":
        # the in-place build replaced the failed pip install: the build as a whole succeeded
        stages[0]["status"] = "superseded"
        stages[0]["note"] = (stages[0]["note"] + "; " if stages[0]["note"] else "") + "built in place instead"
    if stages[-1]["status"] != "ok":
        return stages
    code = ("import r2et_fast, sys; from r2et_fast._ops import has_kernel, load_error;"
            "sys.exit(0 if has_kernel('ranks', 'cuda') else f'no CUDA kernels: {load_error()}')")
    stages.append(run_stage("import check", [sys.executable, "-c", code], out / "import.log", 60,
                            {"PYTHONPATH": str(ROOT)}))
    return stages


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else os.environ.get("OUT") or ROOT / "build" / "gpu-check")
    start = time.monotonic()

    def left(limit: float) -> float:
        return max(0.0, min(limit, TOTAL_S - (time.monotonic() - start)))

    env = probe()
    report = {"ran": env["reason"] is None, "reason": env["reason"], "environment": env,
              "stages": [], "tests": None, "benchmarks": None}
    if not report["ran"]:
        write_report(out, report)
        print(f"gpu-check: not run: {env['reason']}. Report in {out}/gpu_check.md")
        # without a GPU there is nothing to check; on a GPU machine not running is a failure
        return 1 if env.get("cuda_available") else 0
    out.mkdir(parents=True, exist_ok=True)
    if not env["ninja"]:
        print("gpu-check: ninja not found: the extension compiles one file at a time", file=sys.stderr)
    report["stages"] = build_stages(out, env, left)
    built = report["stages"][-1]["status"] == "ok"
    # pyproject's addopts name pytest-benchmark's flag: without the plugin, replace them.
    addopts = [] if env["pytest_benchmark"] else ["-o", "addopts=-ra"]
    pytest = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *addopts]
    run_env = {"PYTHONPATH": str(ROOT)}
    if not built:
        report["stages"].append(skipped("CUDA tests", "the build failed"))
    elif left(TESTS_S) < MIN_STAGE_S:
        report["stages"].append(skipped("CUDA tests", "no time left"))
    else:
        cmd = pytest + ["-m", "cuda", "-q", "--continue-on-collection-errors",
                        f"--junitxml={out / 'cuda-tests.xml'}", "python_tests"]
        report["stages"].append(run_stage("CUDA tests", cmd, out / "tests.log", left(TESTS_S), run_env))
        report["tests"] = parse_junit(out / "cuda-tests.xml")
    if not built:
        report["stages"].append(skipped("CUDA benchmarks", "the build failed"))
    elif not env["pytest_benchmark"]:
        report["stages"].append(skipped("CUDA benchmarks", "pytest-benchmark is not installed"))
    elif left(BENCH_S) < MIN_STAGE_S:
        report["stages"].append(skipped("CUDA benchmarks", "no time left"))
    else:
        cmd = pytest + ["-m", "cuda", "-q", "--benchmark-enable", "--benchmark-only",
                        f"--benchmark-json={out / 'cuda-benchmarks.json'}", *BENCH_FILES]
        report["stages"].append(run_stage("CUDA benchmarks", cmd, out / "benchmarks.log",
                                          left(BENCH_S), run_env))
        report["benchmarks"] = benchmark_ratios(out / "cuda-benchmarks.json")
    report["seconds"] = round(time.monotonic() - start, 1)
    write_report(out, report)
    print(markdown(report))
    print(f"gpu-check: {verdict(report)}. Report in {out}/gpu_check.md")
    return 0 if verdict(report) == "PASSED" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
