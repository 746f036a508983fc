"""The rendered warehouse SQL: parses as Redshift, staging mirrors the landed layout, keys land
where the spec says, and spec text cannot reach SQL unquoted."""

from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import exp

from dwctl.errors import SpecError
from dwctl.render.engine import table_view
from dwctl.render.text import sql_ident
from dwctl.spec import landed_layout as layout
from dwctl.spec.read import parse_spec

TABLES = ["customers", "products", "orders", "order_items"]


def sql_files(rendered: dict[str, str]) -> dict[str, str]:
    return {p: t for p, t in rendered.items() if p.startswith("sql/")}


def creates(rendered) -> dict[str, exp.Create]:
    """schema.table -> the parsed CREATE TABLE of 01_create_tables.sql."""
    out = {}
    for stmt in sqlglot.parse(rendered["sql/01_create_tables.sql"], read="redshift"):
        if isinstance(stmt, exp.Create) and stmt.kind == "TABLE":
            table = stmt.this.this
            out[f"{table.db}.{table.name}"] = stmt
    return out


def columns_of(create: exp.Create) -> list[tuple[str, str]]:
    return [(c.name, c.args["kind"].sql("redshift")) for c in create.this.expressions
            if isinstance(c, exp.ColumnDef)]


def test_every_file_parses_as_redshift(rendered):
    files = sql_files(rendered)
    assert set(files) == {"sql/01_create_tables.sql", "sql/02_load_staging.sql",
                          *(f"sql/03_merge_{t}.sql" for t in TABLES)}
    for path, text in files.items():
        statements = [s for s in sqlglot.parse(text, read="redshift") if s is not None]
        assert statements, path
        assert not any(isinstance(s, exp.Command) for s in statements), f"{path}: unparsed statement"


def test_staging_tables_follow_the_landed_layout(rendered, example_spec):
    tables = creates(rendered)
    for table in example_spec.tables:
        view = table_view(example_spec, table)
        expected = [c.name for c in layout.landed_columns(
            [(c.name, c.staging_type, c.glue_type) for c in view.columns])]
        got = columns_of(tables[f"staging.{table.name}"])
        assert [name for name, _ in got] == expected
        assert got[0][0] == layout.OP_COLUMN and got[1][0] == layout.TIMESTAMP_COLUMN
        assert got[-1][0] == layout.CHANGE_SEQ_COLUMN
    products = dict(columns_of(tables["staging.products"]))
    assert products["attributes"].startswith("VARCHAR"), "json lands as text; SUPER only in analytics"


def test_analytics_tables_have_types_keys_and_layout(rendered, example_spec):
    tables = creates(rendered)
    items = tables["analytics.order_items"]
    pk = items.this.find(exp.PrimaryKey)
    assert [e.name for e in pk.expressions] == ["order_id", "line_no"]
    props = items.args["properties"].expressions
    assert [p.this.name for p in props if isinstance(p, exp.DistKeyProperty)] == ["order_id"]
    sort = next(p for p in props if isinstance(p, exp.SortKeyProperty))
    assert [e.name for e in sort.this] == ["order_id", "line_no"]

    products = tables["analytics.products"]
    props = products.args["properties"].expressions
    assert not any(isinstance(p, exp.DistKeyProperty) for p in props)
    assert any(isinstance(p, exp.DistStyleProperty) and p.this.name.upper() == "AUTO" for p in props)
    cols = dict(columns_of(products))
    assert cols["attributes"] == "SUPER" and cols["unit_price"] == "DECIMAL(12, 2)"

    text = rendered["sql/01_create_tables.sql"]
    for table in example_spec.tables:
        block = text.split(f'"analytics"."{table.name}" (')[1].split(")\n")[0]
        for column in table.columns:
            has = re.search(rf'^\s*"{column.name}" [^\n]*NOT NULL', block, re.M) is not None
            assert has == (not column.nullable), (table.name, column.name)
    assert '"staging"."_dwctl_load_log"' in text and '"s3_key"' in text and '"loaded_at"' in text


