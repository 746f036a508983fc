"""Source names beside target names: derivation, validation with located errors, what the render makes of them."""

from __future__ import annotations

import re

import hcl2
import pytest

from dwctl.errors import SpecError
from dwctl.render.engine import render, table_view
from dwctl.spec.naming import target_name
from dwctl.spec.read import parse_spec
from tests.support.dms_files import DmsTask, mapping_rules, spec_text_with_tables

ITEMS = """
  - schema: "Sales Data"
    source_name: OrderItems
    columns:
      - {source_name: ItemId, type: integer, nullable: false}
      - {source_name: "Unit Price", type: "numeric(10,2)"}
      - {source_name: Notes, type: text}
      - {source_name: 2ndNote, type: text}
      - {name: secret, type: "varchar(10)", exclude: true}
    primary_key: [item_id]
"""
GRANT = """
  grants:
    - principal: arn:aws:iam::123456789012:role/Analyst
      tables: [order_items]
      permissions: [SELECT]
      columns: {include: [item_id, _2nd_note]}
"""


def keyed(**keys: str) -> str:
    """A one-column table item (`id`, the key) with these keys."""
    head = "".join(f"\n    {k}: {v}" for k, v in keys.items())
    return f"\n  - {head[5:]}\n    columns: [{{name: id, type: integer, nullable: false}}]\n    primary_key: [id]"


def spec(tables: str, engine: str = "postgres", grants: str = ""):
    return parse_spec(spec_text_with_tables(tables, engine) + grants, "test.yaml")


def problems(tables: str, engine: str = "postgres") -> list[str]:
    with pytest.raises(SpecError) as info:
        spec(tables, engine)
    return info.value.problems


@pytest.mark.parametrize("source, target", [
    ("order_items", "order_items"), ("a__b", "a__b"), ("OrderItems", "order_items"), ("customerId", "customer_id"),
    ("Ship To", "ship_to"), ("2ndLine", "_2nd_line"), ("HTTPStatus", "http_status"), ("Größe", "gr_e"),
    ("???", "_" + __import__("hashlib").sha256(b"???").hexdigest()[:8]),
])
def test_targets_are_derived_as_snake_case(source, target):
    assert target_name(source) == target
    assert re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", target)


def test_long_names_are_cut_with_a_hash_so_two_stay_apart():
    a, b = "A" * 30 + "CustomerLifetimeValueInEuros" + "1", "A" * 30 + "CustomerLifetimeValueInEuros" + "2"
    assert len(target_name(a)) <= 63 and len(target_name(b)) <= 63
    assert target_name(a) != target_name(b)


def test_existing_specs_keep_their_meaning(example_spec):
    for table in example_spec.tables:
        view = table_view(example_spec, table)
        assert (table.source, view.landing_schema, view.source_tables) == (table.name, table.schema_, (table.name,))
        assert all(c.source == c.name and not c.exclude for c in table.columns)


def test_source_and_target_names_reach_each_layer():
    s = spec(ITEMS, grants=GRANT)
    table = s.table("order_items")
    assert [(c.name, c.source) for c in table.columns] == [
        ("item_id", "ItemId"), ("unit_price", "Unit Price"), ("notes", "Notes"), ("_2nd_note", "2ndNote"),
        ("secret", "secret")]
    assert table.column_names == ["item_id", "unit_price", "notes", "_2nd_note"], "excluded: not in the warehouse"
    files = render(s, "test.yaml")
    task = DmsTask(mapping_rules(files))
    folder, kept = task.land("Sales Data", "OrderItems", ["ItemId", "Unit Price", "Notes", "2ndNote", "secret"])
    # DMS renames the schema folder, the table and the columns it can; Notes is text, a LOB to DMS: kept
    assert folder == "sales_data/order_items"
    assert kept == [("ItemId", "item_id"), ("Unit Price", "unit_price"), ("Notes", "Notes"), ("2ndNote", "2ndNote")]
    assert task.land("Sales Data", "OrderXItems", ["ItemId"]) is None
    lf = hcl2.loads(files["iac/lakeformation.tf"])["resource"]
    grants = {n: b for block in lf for n, b in block.get("aws_lakeformation_permissions", {}).items()}
    columns = grants["grant_0_order_items"]["table_with_columns"][0]["column_names"]
    assert (columns[0] if isinstance(columns[0], list) else columns) == ["item_id", "2ndnote"], \
        "grants name the Glue columns: the landed names, lower case"
    assert '"secret"' not in files["sql/01_create_tables.sql"] and '"secret"' not in files["iac/glue.tf"]
    assert '"unit_price" DECIMAL(10,2)' in files["sql/01_create_tables.sql"]


