# Every target creates the virtual environment when it is missing, then acts.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test demo bench release notebooks fetch-cifar10 clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

# two pytest processes, one test file each at a time (module fixtures are built once): most tests
# wait on kernels and subprocesses, so two share a 2-core machine well (13-17 min instead of 24-31)
test: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadfile

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/cs231n-grade demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

release: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/cs231n-grade release

# after editing solutions/<a>/<a>.py or .ipynb: sync each pair, release, rebuild the sample class
notebooks: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/cs231n-grade sync $(SYNC_ARGS)

fetch-cifar10: $(STAMP)
	$(BIN)/python -m cs231n_lib.data fetch cifar10 $(FETCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis grading-output
