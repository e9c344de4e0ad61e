# Two entry points that work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COMPAT := .venv-compat
NEWEST := .venv-newest
DATA ?= ../shared/data/routerbench
export LITELLM_LOCAL_MODEL_COST_MAP := True
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test test-fast test-compat test-newest lint bench eval clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python examples/quickstart.py --data $(DATA)

test: $(VENV)/.installed
	$(BIN)/python -m pytest

# The offline subset: no test outside the `integration` marker may open a socket (not even
# 127.0.0.1; Unix sockets stay allowed for asyncio's event loop). `--allow-hosts=` empties
# the loopback allowance that pyproject's addopts gives the full suite.
test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -m "not integration" --disable-socket --allow-unix-socket --allow-hosts=

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/mypy

# The front doors against the oldest LiteLLM and LangChain versions uniroute supports
# (constraints/oldest.txt), in a second virtualenv. Without [proxy]: litellm[proxy]==1.104.0 needs
# cryptography>=49 and langchain-litellm==0.7.0 needs cryptography<49, so they cannot share a venv.
# test_proxy_globals and test_proxy_app_and_key_check import LiteLLM's proxy server, which needs [proxy]
# (not in this venv, see above).
COMPAT_DESELECT := --deselect tests/integrations/test_litellm_compat.py::test_proxy_globals \
	--deselect tests/integrations/test_litellm_compat.py::test_proxy_app_and_key_check
COMPAT_TESTS ?= tests/integrations/test_litellm.py tests/integrations/test_litellm_compat.py \
	tests/integrations/test_langchain.py tests/integrations/test_langchain_standard.py \
	tests/integrations/test_litellm_langchain.py tests/integrations/test_litellm_feedback.py \
	tests/integrations/test_langchain_feedback.py

$(COMPAT)/bin/python:
	$(PYTHON) -m venv $(COMPAT)

$(COMPAT)/.installed: pyproject.toml constraints/oldest.txt | $(COMPAT)/bin/python
	$(COMPAT)/bin/pip install --quiet --upgrade pip
	$(COMPAT)/bin/pip install --quiet torch==2.13.0
	$(COMPAT)/bin/pip install --quiet -c constraints/oldest.txt -e ".[litellm,langchain,local,test]"
	touch $@

test-compat: $(COMPAT)/.installed
	$(COMPAT)/bin/pip check
	$(COMPAT)/bin/python -m pytest $(COMPAT_TESTS) $(COMPAT_DESELECT)

# The same front-door tests against the newest LiteLLM and langchain-core that pyproject allows,
# without [proxy]: `litellm[proxy]` stops at an older LiteLLM than `uniroute[litellm]`, so the
# `.venv` of `make test` never gets the LiteLLM that `pip install "uniroute[litellm]"` installs.
# The three fast-moving packages are named so that `--upgrade` moves them in an existing venv too
# (it upgrades only what the command names; `--upgrade-strategy eager` would also move torch).
$(NEWEST)/bin/python:
	$(PYTHON) -m venv $(NEWEST)

$(NEWEST)/.installed: pyproject.toml | $(NEWEST)/bin/python
	$(NEWEST)/bin/pip install --quiet --upgrade pip
	$(NEWEST)/bin/pip install --quiet torch==2.13.0
	$(NEWEST)/bin/pip install --quiet --upgrade -e ".[litellm,langchain,local,redis,test]" \
		litellm langchain-core langchain-tests
	touch $@

test-newest: $(NEWEST)/.installed
	$(NEWEST)/bin/pip check
	$(NEWEST)/bin/python -c "import importlib.metadata as m; print(*(f'{p} {m.version(p)}' for p in ('litellm', 'langchain-core')))"
	$(NEWEST)/bin/python -m pytest $(COMPAT_TESTS) $(COMPAT_DESELECT)

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/overhead.py --json

eval: $(VENV)/.installed
	$(BIN)/uniroute eval --data $(DATA) --out runs/routerbench

clean:
	rm -rf $(VENV) $(COMPAT) $(NEWEST) runs .pytest_cache .mypy_cache