def test_load_staging_copies_each_table_from_two_manifests_and_a_file_list(rendered, example_spec):
    statements = sqlglot.parse(rendered["sql/02_load_staging.sql"], read="redshift")
    copies = [s for s in statements if isinstance(s, exp.Copy)]
    assert len(copies) == 3 * len(example_spec.tables)
    for table, load, cdc, files in zip(example_spec.tables, copies[::3], copies[1::3], copies[2::3]):
        assert (load.this.db, load.this.name) == ("staging", table.name + "__dwctl_load"), "full-load files apart"
        assert (cdc.this.db, cdc.this.name) == ("staging", table.name)
        for data, kind in ((load, "load"), (cdc, "cdc")):
            assert data.args["files"][0].name == f"${{manifest:{table.name}:{kind}}}"
            params = {p.this.name.upper(): p for p in data.args["params"]}
            assert "MANIFEST" in params and params["FORMAT"].expression.name.upper() == "PARQUET"
            assert data.args["credentials"].args["iam_role"].name == "${iam_role}"
        assert files.args["files"][0].name == f"${{files:{table.name}}}"
        assert [c.name for c in files.this.expressions] == ["table_name", "s3_key", "etag"]


def test_merge_is_one_transaction_without_truncate(rendered):
    for table in TABLES:
        statements = sqlglot.parse(rendered[f"sql/03_merge_{table}.sql"], read="redshift")
        assert isinstance(statements[0], exp.Transaction) and isinstance(statements[-1], exp.Commit)
        assert not any(isinstance(s, (exp.Transaction, exp.Commit)) for s in statements[1:-1])
        assert not any(isinstance(s, exp.TruncateTable) for s in statements)
        deletes = [s for s in statements if isinstance(s, exp.Delete)]
        assert any(d.this.db == "staging" and d.this.name == table and d.args.get("where") is None
                   for d in deletes), "staged rows are cleared with DELETE"


def test_merge_applies_the_json_cast(rendered):
    insert = next(s for s in sqlglot.parse(rendered["sql/03_merge_products.sql"], read="redshift")
                  if isinstance(s, exp.Insert) and s.this.this.name == "products")
    assert insert.find(exp.ParseJSON) is not None


HOSTILE = 'orders"; drop table x; --'


def test_hostile_table_name_is_rejected_by_the_spec(example_text):
    text = example_text.replace("name: orders\n", f"name: '{HOSTILE}'\n", 1)
    assert HOSTILE in text
    with pytest.raises(SpecError) as err:
        parse_spec(text, "pipeline.yaml")
    assert "tables[2].name" in str(err.value)


def test_hostile_column_name_is_rejected_by_the_spec(example_text):
    text = example_text.replace("{name: status,", '{name: "st\\"atus",', 1)
    with pytest.raises(SpecError) as err:
        parse_spec(text, "pipeline.yaml")
    assert "columns[2].name" in str(err.value)


def test_ident_filter_doubles_quotes():
    assert sql_ident(HOSTILE) == '"orders""; drop table x; --"'
    parsed = sqlglot.parse_one(f"SELECT 1 FROM {sql_ident(HOSTILE)}", read="redshift")
    assert parsed.find(exp.Table).name == HOSTILE  # one identifier, no second statement


def test_every_identifier_in_the_sql_is_quoted(rendered):
    """No bare identifier: every column and table reference was written with the ident filter. (A SET names
    a configuration parameter, not a table or column: super-configurations spells it bare.)"""
    for path, text in sql_files(rendered).items():
        for stmt in sqlglot.parse(text, read="redshift"):
            if isinstance(stmt, exp.Set):
                assert stmt.sql("redshift", comments=False) == "SET json_parse_dedup_attributes = ON"
                continue
            for ident in stmt.find_all(exp.Identifier):
                assert ident.quoted, f"{path}: unquoted identifier {ident.name!r}"


def test_a_table_too_wide_for_the_data_api_is_refused_at_render_time():
    """No statement the job sends may exceed the Data API's 100 KB (data-api.html)."""
    from dwctl.render.engine import render
    from tests.support.dms_files import spec_with_tables

    def wide(n: int) -> str:
        columns = "".join(f"      - {{name: a_rather_long_column_name_number_{i:04d}, type: text}}\n" for i in range(n))
        return ("\n  - schema: app\n    name: wide\n    columns:\n      - {name: id, type: bigint, nullable: false}\n"
                + columns + "    primary_key: [id]\n    history: true\n")

    render(spec_with_tables(wide(100)), "x")  # a wide table that fits
    with pytest.raises(SpecError, match=r"tables\[0\]: sql/03_merge_wide.sql has a statement of [\d,]+ bytes"):
        render(spec_with_tables(wide(1200)), "x")