@pytest.mark.parametrize("tables, engine, field, message", [
    (keyed(schema="Sales", source_name="Orders") + keyed(schema="Archive", source_name="Orders"), "postgres", "tables[1].name", "duplicate table 'orders': tables[0] (Sales.Orders) and this one (Archive.Orders)"),
    (keyed(schema="Sales", name="orders") + keyed(schema="Sales", name="orders_again", source_name="orders"), "postgres", "tables[1].name", "the source table Sales.orders already feeds tables[0]"),
    (f"""
  - source_name: {"T" * 64}
    columns: [{{name: id, type: integer, nullable: false}}]
    primary_key: [id]
""", "postgres", "tables[0].source_name", "is 64 bytes; postgres identifiers are at most 63"),
    ("""
  - name: t
    columns: [{name: id, type: integer, nullable: false, exclude: true}, {name: v, type: integer}]
    primary_key: [id]
""", "postgres", "tables[0].primary_key[0]", "'id' is excluded (exclude: true), so it cannot be a key"),
    ("""
  - name: t
    columns: [{name: id, type: integer, nullable: false}, {source_name: "odd-name", type: text, exclude: true}]
    primary_key: [id]
""", "postgres", "tables[0].columns[1].exclude", "DMS cannot remove the column 'odd-name'"),
    ("""
  - name: t
    columns: [{name: id, type: integer, nullable: false}, {name: g, type: "geography(Point)"}]
    primary_key: [id]
""", "postgres", "tables[0].columns[1].type", "set exclude: true on the column"),
    ("""
  - name: t
    partitions: [t_2024]
    columns: [{name: id, type: integer, nullable: false}]
    primary_key: [id]
""", "mysql", "tables[0].partitions", "partitions are read from Postgres"),
    ("""
  - name: t
    columns: [{name: id, type: integer, nullable: false}, {name: notes, type: text}, {name: x, source_name: NOTES, type: text}]
    primary_key: [id]
""", "postgres", "tables[0].columns[2].name", "lands as 'notes' like columns[1]"),
    (keyed(name="orders") + keyed(name="orders_upper", source_name="ORDERS"), "postgres", "tables[1].name", "differ only in case, which DMS does not support"),
    ("""
  - name: t
    columns: [{name: id, type: integer, nullable: false}, {name: op_text, source_name: OP, type: text}]
    primary_key: [id]
""", "postgres", "tables[0].columns[1].source_name", "where DMS also writes a column 'op'"),
    ("""
  - name: t
    source_name: "bad[name]"
    columns: [{name: id, type: integer, nullable: false}]
    primary_key: [id]
""", "postgres", "tables[0].source_name", "should match pattern"),
    ("""
  - name: t
    columns: [{name: id, type: integer, nullable: false}, {nme: notes, type: text}]
    primary_key: [id]
""", "postgres", "tables[0].columns[1].name", "(unknown key(s) here: nme: a misspelt name?)"),
    (keyed(nmae="orders"), "postgres", "tables[0].name", "(unknown key(s) here: nmae: a misspelt name?)"),
])
def test_bad_names_are_located_errors(tables, engine, field, message):
    found = problems(tables, engine)
    line = [p for p in found if f": {field}:" in p]
    assert line and message in line[0], found
    assert re.match(r"^test\.yaml:\d+:\d+: ", line[0])


def test_a_64_character_mysql_name_is_accepted():
    name = "C" * 64
    s = spec(f"""
  - schema: shop
    source_name: {name}
    columns: [{{source_name: {name}, type: int, nullable: false}}]
    primary_key: [{target_name(name)}]
""", "mysql")
    assert s.tables[0].source == name and len(s.tables[0].name) <= 63


