"""Real source names end to end, against real PostgreSQL and MariaDB servers.

Mixed-case schemas and tables, names with spaces and leading digits, 64-character MySQL names,
two schemas holding a table of one name, columns of types DMS or Redshift cannot carry, and a
partitioned Postgres table: `dwctl import` writes them, the render uses source names in the DMS
rules and target names everywhere after DMS, and the files DMS lands under those rules (emulated
from the rendered rules, tests/support/dms_files.DmsTask) load through `dwctl sql verify` into
analytics tables equal to the source.
"""

from __future__ import annotations

import decimal
from pathlib import Path

import duckdb
import hcl2
import pytest

from dwctl.render.engine import render, table_view
from dwctl.spec.read import load_spec
from tests.support.cli import run
from tests.support.dms_files import DmsTask, cdc_name, land_source_rows, mapping_rules
from tests.support.minispec import write_spec

PG_NAMES = """
CREATE SCHEMA "Sales";
CREATE SCHEMA "Archive";
CREATE TABLE "Sales"."OrderItems" (
  "ItemId" integer PRIMARY KEY, "Unit Price" numeric(10,2), "2ndLine" text, qty integer,
  "StartAt" time, doc tsvector, pair macaddr8, note varchar(20));
CREATE TABLE "Archive"."OrderItems" ("ItemId" integer PRIMARY KEY, qty integer);
CREATE TABLE "Sales".payment (
  payment_id integer NOT NULL, paid_on date NOT NULL, amount numeric(8,2), PRIMARY KEY (payment_id, paid_on)
) PARTITION BY RANGE (paid_on);
CREATE TABLE "Sales".payment_p2022_01 PARTITION OF "Sales".payment FOR VALUES FROM ('2022-01-01') TO ('2022-02-01');
CREATE TABLE "Sales".payment_p2022_02 PARTITION OF "Sales".payment FOR VALUES FROM ('2022-02-01') TO ('2022-03-01');
INSERT INTO "Sales"."OrderItems" VALUES
  (1, 9.99, 'first', 2, '08:30:00', 'a fat cat', '08:00:2b:01:02:03:04:05', 'x'),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (3, 0.5, 'third', 7, '23:59:59', 'sat on a mat', '08:00:2b:01:02:03:04:06', 'y');
INSERT INTO "Archive"."OrderItems" VALUES (1, 100), (5, 500);
INSERT INTO "Sales".payment VALUES (1, '2022-01-05', 10.00), (2, '2022-01-20', 20.00), (3, '2022-02-03', 30.00);
"""
LONG_TABLE = "Customer" + "X" * 48 + "Accounts"  # 64 characters: MySQL allows it, Postgres does not
LONG_COLUMN = "Lifetime" + "V" * 50 + "Amount"  # 64 characters
MARIA_NAMES = [
    f"CREATE TABLE `{LONG_TABLE}` (`AccountId` int NOT NULL PRIMARY KEY, `{LONG_COLUMN}` decimal(12,2), "
    "`Home Spot` geometry, `IsActive` bit(1), `LastIp` inet6)",
    f"INSERT INTO `{LONG_TABLE}` VALUES (1, 12.50, ST_GeomFromText('POINT(1 2)'), b'1', '::1'), "
    "(2, NULL, NULL, b'0', NULL)",
]


def unwrap(value):
    """hcl2 wraps block attributes in one-element lists."""
    return value[0] if isinstance(value, list) else value


@pytest.fixture(scope="module")
def pg(pg_logical):
    pg_logical.create_database("names", PG_NAMES)
    return pg_logical


@pytest.fixture(scope="module")
def maria(maria_binlog):
    maria_binlog.execute("CREATE DATABASE `MixedShop`")
    maria_binlog.execute(*MARIA_NAMES, db="MixedShop")
    maria_binlog.create_user("names_reader", "SELECT ON `MixedShop`.*")
    return maria_binlog


def doctor(pg, spec_path: Path) -> dict[str, dict]:
    import json

    result = run("doctor", "--dsn", pg.dsn(db="names"), "-c", str(spec_path), "--format", "json")
    return {c["name"]: c for c in json.loads(result.output)["checks"]}


def pg_rows(pg, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", password=pg.password,
                         dbname="names") as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


