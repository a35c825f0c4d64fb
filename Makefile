# The two commands a newcomer needs: `make run` and `make test`.
# Every target creates .venv and installs the project into it by itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test bench lint fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/netmap-lm serve --demo

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest

bench: $(STAMP)
	# Byte-compile first: the environment may set PYTHONDONTWRITEBYTECODE, and an
	# application's installed client library is byte-compiled too.
	$(BIN)/python -m compileall -q src
	$(BIN)/python bench/run.py

fuzz: $(STAMP)
	NETMAP_LM_FUZZ_SECONDS=120 $(BIN)/pytest tests/fuzz -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
