# Two commands for a fresh machine: `make render` (the bundled example) and `make test`.
# `make render` installs dwctl's runtime dependencies only; `make test` adds the test tools
# and, when missing, the PostgreSQL/MariaDB server packages the tests start (apt-get, as root or sudo -n),
# and the load job's Glue runtime (Python 3.9 with Glue's boto3/botocore pins) under .venv-glue/.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup setup-test render test bench docs
setup: $(VENV)/.installed
setup-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $@

render: setup
	$(BIN)/dwctl render -c config/pipeline.yaml

test: setup-test
	$(BIN)/python tests/support/server_packages.py
	$(BIN)/python tests/support/glue_runtime.py
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

bench: setup-test
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/bench_render.py
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/bench_verify.py
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/bench_gates.py
	$(BIN)/python bench/bench_loader.py

# The docs site: regenerate what comes from the code (the spec, command and Terraform variables references, the editor schema),
# then build docs/ into site/ with MkDocs in strict mode (a broken link or anchor fails it); open site/index.html.
docs: setup-test
	$(BIN)/python -c "import pathlib, dwctl.spec.reference as d; pathlib.Path(d.PAGE).write_text(d.reference_page(), encoding='utf-8')"
	$(BIN)/python -c "import pathlib, dwctl.render.variables_doc as d; pathlib.Path(d.PAGE).write_text(d.variables_page(pathlib.Path(d.SOURCE).read_text(encoding='utf-8')), encoding='utf-8')"
	$(BIN)/python -m tests.docs.cli_page
	$(BIN)/dwctl schema --file dwctl-spec.schema.json
	$(BIN)/mkdocs build --strict --site-dir site
