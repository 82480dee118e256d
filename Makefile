# The two commands a new machine needs: `make up` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/hotoku up

test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/hotoku bench broker

clean:
	rm -rf $(VENV) data .pytest_cache
