"""The compact job config and canary (format 7 and 2): each distinct merge SQL and canary file is held once,
and the job's own expansion (load_job.expanded_config, expanded_canary) gives back, byte for byte, what the
job ran before: each table's merge SQL is its rendered sql/03_merge_<table>.sql (without the two
generated-by header lines), so the statements the job sends per table are those of the rendered file.
"""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from dwctl.render import canary, job_config
from dwctl.render.engine import render, table_view, units
from dwctl.spec.read import parse_spec
from dwctl.warehouse import load_job
from tests.conftest import EXAMPLE
from tests.support.dms_files import spec_text_with_tables

CANARY = "iac/glue_scripts/smoke_canary.json"
# A partitioned table (its units merge into one analytics table) and clones of the example's tables,
# among them names that occur all over the SQL ("id" is a column of every clone; "op" is the Op column).
PARTITIONED = """
  - schema: app
    name: pay
    partitions: [pay_a, Pay_B]
    columns:
      - {name: id, type: bigint, nullable: false}
      - {name: region, type: "varchar(2)", nullable: false}
      - {name: note, type: varchar(12)}
    primary_key: [id, region]
    history: true
"""
CLONES = ["orders_eu", "orders_us", "orders_apac", "id", "op", "staging_orders"]


def body(files: dict[str, str], path: str) -> str:
    return files[path].split("\n", 2)[2]


@pytest.fixture(scope="module")
def many():
    """The example with every table cloned under other names, and a partitioned table."""
    data = yaml.safe_load(spec_text_with_tables(PARTITIONED))
    example = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    orders = next(t for t in example["tables"] if t["name"] == "orders")
    data["tables"] += [dict(t, name=f"{t['name']}_copy") for t in example["tables"]]
    data["tables"] += [dict(orders, name=name, columns=[c for c in orders["columns"]] + [
        {"name": "id_extra", "type": "bigint"}]) for name in CLONES]
    spec = parse_spec(yaml.safe_dump(data, sort_keys=False), "many.yaml")
    return spec, render(spec, "many.yaml")


def test_each_tables_merge_sql_expands_to_its_rendered_file(many):
    spec, files = many
    doc = json.loads(files[job_config.PATH])
    assert doc["format"] == job_config.FORMAT == load_job.CONFIG_FORMAT
    expanded = load_job.expanded_config(doc)
    config = load_job.Config(doc)
    names = [t.name for t in units([table_view(spec, t) for t in spec.tables])]
    assert sorted(expanded["tables"]) == sorted(config.merge_sql) == sorted(names) and "pay_a" in names
    for name in names:
        want = body(files, f"sql/03_merge_{name}.sql")
        assert "\n".join(expanded["tables"][name]["merge_sql"]) == want == config.merge_sql[name]
        # what the job sends for the table: the file's statements, BEGIN/COMMIT left out
        assert load_job.without_transaction(load_job.split_statements(config.merge_sql[name])) == \
            load_job.without_transaction(load_job.split_statements(want))
    assert config.create_sql == body(files, "sql/01_create_tables.sql")
    assert config.load_sql == body(files, "sql/02_load_staging.sql")


def test_tables_of_one_shape_share_one_template(many):
    spec, files = many
    doc = json.loads(files[job_config.PATH])
    index = {name: table["merge_template"] for name, table in doc["tables"].items()}
    assert "merge_sql" not in doc["tables"]["orders_eu"]
    assert index["orders_eu"] == index["orders_us"] == index["orders_apac"] == index["staging_orders"]
    # a name that occurs elsewhere in the SQL ("id", "op") cuts the SQL at other places too: a template of its own
    assert len({index["id"], index["op"], index["orders_eu"]}) == 3
    assert len(doc["merge_templates"]) < len(index)
    # each template once: no two templates are equal
    assert len({json.dumps(t) for t in doc["merge_templates"]}) == len(doc["merge_templates"])


def test_the_expansion_is_the_format_6_document_and_the_scratch_copy_expands_once(many):
    """Everything but the merge SQL is as the render made it; scratch_document (the smoke run's copy)
    reads the compact document and its result is read again by Config unchanged."""
    spec, files = many
    doc = json.loads(files[job_config.PATH])
    expanded = load_job.expanded_config(doc)
    assert set(expanded) == set(doc) - {"merge_templates"}
    for name, table in doc["tables"].items():
        assert {k: v for k, v in expanded["tables"][name].items() if k != "merge_sql"} == \
            {k: v for k, v in table.items() if k != "merge_template"}
    assert load_job.expanded_config(expanded) is expanded
    renames = load_job.smoke_schemas(spec.warehouse.staging_schema, spec.warehouse.analytics_schema, "r1")
    scratch = load_job.scratch_document(doc, renames, "scratch")
    assert load_job.Config(scratch).merge_sql["orders_eu"].count('"dwctl_smoke_r1_analytics"."orders_eu"') == \
        body(files, "sql/03_merge_orders_eu.sql").count('"analytics"."orders_eu"') > 0
    assert "merge_templates" in doc and "merge_sql" not in doc["tables"]["orders_eu"]  # the input is untouched


def test_the_config_is_json_with_a_line_per_item(many):
    _, files = many
    text = files[job_config.PATH]
    assert json.loads(text) == json.loads(json.dumps(json.loads(text), indent=1))
    lines = text.split("\n")
    assert max(len(line) for line in lines) < 2000, "every list item on a line of its own"
    assert ',"CREATE SCHEMA IF NOT EXISTS \\"staging\\";"' in lines


def test_the_canary_holds_each_file_once_and_expands_to_each_units_own_files(many):
    spec, files = many
    doc = json.loads(files[CANARY])
    assert doc["format"] == canary.FORMAT == load_job.SMOKE_CANARY_FORMAT
    assert len(doc["parquet"]) == len(set(doc["parquet"]))
    expanded = load_job.expanded_canary(doc)
    views = {u.name: u for u in units([table_view(spec, t) for t in spec.tables])}
    siblings: dict[str, int] = {}
    for name, unit in views.items():  # the render's order: partitions get their keys apart
        offset = 2 * siblings.get(unit.analytics_name, 0)
        siblings[unit.analytics_name] = siblings.get(unit.analytics_name, 0) + 1
        want = [{"name": step, "files": {f: base64.b64encode(data).decode("ascii") for f, data in got.items()}}
                for step, got in canary.unit_steps(unit, offset)]
        assert expanded["units"][name] == want, name
    # the clones of one shape share their files
    assert doc["units"]["orders_eu"] == doc["units"]["orders_us"]
    assert doc["units"]["pay_a"] != doc["units"]["pay_b"]  # partitions: keys apart
