"""Every rendered .tf file is in `terraform fmt`'s canonical form, for specs nobody wrote by hand.

Terraform's formatter aligns the `=` of consecutive attributes and the values of one-line objects, so
whether a file is canonical depends on the names in it (table, column and schema names of any length,
one table or many, grants with column lists, history, sort and dist keys, partitions of a table).
Hypothesis draws such specs from the bundled example; the real `terraform fmt -check` decides. This is
what lets `dwctl validate` leave files that are byte for byte the render to this proof and hand
Terraform's formatter only the files that differ (dwctl/gates/validate.py, check_fmt).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dwctl.errors import SpecError
from dwctl.render.engine import render
from dwctl.spec.read import parse_spec
from tests.conftest import EXAMPLE

FIRST = "abcdefghijklmnopqrstuvwxyz"
REST = FIRST + "0123456789_"
names = st.builds(lambda a, b: a + b, st.sampled_from(FIRST), st.text(REST, min_size=0, max_size=30))
TYPES = ["bigint", "integer", "smallint", "varchar(64)", "text", "numeric(12,2)", "boolean", "date", "timestamp",
         "timestamptz", "jsonb", "double precision", "uuid"]


@st.composite
def tables(draw) -> list[dict]:
    table_names = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    out = []
    for name in table_names:
        columns = draw(st.lists(names, min_size=1, max_size=6, unique=True))
        key = columns[0]
        table = {"schema": draw(st.sampled_from(["public", "sales", draw(names)])), "name": name,
                 "columns": [{"name": c, "type": "bigint" if c == key else draw(st.sampled_from(TYPES)),
                              **({"nullable": False} if c == key else {})} for c in columns],
                 "primary_key": [key]}
        if draw(st.booleans()):
            table["sort_keys"] = [key]
        if draw(st.booleans()):
            table["dist_key"] = key
        if draw(st.booleans()):
            table["history"] = True
        out.append(table)
    return out


@st.composite
def specs(draw) -> str:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["tables"] = draw(tables())
    names_ = [t["name"] for t in data["tables"]]
    grants = [{"principal": "arn:aws:iam::123456789012:role/Analyst", "tables": names_, "permissions": ["SELECT"]}]
    first = data["tables"][0]
    if len(first["columns"]) > 1 and draw(st.booleans()):
        grants.append({"principal": "arn:aws:iam::123456789012:role/" + draw(names).capitalize(), "tables": [first["name"]],
                       "permissions": ["SELECT"], "columns": {"exclude": [first["columns"][-1]["name"]]}})
    data["governance"]["grants"] = grants
    return yaml.safe_dump(data, sort_keys=False)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(specs())
def test_every_rendered_tf_file_is_canonical_for_any_spec(terraform_bin, text):
    try:
        spec = parse_spec(text, "drawn.yaml")
    except SpecError:  # a drawn name the spec refuses (a reserved word, a clash): not a spec to render
        assume(False)
    files = render(spec, "drawn.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        for path, body in files.items():
            if path.startswith("iac/") and path.endswith((".tf", ".tftest.hcl", ".tfvars")):
                target = Path(tmp) / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(body.encode("utf-8"))
        env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_DATA_DIR": str(Path(tmp) / ".tf")}
        done = subprocess.run([terraform_bin, "fmt", "-check", "-diff", "-recursive", str(Path(tmp) / "iac")],
                              capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout[:4000] + done.stderr[:2000]
