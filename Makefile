# The two commands of the README's quick start, and the steps they need.
# `make serve`: a virtualenv, the package, a bootstrap model, gunicorn on 127.0.0.1:8000.
# `make test`:  the same virtualenv with the test extras, then ruff, mypy and pytest.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?= -n 2

.PHONY: serve test lint typecheck pytest system-deps bench clean

$(VENV)/.runtime: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.test: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(VENV)/.runtime $@

serve: $(VENV)/.runtime
	$(BIN)/commentmod serve --host $(HOST) --port $(PORT)

test: $(VENV)/.test system-deps lint typecheck pytest

lint: $(VENV)/.test
	$(BIN)/ruff check .

typecheck: $(VENV)/.test
	$(BIN)/mypy

pytest: $(VENV)/.test
	$(BIN)/pytest $(PYTEST_ARGS)

system-deps:
	@scripts/system-deps

bench: $(VENV)/.test
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
