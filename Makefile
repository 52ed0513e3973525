# Two commands on a fresh machine:  make demo   |   make test
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo bytecode test test-pythons unit lint models rules services kafka triton stop clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# uv installs the same packages as pip (the same resolution; pip stays in the venv for the
# tools that call it) in ~25 s on a fresh machine, where pip took ~3 minutes of CI.
$(BIN)/uv: | $(BIN)/python
	$(BIN)/pip install -q uv

# --compile-bytecode: uv writes no .pyc by default, and where PYTHONDONTWRITEBYTECODE is set
# (this machine, and CI's, which are like it) no import writes one either: every process would
# compile numpy, pydantic, aiokafka, ... from source again: ~1.5 s of CPU a start (2.2 s -> 0.6 s
# to import the scoring path), paid by every `scorer` subprocess the tests launch.
$(STAMP): pyproject.toml setup.py $(wildcard scorer/native/*.[ch]) | $(BIN)/uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e '.[dev,train,local,replay,bench,gbm]'
	touch $@

# The embedded default: bundled capture, scored in process (the models' trees compiled on the
# first run, ~10-30 s, then cached; ONNX Runtime where they cannot be), no Kafka, no Triton.
demo: bytecode
	$(BIN)/scorer demo

# The project's own modules, installed editable (uv compiles site-packages only); a module
# changed since is compiled again in memory by each process, correct but slower.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q -j 0 scorer models replay streams deploy tests

# Every test, with a real Kafka broker and a real Triton server started for each worker's
# session. Test modules run in PYTEST_WORKERS processes (pytest-xdist, a whole module to one
# worker, the modules with slow tests first: tests/support/markers.py): the suite mostly waits
# on the broker, Triton and subprocesses, and a second module uses the core the first leaves
# idle. PYTEST_WORKERS=0 runs it serially in one process.
PYTEST_WORKERS ?= 2
test: bytecode
	deploy/local/system-deps.sh
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -p no:cacheprovider --durations=25 \
		-n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The Kafka layer mirrors private parts of aiokafka (scorer/kafka: the send, the fetch path) over
# asyncio's transports, which changed in 3.12 (writelines became a gathered send that keeps each
# piece: an empty one hung every client), and scorer/native calls CPython functions that 3.13 made
# internal (docs/benchmarks.md section 62). The Kafka, pipeline, service and reliability tests again
# on each of OTHER_PYTHONS found on the machine (pyenv's here and on CI's), each in a venv of its own
# (var/venv<version>), the package reinstalled so its C extensions are built for that Python. Triton's
# tests stay on the main venv (its python backend links the system's libpython, 3.11 here), and so do
# the minutes-long ones.
OTHER_PYTHONS ?= 3.12 3.13
test-pythons: $(STAMP)
	@for v in $(OTHER_PYTHONS); do \
	  py=$$(for p in $(HOME)/.pyenv/versions/$$v*/bin/python$$v $$(command -v python$$v); do \
	    "$$p" -c "" 2>/dev/null && echo "$$p" && break; done); \
	  if [ -z "$$py" ]; then echo "test-pythons: no Python $$v on this machine, not run"; continue; fi; \
	  echo "test-pythons: $$py"; venv=var/venv$$v; \
	  { [ -x $$venv/bin/python ] || $(BIN)/uv venv -q --python "$$py" $$venv; } && \
	  $(BIN)/uv pip install -q --python $$venv/bin/python --reinstall-package scorer -e '.[dev,train,bench]' && \
	  PATH="$(CURDIR)/$$venv/bin:$$PATH" $$venv/bin/python -m pytest -q -p no:cacheprovider \
	    -m "not (triton or gpu or slow)" tests/kafka tests/pipeline tests/service tests/reliability || exit 1; \
	done

# No services and no minutes-long fault runs; tests marked data read ../shared/data when it
# is there. Markers (kafka, triton, gpu from fixtures; data, slow by hand): pyproject.toml.
unit: bytecode
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not (kafka or triton or gpu or slow)"

# What CI runs before the tests (.ci/run) and pre-commit runs on each commit.
lint: $(STAMP)
	$(BIN)/ruff check scorer models replay streams deploy tests
	$(BIN)/mypy

models: $(STAMP)
	$(BIN)/python -m models.train all

# The shipped Sigma rule pack, rebuilt from ../shared/data/edr/sigma-rules with its tuning
# (python -m models.edr_rule_tuning chooses it) and its per-host risk policy
# (python -m models.edr_risk chooses it), and validated (its own checks: it rebuilds the
# production pack in place, so there is no other production to compare it with).
rules: $(STAMP)
	$(BIN)/python -m scorer.rules package --allow-skips --tuning rule_repository/sigma_windows/tuning.yml \
		--risk rule_repository/sigma_windows/risk.yml --out rule_repository/sigma_windows/3
	$(BIN)/python -m scorer.rules validate rule_repository/sigma_windows/3 --against none

# Local services for `scorer run` (ports 9092 and 8001 by default).
kafka:
	deploy/local/kafka.sh start

triton: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python deploy/local/triton.py serve --repository model_repository --workdir var/triton

services: kafka triton

stop:
	-deploy/local/kafka.sh stop
	-$(BIN)/python deploy/local/triton.py stop --workdir var/triton

clean:
	rm -rf $(VENV) var out .pytest_cache .mypy_cache .ruff_cache
