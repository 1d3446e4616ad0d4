# deblurlab: `make report` regenerates the study, `make test` runs the tests.
# Both create the virtual environment and install everything on first use.
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= default
PY := $(VENV)/bin/python
STAMP := $(VENV)/.deblurlab-installed

.PHONY: setup report test lab bench check-platforms clean-runs

UV_SPEC ?= uv>=0.13,<0.14

# The lock installs with uv (pip install -r requirements.txt gives the same environment, slower).
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(UV_SPEC)"
	$(VENV)/bin/uv pip install --quiet --python $(PY) -r requirements.txt
	$(VENV)/bin/uv pip install --quiet --python $(PY) --no-deps -e .
	$(PY) -m deblurlab.kernel
	touch $@

setup: $(STAMP)

## Regenerate every notebook, figure and table, then report/report.html and report/report.pdf.
report: $(STAMP)
	$(PY) -m deblurlab.run --profile $(PROFILE)

TEST_OUTPUT := build/test-output

## Ruff (format and lint), the unit tests, every notebook at the smoke size under nbval, then the
## JAX subset (tests marked jax, on KERAS_BACKEND=jax with TensorFlow blocked from import, as in a
## venv without it), then
## the report built from what the smoke-size notebooks wrote (so every figure, table and result it
## references must exist).
test: $(STAMP)
	$(VENV)/bin/ruff format --check --quiet .
	$(VENV)/bin/ruff check --quiet .
	rm -rf $(TEST_OUTPUT)
	DEBLURLAB_TEST_OUTPUT=$(CURDIR)/$(TEST_OUTPUT) $(PY) -m pytest -n 2 --dist loadscope tests notebooks --nbval-lax --nbval-kernel-name deblurlab
	KERAS_BACKEND=jax DEBLURLAB_BLOCK_TF=1 $(PY) -m pytest -n 2 --dist loadscope -m jax tests
	$(PY) -m deblurlab.run --merge $(TEST_OUTPUT)/gw* $(TEST_OUTPUT)/main --out $(TEST_OUTPUT)/report

## JupyterLab on the notebooks, with the project's kernel.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

## Time every registered model and the data pipelines -> report/results/bench_<cpu|gpu>.json.
## Options through BENCH_ARGS, e.g. make bench BENCH_ARGS="--quick --models resunet1".
bench: $(STAMP)
	$(PY) -m deblurlab.perf $(BENCH_ARGS)

## Needs the package index: requirements.txt still resolves, wheels only, with exactly its locked
## versions, on Linux x86-64/aarch64, macOS arm64 and Windows x86-64 for Python 3.11-3.13, and is
## the lock of requirements.in. Installs uv into a temporary venv if it is not on PATH.
check-platforms:
	bash tools/check_platforms.sh

clean-runs:
	rm -rf runs/
