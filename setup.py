"""Build script for the r2et_fast C++/CUDA extension.

The extension is CPU-only when the installed torch has no CUDA support; with a CUDA build of torch
and a CUDA toolkit it also compiles ``csrc/cuda``. ``R2ET_FAST_FORCE_CUDA=1`` forces the CUDA build
(used by ``make cuda-check`` on machines without a GPU), ``R2ET_FAST_NO_CUDA=1`` disables it.
"""

import glob
import os
import sys

from setuptools import find_packages, setup
from torch.utils import cpp_extension

ROOT = os.path.dirname(os.path.abspath(__file__))


def _want_cuda() -> bool:
    if os.environ.get("R2ET_FAST_NO_CUDA") == "1":
        return False
    if os.environ.get("R2ET_FAST_FORCE_CUDA") == "1":
        return True
    import torch

    return torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None


def _nvidia_include_dirs() -> list[str]:
    # pip's CUDA torch ships CUDA headers (cusparse, cublas, ...) under site-packages/nvidia/*.
    dirs = []
    for base in sys.path:
        dirs += glob.glob(os.path.join(base, "nvidia", "*", "include"))
        dirs += glob.glob(os.path.join(base, "nvidia", "cu*", "*", "include"))
    return sorted(set(d for d in dirs if os.path.isdir(d)))


def _extension():
    sources = sorted(glob.glob("csrc/ops/*.cpp") + glob.glob("csrc/cpu/*.cpp"))
    cxx_flags = ["-O3", "-fvisibility=hidden"]
    # OpenMP drives at::parallel_for in torch's CPU wheels.
    cxx_flags.append("-fopenmp")
    include_dirs = [os.path.join(ROOT, "csrc")]
    if _want_cuda():
        sources += sorted(glob.glob("csrc/cuda/*.cu"))
        include_dirs += _nvidia_include_dirs()
        return cpp_extension.CUDAExtension(
            "r2et_fast._C",
            sources,
            include_dirs=include_dirs,
            define_macros=[("R2ET_FAST_WITH_CUDA", None)],
            extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "--expt-relaxed-constexpr"]},
            extra_link_args=["-fopenmp"],
        )
    return cpp_extension.CppExtension(
        "r2et_fast._C",
        sources,
        include_dirs=include_dirs,
        extra_compile_args={"cxx": cxx_flags},
        extra_link_args=["-fopenmp"],
    )


setup(
    packages=find_packages(include=["r2et_fast", "r2et_fast.*"]),
    ext_modules=[_extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
