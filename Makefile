# make demo: set up .venv and run the main job; make test: set up .venv and pass the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test venv clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,compiler,compiler-test,kube,train,kernels,serve]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/gpufleet demo --out out/demo

test: venv
	$(BIN)/python -m pytest tests

bench: venv
	$(BIN)/python bench/scheduler_throughput.py

clean:
	rm -rf $(VENV) out build *.egg-info
