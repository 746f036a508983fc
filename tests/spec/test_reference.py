"""Docs generated from the model stay current: the README reference and the committed JSON Schema."""

from __future__ import annotations

import json

from dwctl.spec.model import json_schema
from dwctl.spec.reference import spec_reference, with_reference
from dwctl.spec.type_mapping import MAPPING
from tests.conftest import ROOT


def test_readme_reference_is_current():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert with_reference(readme) == readme, "README spec reference is stale: run `make docs`"


def test_reference_covers_every_model_and_type():
    text = spec_reference()
    for name in ("Spec", "Table", "Column", "Grant", "ColumnFilter", "Warehouse", "Skip"):
        assert f"#### {name}\n" in text
    for _, names, _, _ in MAPPING:
        assert ", ".join(names) in text


def test_committed_json_schema_is_current():
    committed = json.loads((ROOT / "dwctl-spec.schema.json").read_text(encoding="utf-8"))
    assert committed == json_schema(), "dwctl-spec.schema.json is stale: run `make docs`"