def test_untyped_excluded_columns_need_no_mapping():
    s = spec("""
  - name: film
    columns:
      - {name: film_id, type: integer, nullable: false}
      - {name: fulltext, type: "public.geometry(Point,4326)", exclude: true}
    primary_key: [film_id]
""")
    files = render(s, "test.yaml")
    rules = [r for r in mapping_rules(files) if r["rule-action"] == "remove-column"]
    assert [r["object-locator"]["column-name"] for r in rules] == ["fulltext"]


def test_land_as_text_casts_at_dms_and_keeps_the_source_name_in_the_file():
    s = spec("""
  - name: hosts
    columns:
      - {name: host_id, type: integer, nullable: false}
      - {name: mac, source_name: MacAddr, type: macaddr8, land_as_text: 23}
    primary_key: [host_id]
""")
    view = table_view(s, s.table("hosts"))
    mac = view.columns[1]
    assert (mac.redshift_type, mac.staging_type, mac.glue_type, mac.dms_type) == ("VARCHAR(92)", "VARCHAR(92)",
                                                                                   "string", ("string", 23))
    rules = mapping_rules(render(s, "test.yaml"))
    [cast] = [r for r in rules if r["rule-action"] == "change-data-type"]
    assert cast["object-locator"]["column-name"] == "MacAddr" and cast["data-type"] == {"type": "string", "length": 23}
    # one transformation per column: DMS casts it, so it is not renamed and lands as MacAddr
    assert not [r for r in rules if r["rule-action"] == "rename" and r["rule-target"] == "column"]
    assert DmsTask(rules).land("public", "hosts", ["host_id", "MacAddr"])[1] == [("host_id", "host_id"),
                                                                               ("MacAddr", "MacAddr")]
    assert [c.parquet_name for c in view.landed if c.source] == ["host_id", "MacAddr"]


def test_land_as_text_is_refused_on_a_lob_type():
    found = problems("""
  - name: docs
    columns: [{name: id, type: integer, nullable: false}, {name: body, type: jsonb, land_as_text: 100}]
    primary_key: [id]
""")
    assert any(": tables[0].columns[1].land_as_text: jsonb is a LOB to DMS" in p for p in found), found



TWO_WAYS = """
  - name: film
    columns:
      - {name: film_id, type: integer, nullable: false}
      - {name: title, type: text}
      - {source_name: FullText, type: "public.geometry(Point,4326)"%s}
      - {name: notes, type: text%s}
    primary_key: [film_id]%s
"""


def test_a_table_level_exclude_list_is_the_per_column_flag():
    """`exclude: [...]` (by target or source name) renders byte for byte what `exclude: true` on each column does."""
    flags = spec(TWO_WAYS % (", exclude: true", ", exclude: true", ""))
    listed = spec(TWO_WAYS % ("", "", "\n    exclude: [FullText, notes]"))
    assert [c.exclude for c in listed.tables[0].columns] == [False, False, True, True]
    assert listed.tables[0].column_names == ["film_id", "title"]
    strip = lambda files: {p: t for p, t in files.items() if "sha256" not in t}  # noqa: E731  (spec digests differ)
    assert strip(render(listed, "test.yaml")) == strip(render(flags, "test.yaml"))
    rules = [r for r in mapping_rules(render(listed, "test.yaml")) if r["rule-action"] == "remove-column"]
    assert sorted(r["object-locator"]["column-name"] for r in rules) == ["FullText", "notes"]


@pytest.mark.parametrize("listed, message", [
    ("[notes, fulltext_x]", "'fulltext_x' is not a column of this table"),
    ("[notes, notes]", "'notes' is listed twice"),
])
def test_a_table_level_exclude_list_names_columns_the_table_has(listed, message):
    tables = TWO_WAYS % ("", "", f"\n    exclude: {listed}")
    found = problems(tables)
    line = [p for p in found if ": tables[0].exclude[1]:" in p]
    assert line and message in line[0], found
    text = spec_text_with_tables(tables, "postgres").splitlines()
    at = next(n for n, t in enumerate(text, 1) if t.strip().startswith("exclude: ["))
    assert re.match(rf"^test\.yaml:{at}:\d+: ", line[0]), line  # the list's own line in the file


def test_an_excluded_key_named_by_the_list_is_refused():
    found = problems(TWO_WAYS % ("", "", "\n    exclude: [film_id]"))
    assert any(": tables[0].primary_key[0]:" in p and "'film_id' is excluded" in p for p in found), found
