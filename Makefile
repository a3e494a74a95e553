# The README's two commands: `make run` and `make test`. Both create the environment when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CUDA_VENV ?= .venv-cuda
CUDA_PY := $(CUDA_VENV)/bin/python
# The toolkit root: the folder whose bin/ holds nvcc and lib64/ libcudart (see the script).
CUDA_HOME ?= $(shell sh scripts/find_cuda_home.sh)
CUDA_ARCH ?= 9.0
CSRC := $(shell find csrc -type f) setup.py pyproject.toml

.PHONY: env run demo test fuzz lint docs cuda-check gpu-check bench clean

$(VENV)/.deps: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Editable install; compiles the extension (CPU, or CPU + CUDA with a CUDA torch).
$(VENV)/.built: $(VENV)/.deps $(CSRC)
	MAX_JOBS=2 $(PY) -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
	touch $@

env: $(VENV)/.built

# The main job: Vanilla and R2ET on Adult, then ERAttack on the whole test split (a few minutes).
run: env
	$(VENV)/bin/r2et-fast compare --dataset adult --methods vanilla r2et --epochs 10 \
		--steps 200 --alpha 0.005 --out runs

lint: $(VENV)/.deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy r2et_fast

test: env lint
	$(PY) -m pytest -q

# The documentation site (mkdocs.yml, docs/): warnings are errors; offline; output in build/site.
docs: env
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -f mkdocs.yml -d build/site

# The deep fuzz profile: 10,000 Hypothesis examples per native-vs-twin test, per fused-objective
# agreement test and per sound-bound soundness test (2,500 for the CNN one; not run by CI).
fuzz: env
	R2ET_FAST_FUZZ_EXAMPLES=10000 $(PY) -m pytest -q python_tests/ops/test_fuzz_native_vs_reference.py \
		python_tests/engine/test_fused_mlp.py python_tests/engine/test_fused_mlp_native.py \
		python_tests/engine/test_fused_saliency.py python_tests/engine/test_fused_attack.py \
		python_tests/bounds/test_sound.py

bench: env
	$(PY) -m pytest benchmarks --benchmark-enable --benchmark-only \
		--benchmark-json=benchmarks/results.json -q
	$(PY) benchmarks/report.py benchmarks/results.json

$(CUDA_VENV)/.deps: requirements-cuda.txt
	$(PYTHON) -m venv $(CUDA_VENV)
	$(CUDA_PY) -m pip install -q --disable-pip-version-check -r requirements-cuda.txt
	touch $@

# Proves csrc/cuda compiles and links against the CUDA build of torch, then imports it.
cuda-check: $(CUDA_VENV)/.deps
	@test -n "$(CUDA_HOME)" || { echo "cuda-check: nvcc not found (set CUDA_HOME)"; exit 1; }
	CUDA_HOME=$(CUDA_HOME) TORCH_CUDA_ARCH_LIST=$(CUDA_ARCH) R2ET_FAST_FORCE_CUDA=1 MAX_JOBS=2 \
		$(CUDA_PY) setup.py -q build_ext --build-lib build/cuda-check --build-temp build/cuda-check-tmp
	$(CUDA_PY) scripts/cuda_check.py build/cuda-check

# On a GPU machine (python3 with a CUDA torch, nvcc, pytest; no registry): builds in place, runs the
# CUDA tests and benchmarks, writes gpu_check.{json,md} to $(OUT) (default build/gpu-check), all
# within 6 minutes. Without a GPU it writes a report saying so and succeeds. It uses the venv's
# Python where there is one (never copied to a GPU machine), else python3.
GPU_PYTHON ?= $(if $(wildcard $(PY)),$(PY),$(PYTHON))
gpu-check:
	$(GPU_PYTHON) scripts/gpu_check.py $(or $(OUT),build/gpu-check)

clean:
	rm -rf build r2et_fast/_C*.so *.egg-info
