"""The generated reference pages are current, as `render --check` is for iac/: `make docs` rewrites them.

(The spec reference's own test is tests/spec/test_reference.py.)
"""

from __future__ import annotations

import json

from dwctl.render import variables_doc
from tests.docs import cli_page
from dwctl.render.tfvars import OPERATIONAL
from dwctl.spec.reference import markdown_text
from tests.conftest import ROOT


def test_the_terraform_variables_page_is_current():
    source = (ROOT / variables_doc.SOURCE).read_text(encoding="utf-8")
    committed = (ROOT / variables_doc.PAGE).read_text(encoding="utf-8")
    assert committed == variables_doc.variables_page(source), f"{variables_doc.PAGE} is stale: run `make docs`"


def test_every_variable_and_every_default_dwctl_fixes_is_on_the_page():
    """Each fixed knob (not a spec key) shows the value dwctl renders, which is the variable's default."""
    source = (ROOT / variables_doc.SOURCE).read_text(encoding="utf-8")
    found = variables_doc.variables(source)
    assert len(found) == source.count('\nvariable "') + source.startswith('variable "')
    page = variables_doc.variables_page(source)
    for name, value in OPERATIONAL.items():
        [row] = [line for line in page.splitlines() if line.startswith(f"| `{name}` |")]
        assert f"`{json.dumps(value)}`" in row, row  # HCL writes these literals as JSON does


def test_the_command_reference_is_current():
    """Generated in a fresh interpreter, as `make docs` does: Click caches each command's help option the
    first time a context asks for it, so a page built after other tests have run depends on their order."""
    import subprocess
    import sys

    fresh = subprocess.run([sys.executable, "-c", "import sys; from tests.docs.cli_page import cli_page; "
                            "sys.stdout.write(cli_page())"], cwd=ROOT, capture_output=True, text=True,
                           encoding="utf-8", check=True).stdout
    committed = (ROOT / cli_page.PAGE).read_text(encoding="utf-8")
    assert committed == fresh, f"{cli_page.PAGE} is stale: run `make docs`"


def test_the_command_reference_shows_every_command_and_option_default():
    """Every command, and each option whose --help names a default, is on the page with that default."""
    import click

    from dwctl.cli import cli

    page = cli_page.cli_page()
    root = click.Context(cli, info_name="dwctl", **cli.context_settings)
    for name in cli.list_commands(root):
        command = cli.get_command(root, name)
        assert f"## `dwctl {name}`" in page
        ctx = click.Context(command, info_name=name, parent=root)
        for param in command.get_params(ctx):
            record = param.get_help_record(ctx)
            if record and "[default: " in record[1]:
                default = record[1][record[1].index("[default: "):].split("]")[0]
                assert markdown_text(" ".join(default.split())) in page, (name, record)