def source_columns(pg, schema: str, table: str) -> list[str]:
    return [r[0] for r in pg_rows(pg, "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                      f"'{schema}' AND table_name = '{table}' ORDER BY ordinal_position")]


def as_landed(value, staging_type: str):
    """DMS lands a cast or textual type (time, tsvector) as text."""
    if value is not None and staging_type.startswith("VARCHAR") and not isinstance(value, str):
        return str(value)
    return value


def land_from_pg(pg, root: Path, spec, files, name: str, file_name, where: str = "TRUE", op: str = "I",
                 seq: int | None = None) -> None:
    """Land one spec table's source rows as DMS would under the rendered rules (each source table it reads)."""
    table = spec.table(name)
    view = table_view(spec, table)
    task = DmsTask(mapping_rules(files))
    for k, source in enumerate(table.source_tables):
        columns = source_columns(pg, table.schema_, source)
        quoted = ", ".join(f'"{c}"' for c in columns)
        rows = pg_rows(pg, f'SELECT {quoted} FROM ONLY "{table.schema_}"."{source}" WHERE {where}')
        landed = task.land(table.schema_, source, columns)
        kept = [c for c, _ in landed[1]]
        types = {c: v.staging_type for c, v in zip(kept, [c for c in view.landed if c.source])}
        rows = [tuple(as_landed(v, types.get(c, "")) for c, v in zip(columns, row)) for row in rows]
        if rows:
            land_source_rows(root, spec.landing.prefix, task, view, table.schema_, source, columns, rows,
                             file_name(k), op=op, first_seq=seq)


def analytics(database: Path, name: str, order: str) -> list[tuple]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return [tuple(r) for r in con.execute(f'SELECT * FROM analytics."{name}" ORDER BY {order}').fetchall()]
    finally:
        con.close()


def expected(pg, spec, name: str, order: str) -> list[tuple]:
    """The source rows in the spec's column order, as the warehouse holds them (cast/text types as text)."""
    table = spec.table(name)
    view = table_view(spec, table)
    quoted = ", ".join(f'"{c.source_name}"' for c in view.columns)
    rows = []
    for source in table.source_tables:
        rows += pg_rows(pg, f'SELECT {quoted} FROM ONLY "{table.schema_}"."{source}"')
    rows = [tuple(as_landed(v, c.redshift_type) for v, c in zip(row, view.columns)) for row in rows]
    keys = [view.columns.index(next(c for c in view.columns if c.name == k)) for k in order.replace('"', '').split(", ")]
    return sorted(rows, key=lambda r: tuple(r[i] for i in keys))


def test_postgres_real_names_import_render_and_load(pg, tmp_path):
    spec_path = write_spec(tmp_path, "postgres", "names")
    for schema in ("Sales", "Archive"):
        result = run("import", "--dsn", pg.dsn(db="names"), "--schema", schema, "-c", str(spec_path))
        assert result.exit_code == 0, result.output
        if schema == "Sales":
            assert "added      Sales.OrderItems (8 columns, primary key ItemId; excluded: pair: " in result.output
    text = spec_path.read_text()
    again = run("import", "--dsn", pg.dsn(db="names"), "--schema", "Sales", "-c", str(spec_path))
    assert again.exit_code == 0 and "is up to date; nothing written" in again.output, again.output
    assert spec_path.read_text() == text, "a second import finds the renamed and excluded columns by source name"
    assert '  - schema: "Sales"\n    name: order_items\n    source_name: "OrderItems"\n' in text
    assert 'name: archive_order_items\n    source_name: "OrderItems"' in text, "the second OrderItems gets its own target"
    assert 'partitions: [payment_p2022_01, payment_p2022_02]' in text
    assert 'exclude: true  # excluded: macaddr8 is outside dwctl\'s type mapping' in text
    spec = load_spec(spec_path)
    items = spec.table("order_items")
    assert [(c.name, c.source, c.exclude) for c in items.columns] == [
        ("item_id", "ItemId", False), ("unit_price", "Unit Price", False), ("_2nd_line", "2ndLine", False),
        ("qty", "qty", False), ("start_at", "StartAt", False), ("doc", "doc", False), ("pair", "pair", True),
        ("note", "note", False)]
    assert items.primary_key == ["item_id"]

    files = render(spec, "pipeline.yaml")
    rules = mapping_rules(files)
    locators = {(r["rule-type"], r["rule-action"], r.get("rule-target"), tuple(r["object-locator"].values()),
                 r.get("value")) for r in rules}
    assert ("transformation", "rename", "schema", ("Sales",), "sales") in locators
    assert ("selection", "include", None, ("Sales", "OrderItems"), None) in locators
    assert ("transformation", "rename", "table", ("Archive", "OrderItems"), "archive_order_items") in locators
    assert ("transformation", "rename", "column", ("Sales", "OrderItems", "Unit Price"), "unit_price") in locators
    assert ("transformation", "remove-column", "column", ("Sales", "OrderItems", "pair"), None) in locators
    # DMS renames no LOB column and allows one action per column: 2ndLine (text) and StartAt (cast) keep theirs
    assert not [r for r in rules if r["rule-action"] == "rename" and r["object-locator"].get("column-name")
                in ("2ndLine", "StartAt")]
    selected = {r["object-locator"]["table-name"] for r in rules if r["rule-type"] == "selection"}
    assert selected == {"OrderItems", "payment[_]p2022[_]01", "payment[_]p2022[_]02"}, "partitions, not the parent"
    glue = hcl2.loads(files["iac/glue.tf"])["resource"]
    tables = {name: body for block in glue for name, body in block.get("aws_glue_catalog_table", {}).items()}
    columns = [unwrap(c["name"]) for c in tables["order_items"]["storage_descriptor"][0]["columns"]]
    assert columns == ["op", "dms_commit_ts", "item_id", "unit_price", "2ndline", "qty", "startat", "doc", "note",
                       "dms_change_seq"]
    assert '"sales", "order_items")' in files["iac/glue.tf"] and '"archive", "archive_order_items")' in files["iac/glue.tf"]
    create = files["sql/01_create_tables.sql"]
    assert '"analytics"."order_items"' in create and '"unit_price" DECIMAL(10,2)' in create
    assert '"pair"' not in create and '"Unit Price"' not in create

    data, database = tmp_path / "landing", tmp_path / "verify.duckdb"
    for name in ("order_items", "archive_order_items", "payment"):
        land_from_pg(pg, data, spec, files, name, lambda k: f"LOAD{k + 1:08d}.parquet")
    result = run("sql", "verify", "-c", str(spec_path), "--data", str(data), "--database", str(database))
    assert result.exit_code == 0, result.output
    for name, order in (("order_items", '"item_id"'), ("archive_order_items", '"item_id"'),
                        ("payment", '"payment_id", "paid_on"')):
        assert analytics(database, name, order) == expected(pg, spec, name, order), name

    # changes at the source: an update in one partition, a new row in the other, an update of a mixed-case row
    pg.execute('UPDATE "Sales".payment SET amount = 11.00 WHERE payment_id = 1;'
               "INSERT INTO \"Sales\".payment VALUES (4, '2022-02-10', 40.00);"
               'UPDATE "Sales"."OrderItems" SET "Unit Price" = 1.25, "2ndLine" = \'changed\' WHERE "ItemId" = 2', db="names")
    land_from_pg(pg, data, spec, files, "payment", lambda k: f"{k}" + cdc_name(10 + k)[1:],
                 where="payment_id IN (1, 4)", op="U", seq=100)
    land_from_pg(pg, data, spec, files, "order_items", lambda k: cdc_name(20), where='"ItemId" = 2', op="U", seq=200)
    result = run("sql", "verify", "-c", str(spec_path), "--data", str(data), "--database", str(database))
    assert result.exit_code == 0, result.output
    assert analytics(database, "payment", '"payment_id", "paid_on"') == expected(pg, spec, "payment", "payment_id, paid_on")
    assert analytics(database, "order_items", '"item_id"') == expected(pg, spec, "order_items", "item_id")

    found = doctor(pg, spec_path)
    assert found["partitions Sales.payment"]["status"] == "pass"
    # doctor compares the source's own names: the renamed and the excluded columns all match
    assert found["columns Sales.OrderItems"]["status"] == "pass", found["columns Sales.OrderItems"]
    assert found["table Archive.OrderItems"]["status"] == "pass", found["table Archive.OrderItems"]


def test_doctor_fails_a_partitioned_table_whose_partitions_are_not_listed(pg, tmp_path):
    spec_path = write_spec(tmp_path, "postgres", "names", """
  - schema: Sales
    name: payment
    partitions: [payment_p2022_01]
    columns:
      - {name: payment_id, type: integer, nullable: false}
      - {name: paid_on, type: date, nullable: false}
      - {name: amount, type: "numeric(8,2)"}
    primary_key: [payment_id, paid_on]
""")
    check = doctor(pg, spec_path)["partitions Sales.payment"]
    assert check["status"] == "fail"
    assert check["detail"] == "changes to payment_p2022_02 would reach no table (not in the spec's partitions)"
    assert check["fix"] == "run dwctl import to take the source's partitions"


def test_import_lists_inheritance_children_and_doctor_warns_their_keys_are_not_kept_apart(pg, tmp_path):
    """An INHERITS parent holds rows of its own: import lists it first, then its children; each lands
    in its folder, and doctor warns that Postgres does not keep keys unique across them."""
    pg.execute('CREATE TABLE "Sales".ledger (entry_id integer PRIMARY KEY, note text);'
               'CREATE TABLE "Sales".ledger_old (PRIMARY KEY (entry_id)) INHERITS ("Sales".ledger)', db="names")
    try:
        spec_path = write_spec(tmp_path, "postgres", "names")
        result = run("import", "--dsn", pg.dsn(db="names"), "--schema", "Sales", "-c", str(spec_path))
        assert result.exit_code == 0, result.output
        assert "partitions: [ledger, ledger_old]" in spec_path.read_text()
        spec = load_spec(spec_path)
        assert [u.name for u in table_view(spec, spec.table("ledger")).units] == ["ledger", "ledger_old"]
        found = doctor(pg, spec_path)
        assert found["partitions Sales.ledger"]["status"] == "pass"
        check = found["inheritance Sales.ledger"]
        assert check["status"] == "warn" and "does not keep a key unique across the parent" in check["detail"]
        assert "inheritance Sales.payment" not in found, "declarative partitions keep keys apart"
    finally:
        pg.execute('DROP TABLE "Sales".ledger CASCADE', db="names")


def test_mariadb_long_mixed_case_names_and_exotic_columns(maria, tmp_path):
    spec_path = write_spec(tmp_path, "mysql", "shop")
    result = run("import", "--dsn", maria.dsn("names_reader", "MixedShop"), "-c", str(spec_path))
    assert result.exit_code == 0, result.output
    spec = load_spec(spec_path)
    [table] = spec.tables
    assert (table.schema_, table.source) == ("MixedShop", LONG_TABLE) and len(table.source) == 64
    assert len(table.name) <= 63 and table.name.startswith("customer_x")
    by_source = {c.source: c for c in table.columns}
    assert by_source[LONG_COLUMN].name.startswith("lifetime_v") and len(by_source[LONG_COLUMN].name) <= 63
    assert by_source["LastIp"].exclude, "inet6 is outside the mapping: excluded, not the whole table skipped"
    assert (by_source["Home Spot"].type, by_source["IsActive"].type) == ("geometry", "bit(1)")
    files = render(spec, "pipeline.yaml")
    task = DmsTask(mapping_rules(files))
    folder, kept = task.land("MixedShop", LONG_TABLE, ["AccountId", LONG_COLUMN, "Home Spot", "IsActive", "LastIp"])
    assert folder == f"mixed_shop/{table.name}"
    # geometry is a BLOB to DMS: not renamable, it lands under its source name
    assert kept == [("AccountId", "account_id"), (LONG_COLUMN, by_source[LONG_COLUMN].name),
                    ("Home Spot", "Home Spot"), ("IsActive", "is_active")]
    view = table_view(spec, table)
    assert [c.parquet_name for c in view.landed if c.source] == [name for _, name in kept]

    import pymysql

    conn = pymysql.connect(unix_socket=maria.socket, user="root", password="", database="MixedShop")
    with conn.cursor() as cur:
        cur.execute(f"SELECT `AccountId`, `{LONG_COLUMN}`, ST_AsBinary(`Home Spot`), `IsActive` = 1, `LastIp` "
                    f"FROM `{LONG_TABLE}` ORDER BY 1")
        rows = [tuple(r) for r in cur.fetchall()]
    conn.close()
    rows = [(r[0], r[1], r[2], None if r[3] is None else bool(r[3]), r[4]) for r in rows]
    data, database = tmp_path / "landing", tmp_path / "verify.duckdb"
    land_source_rows(data, spec.landing.prefix, task, view, "MixedShop", LONG_TABLE,
                     ["AccountId", LONG_COLUMN, "Home Spot", "IsActive", "LastIp"], rows, "LOAD00000001.parquet")
    result = run("sql", "verify", "-c", str(spec_path), "--data", str(data), "--database", str(database))
    assert result.exit_code == 0, result.output
    got = analytics(database, table.name, '"account_id"')
    assert got == [(r[0], r[1] if r[1] is None else decimal.Decimal(r[1]), r[2], r[3]) for r in rows]
