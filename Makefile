# Two commands for a fresh machine: `make render` (the bundled example) and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup render test bench docs
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $@

render: setup
	$(BIN)/dwctl render -c config/pipeline.yaml

test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

bench: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/bench_render.py
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/bench_verify.py
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/bench_gates.py
	$(BIN)/python bench/bench_loader.py

docs: setup
	$(BIN)/python -c "import pathlib, dwctl.spec.reference as d; p = pathlib.Path('README.md'); p.write_text(d.with_reference(p.read_text()))"
	$(BIN)/dwctl schema -o dwctl-spec.schema.json
