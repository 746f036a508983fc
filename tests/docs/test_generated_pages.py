"""The generated reference pages are current, as `render --check` is for iac/: `make docs` rewrites them.

(The spec reference's own test is tests/spec/test_reference.py.)
"""

from __future__ import annotations

import json

from dwctl.render import variables_doc
from dwctl.render.tfvars import OPERATIONAL
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
