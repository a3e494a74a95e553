"""The backend switch: explicit choice, environment variable, context manager, and the package
working (with one warning) when the extension is absent."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import r2et_fast
from python_tests.conftest import requires_native

PACKAGE = Path(r2et_fast.__file__).parent


def run_python(code: str, env_extra: dict | None = None, cwd: str | None = None,
               pythonpath: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("R2ET_FAST_BACKEND", None)
    env.update(env_extra or {})
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120)


@requires_native
def test_auto_selects_native_when_built():
    assert r2et_fast.backend() == "native"


def test_use_backend_switches_and_restores():
    before = r2et_fast.backend()
    with r2et_fast.use_backend("reference"):
        assert r2et_fast.backend() == "reference"
    assert r2et_fast.backend() == before


def test_set_backend_rejects_unknown_names():
    with pytest.raises(ValueError, match="backend must be one of"):
        r2et_fast.set_backend("gpu")


def test_environment_variable_selects_backend():
    out = run_python("import r2et_fast; print(r2et_fast.backend())", {"R2ET_FAST_BACKEND": "reference"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "reference"
    bad = run_python("import r2et_fast, torch; r2et_fast.mse(torch.ones(1, 2), torch.ones(1, 2))",
                     {"R2ET_FAST_BACKEND": "turbo"})
    assert bad.returncode != 0 and "R2ET_FAST_BACKEND must be one of" in bad.stderr


def test_package_works_without_the_extension(tmp_path):
    """A copy of the package without the compiled library imports, warns once, and computes."""
    shutil.copytree(PACKAGE, tmp_path / "r2et_fast", ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    code = (
        # an editable install's import hook would otherwise find the built library in the checkout
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path\n"
        "                    if '__editable__' not in str(getattr(f, '__module__', ''))]\n"
        "import warnings, torch\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    import r2et_fast\n"
        "    import r2et_fast.ops, r2et_fast.metrics, r2et_fast.explain\n"
        "print(len([x for x in w if 'native extension could not be loaded' in str(x.message)]))\n"
        "print(r2et_fast.__file__)\n"
        "print(r2et_fast.backend(), r2et_fast.native_available())\n"
        "a = torch.tensor([[3.0, 1.0, 2.0]]); b = torch.tensor([[3.0, 2.0, 1.0]])\n"
        "print(float(r2et_fast.kendall_tau(a, b)))\n"
        "try:\n"
        "    r2et_fast.mse(a, b, backend='native')\n"
        "except RuntimeError as e:\n"
        "    print('native refused:', 'unavailable' in str(e) or 'cannot run' in str(e))\n"
    )
    out = run_python(code, cwd=str(tmp_path), pythonpath=str(tmp_path))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "1"  # exactly one warning
    assert lines[1].startswith(str(tmp_path))  # the copy, not the installed package
    assert lines[2] == "reference False"
    assert abs(float(lines[3]) - 1 / 3) < 1e-6
    assert lines[4] == "native refused: True"


@requires_native
def test_native_is_refused_on_a_device_without_kernels():
    from r2et_fast import _backend
    with pytest.raises(RuntimeError, match="cannot run r2et_fast::mse on xpu"):
        _backend.resolve("mse", "xpu", "native")
    assert _backend.resolve("mse", "xpu", "auto") == "reference"


@requires_native
def test_meta_tensors_take_the_native_route_through_the_fake_kernels():
    a = torch.ones(2, 3, device="meta")
    out = r2et_fast.mse(a, a, backend="native")
    assert out.is_meta and out.shape == (2,)
