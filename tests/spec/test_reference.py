"""Docs generated from the model stay current: the docs site's spec reference and the committed JSON Schema."""

from __future__ import annotations

import json

from dwctl.spec.model import json_schema
from dwctl.spec.model import DEFAULT_SKIPS
from dwctl.spec.reference import PAGE, reference_page, spec_reference
from dwctl.spec.type_mapping import MAPPING
from tests.conftest import ROOT


def test_the_spec_reference_page_is_current():
    """As `render --check` for iac/: the committed page is what the model renders now."""
    committed = (ROOT / PAGE).read_text(encoding="utf-8")
    assert committed == reference_page(), f"{PAGE} is stale: run `make docs`"


def test_reference_covers_every_model_and_type():
    text = spec_reference()
    for name in ("Spec", "Table", "Column", "Grant", "ColumnFilter", "Warehouse", "Skip"):
        assert f"## {name}\n" in text
    for _, names, _, _ in MAPPING:
        assert ", ".join(names) in text


def test_committed_json_schema_is_current():
    committed = json.loads((ROOT / "dwctl-spec.schema.json").read_text(encoding="utf-8"))
    assert committed == json_schema(), "dwctl-spec.schema.json is stale: run `make docs`"


def test_the_reference_names_computed_defaults_and_each_default_skip_with_its_reason():
    """A default JSON Schema cannot show (a default_factory) is still written: scan.skip's checks."""
    text = spec_reference()
    [skip_row] = [line for line in text.splitlines() if line.startswith("| `skip` |")]
    for skip in DEFAULT_SKIPS:
        assert f"`{skip.id}`" in skip_row
        assert f"| `{skip.id}` | {skip.reason} |" in text
