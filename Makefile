# cptqa: `make help` lists the verbs.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ADAPTERS := $(VENV)/.adapters
RAY_EXTRA := $(VENV)/.ray
# torch comes from PyTorch's CPU wheel index (the package index's torch pulls CUDA packages).
# A machine whose pip already finds a CPU wheel of torch (find-links, a mirror) installs with
# `make install TORCH_INDEX=`, which asks pip's own configured sources and no other.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH := torch==2.13.0

.PHONY: help install serve test test-all bench bench-scale bench-ingest bench-peers load eval lint fmt clean

help: ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build of 2.13.0 (a plain `torch` would pull CUDA packages).
	# Only the wheel comes from TORCH_INDEX; its dependencies (filelock, sympy ...) come with
	# cptqa's from pip's own sources, so an index that serves torch alone is enough.
	$(PY) -m pip install --quiet --no-deps $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) '$(TORCH)'
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install cptqa with its dev tools

# The chatbot-framework extras (LangChain, LlamaIndex retrievers), which the tests exercise;
# pinned to what is installed, so that they never move cptqa's own packages (torch above all).
$(ADAPTERS): $(STAMP)
	$(PY) -m pip freeze --exclude-editable > $(VENV)/installed.txt
	$(PY) -m pip install --quiet -c $(VENV)/installed.txt -e '.[langchain,llamaindex]'
	touch $(ADAPTERS)

# Ray for `cptqa ingest --ray` (the two-node test in `make test-all`, bench-ingest), pinned
# to what is installed like the adapters.
$(RAY_EXTRA): $(STAMP)
	$(PY) -m pip freeze --exclude-editable > $(VENV)/installed.txt
	$(PY) -m pip install --quiet -c $(VENV)/installed.txt -e '.[ray]'
	touch $(RAY_EXTRA)

serve: install ## index corpus/ if needed, then serve http://127.0.0.1:8000
	$(VENV)/bin/cptqa serve

test: install $(ADAPTERS) ## run the test suite (fast tests)
	$(PY) -m pytest

test-all: install $(ADAPTERS) $(RAY_EXTRA) ## run every test, slow ones too (a two-node Ray cluster among them)
	$(PY) -m pytest -m ""

bench: install ## run the benchmarks; prints tables, writes bench/results*.json
	$(PY) bench/run.py
	$(PY) bench/formats.py

bench-scale: install ## search at 100,000 and 1,000,000 synthetic chunks: build, recall, cold start, latency, throughput
	$(PY) bench/scale.py

bench-ingest: install $(RAY_EXTRA) ## ingest of the public texts: the bare encoder, local, Ray on 1 and 2 nodes; bytes a chunk
	$(PY) bench/ingest.py

bench-peers: install ## cptqa beside LangChain FAISS, txtai hybrid and plain BM25 (installs the peers extra)
	# Pinned to what is installed, so that the peers never move cptqa's own packages.
	$(PY) -m pip freeze --exclude-editable > $(VENV)/installed.txt
	$(PY) -m pip install --quiet -c $(VENV)/installed.txt -e '.[peers]'
	$(PY) bench/peers.py

load: install ## load test: cptqa serve at 8 clients for 30 s while a new snapshot is ingested and reloaded
	$(PY) bench/load.py

eval: install ## extractor cases, then retrieval quality on the public dev sets (seeds, then seeds + dev corpus)
	$(VENV)/bin/cptqa eval tests/data/code_examples.jsonl tests/data/devset/code_cases/*.jsonl
	$(VENV)/bin/cptqa eval tests/data/dev_questions.jsonl --corpus corpus
	$(VENV)/bin/cptqa eval tests/data/dev_questions.jsonl tests/data/dev_questions_extra.jsonl \
		--corpus corpus --corpus tests/data/dev_corpus

lint: install ## ruff check and format check
	$(VENV)/bin/ruff check ingest index api tests bench
	$(VENV)/bin/ruff format --check ingest index api tests bench

fmt: install ## format the code
	$(VENV)/bin/ruff format ingest index api tests bench
	$(VENV)/bin/ruff check --fix ingest index api tests bench

clean: ## remove the venv and the local index
	rm -rf $(VENV) .cptqa
