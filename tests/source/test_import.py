"""`dwctl import` against real PostgreSQL and MariaDB servers: type spelling, merge, round trip, secrets."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import pytest

from dwctl.spec.read import load_spec, parse_spec
from dwctl.spec.type_mapping import map_type, parse_source_type
from tests.conftest import EXAMPLE
from tests.support.cli import run
from tests.support.minispec import write_spec

PG_SHOP = """
CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped');
-- identical to the example spec
CREATE TABLE customers (
  customer_id bigint PRIMARY KEY, email varchar(320) NOT NULL, full_name varchar(200), phone varchar(32),
  country_code char(2), marketing_opt_in boolean NOT NULL, created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL);
-- status became an enum, coupon_code is new (in the middle)
CREATE TABLE orders (
  order_id bigint PRIMARY KEY, customer_id bigint NOT NULL, status order_status NOT NULL,
  total_amount numeric(14,2) NOT NULL, currency char(3) NOT NULL, coupon_code varchar(40),
  placed_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE order_items (
  order_id bigint, line_no integer, product_id bigint NOT NULL, quantity integer NOT NULL,
  unit_price numeric(12,2) NOT NULL, discount numeric(12,2), PRIMARY KEY (order_id, line_no));
-- products is gone; shipments is new, with a composite key
CREATE TABLE shipments (
  order_id bigint, shipment_no integer, carrier varchar(40), tracking uuid NOT NULL, shipped_at timestamptz,
  PRIMARY KEY (order_id, shipment_no));
CREATE TABLE audit_log (event text, happened_at timestamptz);

CREATE SCHEMA exotic;
CREATE DOMAIN exotic.amount AS numeric(18,4) NOT NULL;
CREATE TABLE exotic.everything (
  id uuid PRIMARY KEY, amount numeric(12,2) NOT NULL, ratio numeric, huge numeric(40,10), price exotic.amount,
  doc jsonb, raw_json json, tags text[], scores integer[], codes varchar(8)[], states public.order_status[],
  status public.order_status, happened_at timestamptz, happened_ms timestamp(3) with time zone,
  local_at timestamp, payload bytea, day date, at_time time, flag boolean, r real, dp double precision,
  small smallint, big bigint, n serial, initials char(2), note varchar, body text, span interval);
CREATE TABLE exotic.geo (id integer PRIMARY KEY, spot point);
CREATE TABLE exotic."Shouty" (id integer PRIMARY KEY);
"""

EXOTIC_TYPES = {
    "id": ("uuid", False), "amount": ("numeric(12,2)", False), "ratio": ("numeric", True),
    "huge": ("numeric(40,10)", True), "price": ("numeric(18,4)", False), "doc": ("jsonb", True),
    "raw_json": ("json", True), "tags": ("text[]", True), "scores": ("integer[]", True),
    "codes": ("varchar(8)[]", True), "states": ("enum[]", True), "status": ("enum", True),
    "happened_at": ("timestamptz", True), "happened_ms": ("timestamptz(3)", True), "local_at": ("timestamp", True),
    "payload": ("bytea", True), "day": ("date", True), "at_time": ("time", True), "flag": ("boolean", True),
    "r": ("real", True), "dp": ("double precision", True), "small": ("smallint", True), "big": ("bigint", True),
    "n": ("integer", False), "initials": ("char(2)", True), "note": ("varchar", True), "body": ("text", True),
    "span": ("interval", True),
}

MARIA_SHOP = [
    """CREATE TABLE accounts (
      id int(10) unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, active tinyint(1) NOT NULL, tiny tinyint unsigned,
      kind enum('basic','pro') NOT NULL, flags set('a','b'), odd enum('it''s','x'), balance decimal(12,2),
      attrs json, created datetime(3) NOT NULL, touched timestamp NULL, token varbinary(16),
      big bigint(20) unsigned, mid mediumint, name varchar(100), code char(3), body longtext, photo blob,
      ratio double, small_ratio float, zf int(5) zerofill)""",
    "CREATE TABLE memberships (account_id int unsigned NOT NULL, group_id int NOT NULL, since date, "
    "PRIMARY KEY (account_id, group_id))",
    "CREATE TABLE events (msg text)",
    "CREATE TABLE shapes (id int PRIMARY KEY, g geometry)",
]
MARIA_TYPES = {
    "id": ("int unsigned", False), "active": ("tinyint", False), "tiny": ("tinyint unsigned", True),
    "kind": ("enum('basic','pro')", False), "flags": ("set('a','b')", True), "odd": ("enum('it''s','x')", True),
    "balance": ("decimal(12,2)", True), "attrs": ("json", True), "created": ("datetime(3)", False),
    "touched": ("timestamp", True), "token": ("varbinary(16)", True), "big": ("bigint unsigned", True),
    "mid": ("mediumint", True), "name": ("varchar(100)", True), "code": ("char(3)", True),
    "body": ("longtext", True), "photo": ("blob", True), "ratio": ("double", True), "small_ratio": ("float", True),
    "zf": ("int unsigned", True),
}


@pytest.fixture(scope="module")
def pg(pg_logical):
    pg_logical.create_database("imp", PG_SHOP)
    pg_logical.create_user("importer", password="p@ss:w/rd%?#")
    pg_logical.execute("GRANT USAGE ON SCHEMA exotic TO importer", db="imp")
    return pg_logical


@pytest.fixture(scope="module")
def maria(maria_binlog):
    maria_binlog.execute("CREATE DATABASE imp_shop")
    maria_binlog.execute(*MARIA_SHOP, db="imp_shop")
    maria_binlog.create_user("imp_reader", "SELECT ON imp_shop.*")
    return maria_binlog


@pytest.fixture
def example_copy(tmp_path) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_bytes(EXAMPLE.read_bytes())
    return path


def columns(spec, name):
    return {c.name: (c.type, c.nullable) for c in spec.table(name).columns}


def block(lines: list[str], name: str) -> tuple[int, int]:
    """[start, end) line range of the table item named `name` in a spec's tables: list."""
    start = next(i for i, ln in enumerate(lines) if ln == f"    name: {name}\n") - 1
    end = start + 1
    while end < len(lines) and not lines[end].startswith("  - ") and lines[end][:1] in (" ", "\n"):
        end += 1
    while lines[end - 1] == "\n":
        end -= 1
    return start, end


# --- Postgres ------------------------------------------------------------------------

def test_round_trip_changes_only_the_changed_table_blocks(pg, example_copy):
    before = example_copy.read_text()
    result = run("import", "--dsn", pg.dsn(db="imp"), "-c", str(example_copy))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "added      public.shipments (5 columns, primary key order_id, shipment_no)" in out
    assert "updated    public.orders: column status type varchar(20) -> enum; column coupon_code added" in out
    assert "vanished   public.products: no longer in the source; kept in the spec" in out
    assert "skipped    public.audit_log: not imported: no primary key; the spec requires one" in out
    assert "unchanged  public.customers, public.order_items" in out

    after = example_copy.read_text()
    old, new = before.splitlines(True), after.splitlines(True)
    o_start, o_end = block(old, "orders")
    n_start, n_end = block(new, "orders")
    s_start, s_end = block(new, "shipments")
    # Bytes outside the orders block and the appended shipments block are identical:
    # header comments, quoting, the other tables, the grants and their comments.
    assert new[:n_start] == old[:o_start]
    assert new[n_end:s_start - 1] + new[s_end:] == old[o_end:]
    assert new[s_start - 1] == "\n", "a blank line separates the new table like the others"
    # Inside the orders block only the changed column lines differ.
    changed = [ln for ln in difflib.unified_diff(old[o_start:o_end], new[n_start:n_end], n=0)
               if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    assert changed == ["-      - {name: status, type: varchar(20), nullable: false}\n",
                       "+      - {name: status, type: enum, nullable: false}\n",
                       "+      - {name: coupon_code, type: varchar(40)}\n"]
    assert "    primary_key: [order_id, line_no]   # composite key\n" in new

    spec = parse_spec(after, "merged")
    orders = spec.table("orders")
    assert orders.column_names == ["order_id", "customer_id", "status", "total_amount", "currency", "coupon_code",
                                   "placed_at", "updated_at"]
    assert columns(spec, "orders")["status"] == ("enum", False)
    assert columns(spec, "orders")["coupon_code"] == ("varchar(40)", True)
    assert (orders.dist_key, orders.sort_keys) == ("customer_id", ["placed_at"])
    shipments = spec.table("shipments")
    assert shipments.primary_key == ["order_id", "shipment_no"]
    assert columns(spec, "shipments")["tracking"] == ("uuid", False)
    assert [t.name for t in spec.tables] == ["customers", "products", "orders", "order_items", "shipments"]
    assert "audit_log" not in after


def test_second_import_changes_nothing(pg, example_copy):
    assert run("import", "--dsn", pg.dsn(db="imp"), "-c", str(example_copy)).exit_code == 0
    once = example_copy.read_bytes()
    again = run("import", "--dsn", pg.dsn(db="imp"), "-c", str(example_copy))
    assert again.exit_code == 0, again.output
    assert "is up to date; nothing written" in again.output
    assert "unchanged  public.customers, public.order_items, public.orders, public.shipments" in again.output
    assert example_copy.read_bytes() == once


def test_dry_run_shows_the_diff_and_writes_nothing(pg, example_copy):
    before = example_copy.read_bytes()
    result = run("import", "--dsn", pg.dsn(db="imp"), "-c", str(example_copy), "--dry-run")
    assert result.exit_code == 0, result.output
    assert example_copy.read_bytes() == before
    assert "--- a/" in result.output and "+++ b/" in result.output
    assert "-      - {name: status, type: varchar(20), nullable: false}\n" in result.output
    assert "+      - {name: status, type: enum, nullable: false}\n" in result.output
    assert "+      - {name: coupon_code, type: varchar(40)}\n" in result.output
    assert "dry run: nothing written" in result.output


def test_prune_that_would_break_a_grant_writes_nothing(pg, example_copy):
    before = example_copy.read_bytes()
    result = run("import", "--dsn", pg.dsn(db="imp"), "-c", str(example_copy), "--prune")
    assert result.exit_code == 2
    assert "the merged spec would not validate, so nothing was written" in result.output
    assert "no table named 'products'" in result.output
    assert "added" not in result.output and "removed" not in result.output, "nothing reads as done that was not"
    assert example_copy.read_bytes() == before
    assert not [p for p in example_copy.parent.iterdir() if p.name != example_copy.name], "no temp file left"


def test_prune_removes_a_vanished_table(pg, example_copy):
    text = example_copy.read_text().replace("tables: [products, orders, order_items]", "tables: [orders, order_items]")
    example_copy.write_text(text)
    result = run("import", "--dsn", pg.dsn(db="imp"), "-c", str(example_copy), "--prune", "--tables", "products")
    assert result.exit_code == 0, result.output
    assert "removed    public.products: gone from the source (--prune)" in result.output
    after = example_copy.read_text()
    assert "name: products" not in after
    start, end = block(text.splitlines(True), "products")
    lines = text.splitlines(True)
    assert after == "".join(lines[:start] + lines[end + 1:]), "only the products block (and its blank line) went"


def test_user_keys_survive_while_they_still_name_a_column(pg, example_copy):
    text = example_copy.read_text()
    text = text.replace("      - {name: status, type: varchar(20), nullable: false}\n",
                        "      - {name: status, type: varchar(20), nullable: false, redshift_type: VARCHAR(80)}\n"
                        "      - {name: legacy_flag, type: boolean}   # gone from the source\n")
    text = text.replace("    dist_key: customer_id\n    sort_keys: [placed_at]\n",
                        "    dist_key: legacy_flag\n    sort_keys: [legacy_flag, placed_at]   # newest last\n")
    example_copy.write_text(text)
    load_spec(example_copy)  # the edited spec is valid before the import
    result = run("import", "--dsn", pg.dsn(db="imp"), "-c", str(example_copy), "--tables", "orders")
    assert result.exit_code == 0, result.output
    assert ("updated    public.orders: column status type varchar(20) -> enum; column status keeps redshift_type "
            "VARCHAR(80) (check it still fits); column coupon_code added (varchar(40)); column legacy_flag removed; "
            "dist_key legacy_flag dropped (no such column any more); sort_keys legacy_flag dropped") in result.output
    after = example_copy.read_text()
    assert "      - {name: status, type: enum, nullable: false, redshift_type: VARCHAR(80)}\n" in after
    assert re.search(r"\n    sort_keys: \[placed_at\] +# newest last\n", after), "the comment stays"
    orders = load_spec(example_copy).table("orders")
    assert (orders.dist_key, orders.sort_keys) == (None, ["placed_at"])
    assert "legacy_flag" not in orders.column_names


def test_tables_option_limits_the_import(pg, example_copy):
    result = run("import", "--dsn", pg.dsn(db="imp"), "-c", str(example_copy), "--tables", "customers,orders,nosuch")
    assert result.exit_code == 0, result.output
    assert "missing    nosuch: not found in the source" in result.output
    assert "products" not in result.output and "shipments" not in result.output
    spec = load_spec(example_copy)
    assert [t.name for t in spec.tables] == ["customers", "products", "orders", "order_items"]


def test_exotic_postgres_types_are_spelled_for_the_mapping(pg, example_copy):
    result = run("import", "--dsn", pg.dsn(db="imp"), "--schema", "exotic", "-c", str(example_copy))
    assert result.exit_code == 0, result.output
    spec = load_spec(example_copy)
    table = spec.table("everything")
    assert table.schema_ == "exotic"
    assert columns(spec, "everything") == EXOTIC_TYPES
    assert table.column_names == list(EXOTIC_TYPES), "columns keep the source's order"
    for column in table.columns:  # every spelling goes through the documented mapping
        parse_source_type(column.type, "postgres")
        map_type(column.type, "postgres")
    assert spec.table("geo").columns[1].type == "point", "geometric types are mapped as DMS lands them (text)"
    assert spec.table("shouty").source == "Shouty", "a mixed-case name is kept as the source name"
    assert '{name: tags, type: "text[]"}' in example_copy.read_text(), "flow-unsafe types are quoted"


def test_import_into_an_empty_table_list(pg, tmp_path):
    spec_path = write_spec(tmp_path, "postgres", "imp")
    result = run("import", "--dsn", pg.dsn(db="imp"), "-c", str(spec_path), "--tables", "order_items,customers")
    assert result.exit_code == 0, result.output
    text = spec_path.read_text()
    assert "tables:\n  - schema: public\n    name: order_items\n" in text
    assert "\n\n  - schema: public\n    name: customers\n" not in text  # no blank-line style to copy
    spec = parse_spec(text)
    assert spec.table("order_items").primary_key == ["order_id", "line_no"]
    assert text.startswith("# A test spec: everything but the tables is fixed.\n")


# --- credentials ---------------------------------------------------------------------

def test_password_in_the_dsn_is_never_printed_or_written(pg, example_copy):
    secret = pg.passwords["importer"]
    result = run("import", "--dsn", pg.dsn("importer", "imp"), "-c", str(example_copy))
    assert result.exit_code == 0, result.output
    assert "importer:***@127.0.0.1" in result.output
    assert secret not in result.output and "p%40ss" not in result.output
    assert secret not in example_copy.read_text()


def test_a_failed_login_masks_the_password(pg, example_copy):
    before = example_copy.read_bytes()
    dsn = pg.dsn(db="imp").replace(pg.password, "wrong-Secret-123")
    result = run("import", "--dsn", dsn, "-c", str(example_copy))
    assert result.exit_code == 1
    assert "cannot connect to postgresql://postgres:***@127.0.0.1" in result.output
    assert "password authentication failed" in result.output
    assert "wrong-Secret-123" not in result.output
    assert "Traceback" not in result.output
    assert example_copy.read_bytes() == before


def test_password_from_pgpassword_and_pgpass(pg, example_copy, tmp_path):
    dsn = pg.dsn("importer", "imp", password=False)
    secret = pg.passwords["importer"]
    env = {"PGPASSWORD": secret, "PGPASSFILE": str(tmp_path / "none")}
    assert run("import", "--dsn", dsn, "-c", str(example_copy), "--dry-run", env=env).exit_code == 0
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{pg.port}:imp:importer:{secret.replace(':', chr(92) + ':')}\n")
    pgpass.chmod(0o600)
    result = run("import", "--dsn", dsn, "-c", str(example_copy), "--dry-run",
                 env={"PGPASSWORD": None, "PGPASSFILE": str(pgpass)})
    assert result.exit_code == 0, result.output
    assert secret not in result.output


def test_no_password_and_no_terminal_says_how_to_give_one(pg, example_copy, tmp_path):
    result = run("import", "--dsn", pg.dsn("importer", "imp", password=False), "-c", str(example_copy),
                 env={"PGPASSWORD": None, "PGPASSFILE": str(tmp_path / "none")})
    assert result.exit_code == 1
    assert "no password was given: set PGPASSWORD or add the host to ~/.pgpass" in result.output


def test_prompts_for_the_password_on_a_terminal(pg, example_copy, tmp_path, monkeypatch):
    monkeypatch.setattr("dwctl.source.connection.can_prompt", lambda: True)
    secret = pg.passwords["importer"]
    result = run("import", "--dsn", pg.dsn("importer", "imp", password=False), "-c", str(example_copy),
                 env={"PGPASSWORD": None, "PGPASSFILE": str(tmp_path / "none")}, input=secret + "\n")
    assert result.exit_code == 0, result.output
    assert "Password for postgresql://importer@127.0.0.1" in result.output
    assert secret not in result.output
    assert "added      public.shipments" in result.output


def test_engine_mismatch_is_a_usage_error(maria, example_copy):
    result = run("import", "--dsn", maria.dsn("imp_reader", "imp_shop"), "-c", str(example_copy))
    assert result.exit_code == 2
    assert "--dsn is a mysql database but" in result.output and "source.engine: postgres" in result.output


# --- MariaDB -------------------------------------------------------------------------

def test_mariadb_types_keys_and_skips(maria, tmp_path):
    spec_path = write_spec(tmp_path, "mysql", "imp_shop")
    secret = maria.passwords["imp_reader"]
    result = run("import", "--dsn", maria.dsn("imp_reader", "imp_shop", password=False), "-c", str(spec_path),
                 env={"MYSQL_PWD": secret})
    assert result.exit_code == 0, result.output
    assert secret not in result.output
    spec = load_spec(spec_path)
    assert [(t.schema_, t.name) for t in spec.tables] == [("imp_shop", "accounts"), ("imp_shop", "memberships"),
                                                         ("imp_shop", "shapes")]
    assert columns(spec, "accounts") == MARIA_TYPES
    assert spec.table("memberships").primary_key == ["account_id", "group_id"]
    assert spec.table("accounts").primary_key == ["id"]
    for column in spec.table("accounts").columns:
        map_type(column.type, "mysql")
    assert "skipped    imp_shop.events: not imported: no primary key" in result.output
    assert spec.table("shapes").columns[1].type == "geometry", "spatial columns land as their bytes"
    assert """{name: kind, type: "enum('basic','pro')", nullable: false}""" in spec_path.read_text()


def test_mariadb_without_a_password_says_how_to_give_one(maria, tmp_path):
    spec_path = write_spec(tmp_path, "mysql", "imp_shop")
    result = run("import", "--dsn", maria.dsn("imp_reader", "imp_shop", password=False), "-c", str(spec_path),
                 env={"MYSQL_PWD": None})
    assert result.exit_code == 1
    assert "Access denied" in result.output
    assert "no password was given: set MYSQL_PWD" in result.output


def test_spec_file_must_exist(pg, tmp_path):
    result = run("import", "--dsn", pg.dsn(db="imp"), "-c", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "spec file not found (import merges into an existing spec" in result.output
    assert pg.password not in result.output


def test_dwctl_help_does_not_load_database_drivers():
    import subprocess
    import sys

    mine = ("psycopg", "pymysql", "ruamel.yaml", "dwctl.source.connection", "dwctl.source.introspect", "dwctl.source.spec_merge",
            "dwctl.source.yaml_roundtrip", "dwctl.source.doctor_checks")
    code = ("import sys; from dwctl.cli import cli\n"
            "for args in (['--help'], ['import', '--help'], ['doctor', '--help']):\n"
            "    try: cli(args)\n    except SystemExit: pass\n"
            "assert 'dwctl.source.importer' in sys.modules and 'dwctl.source.doctor' in sys.modules\n"
            f"sys.stderr.write(repr([m for m in {mine!r} if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert done.stderr.strip() == "[]", done.stderr
