"""`dwctl doctor` against real PostgreSQL (wal_level logical and replica) and MariaDB (binlog on and off)."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import run
from tests.support.minispec import write_spec

PG_DOC = """
CREATE TABLE orders (order_id bigint PRIMARY KEY, customer_id bigint NOT NULL, total numeric(12,2) NOT NULL,
                     placed_at timestamptz NOT NULL, note text);
CREATE TABLE order_items (order_id bigint, line_no integer, qty integer NOT NULL, PRIMARY KEY (order_id, line_no));
CREATE TABLE audit_log (event text NOT NULL, happened_at timestamptz);
CREATE TABLE places (id integer PRIMARY KEY, spot macaddr8, label varchar(50));
"""

# Hand-written and out of date: every kind of drift doctor must name.
PG_DRIFT_TABLES = """
  - name: orders
    columns:
      - {name: order_id, type: bigint, nullable: false}
      - {name: customer_id, type: bigint}
      - {name: total, type: "numeric(10,2)", nullable: false}
      - {name: placed_at, type: timestamptz, nullable: false}
      - {name: discount, type: "numeric(12,2)"}
    primary_key: [order_id]
  - name: order_items
    columns:
      - {name: order_id, type: int8, nullable: false}
      - {name: line_no, type: int4, nullable: false}
      - {name: qty, type: integer, nullable: false}
    primary_key: [order_id, line_no]
  - name: audit_log
    columns:
      - {name: event, type: text, nullable: false}
      - {name: happened_at, type: timestamptz}
    primary_key: [event]
  - name: places
    columns:
      - {name: id, type: integer, nullable: false}
      - {name: label, type: varchar(50)}
    primary_key: [id]
  - name: ghosts
    columns:
      - {name: id, type: integer, nullable: false}
    primary_key: [id]
"""

PG_ITEMS_TABLE = """
  - name: order_items
    columns:
      - {name: order_id, type: bigint, nullable: false}
      - {name: line_no, type: integer, nullable: false}
      - {name: qty, type: integer, nullable: false}
    primary_key: [order_id, line_no]
"""
MARIA_ORDERS_TABLE = """
  - schema: doc_shop
    name: orders
    columns:
      - {name: order_id, type: bigint unsigned, nullable: false}
      - {name: line_no, type: int, nullable: false}
      - {name: status, type: "enum('new','paid')", nullable: false}
      - {name: paid, type: tinyint}
    primary_key: [order_id, line_no]
"""

MARIA_DOC = [
    "CREATE TABLE orders (order_id bigint unsigned NOT NULL, line_no int NOT NULL, status enum('new','paid') "
    "NOT NULL, paid tinyint(1), PRIMARY KEY (order_id, line_no))",
    "CREATE TABLE log_lines (msg text)",
]


def checks(result) -> dict[str, dict]:
    data = json.loads(result.output)
    return {c["name"]: c for c in data["checks"]}


@pytest.fixture(scope="module")
def pg(pg_logical):
    pg_logical.create_database("doc", PG_DOC)
    pg_logical.create_user("app")
    pg_logical.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO app", db="doc")
    return pg_logical


@pytest.fixture(scope="module")
def pg_rep(pg_replica):
    pg_replica.create_database("doc", PG_DOC)
    pg_replica.create_user("rds_app")
    # What RDS looks like from inside: the rds.logical_replication parameter and the rds_replication role.
    pg_replica.execute("CREATE ROLE rds_replication; GRANT rds_replication TO rds_app; "
                       "ALTER ROLE rds_app SET rds.logical_replication = '0'")
    return pg_replica


@pytest.fixture(scope="module")
def maria_on(maria_binlog):
    maria_binlog.execute("CREATE DATABASE doc_shop")
    maria_binlog.execute(*MARIA_DOC, db="doc_shop")
    maria_binlog.create_user("doc_admin", "ALL PRIVILEGES ON *.*")
    maria_binlog.create_user("doc_reader", "SELECT ON doc_shop.*")
    return maria_binlog


@pytest.fixture(scope="module")
def maria_off(maria_nobinlog):
    maria_nobinlog.execute("CREATE DATABASE doc_shop")
    maria_nobinlog.execute(*MARIA_DOC, db="doc_shop")
    maria_nobinlog.create_user("doc_admin", "ALL PRIVILEGES ON *.*")
    return maria_nobinlog


@pytest.fixture
def imported_pg_spec(pg, tmp_path):
    """A spec that `dwctl import` wrote: doctor must find nothing wrong with it."""
    path = write_spec(tmp_path, "postgres", "doc")
    result = run("import", "--dsn", pg.dsn(db="doc"), "-c", str(path), "--tables", "orders,order_items")
    assert result.exit_code == 0, result.output
    return path


# --- Postgres ------------------------------------------------------------------------

def test_ready_postgres_and_an_imported_spec_pass(pg, imported_pg_spec):
    result = run("doctor", "--dsn", pg.dsn(db="doc"), "-c", str(imported_pg_spec))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split() == ["STATUS", "CHECK", "DETAIL"]
    table = lines[2:lines.index(next(ln for ln in lines if ln.startswith("checks:")))]
    rows = {ln[8:].split("  ")[0].strip(): ln[:6].strip() for ln in table}
    assert rows == {"server": "pass", "wal_level": "pass", "replication slots": "pass", "wal senders": "pass",
                    "replication privilege": "pass", "table public.order_items": "pass",
                    "cdc public.order_items": "pass", "columns public.order_items": "pass",
                    "table public.orders": "pass", "cdc public.orders": "pass", "columns public.orders": "pass",
                    "toast public.orders": "warn", "key updates": "warn"}
    assert "primary key (order_id, line_no)" in result.output
    assert "logged, REPLICA IDENTITY DEFAULT" in result.output
    assert "checks: 11 pass, 2 warn, 0 fail" in result.output
    fixes = result.output.split("fixes:\n", 1)[1]
    assert fixes.startswith("  warn toast public.orders: ALTER TABLE public.orders REPLICA IDENTITY FULL;")
    assert "  warn key updates: change a key as DELETE then INSERT" in fixes


def test_wal_level_replica_fails_with_the_fix(pg_rep, tmp_path):
    spec = write_spec(tmp_path, "postgres", "doc", PG_ITEMS_TABLE)
    result = run("doctor", "--dsn", pg_rep.dsn(db="doc"), "-c", str(spec))
    assert result.exit_code == 1, result.output
    assert "FAIL    wal_level" in result.output
    assert "replica; CDC needs logical decoding" in result.output
    assert "fail wal_level: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL" in result.output
    assert "fail replication slots: raise max_replication_slots to at least 2 with ALTER SYSTEM SET" in result.output
    assert "warn wal senders: raise max_wal_senders" in result.output
    assert "max_wal_senders = 1, 0 in use, 1 free (no headroom" in result.output


def test_on_rds_the_fix_names_the_parameter_group(pg_rep, tmp_path):
    spec = write_spec(tmp_path, "postgres", "doc", PG_ITEMS_TABLE)
    result = run("doctor", "--dsn", pg_rep.dsn("rds_app", "doc"), "-c", str(spec), "--format", "json")
    assert result.exit_code == 1
    found = checks(result)
    assert found["server"]["detail"].endswith("(RDS)")
    assert found["wal_level"]["fix"] == "set rds.logical_replication = 1 in the instance's DB parameter group, then reboot"
    assert "in the DB parameter group (then reboot)" in found["replication slots"]["fix"]
    assert found["replication privilege"] == {"name": "replication privilege", "status": "pass",
                                              "detail": "rds_app has rds_replication", "fix": None}


def test_a_user_without_replication_fails(pg, imported_pg_spec):
    result = run("doctor", "--dsn", pg.dsn("app", "doc"), "-c", str(imported_pg_spec), "--format", "json")
    assert result.exit_code == 1
    found = checks(result)
    assert found["replication privilege"]["status"] == "fail"
    assert found["replication privilege"]["fix"] == "ALTER ROLE app WITH REPLICATION;"
    assert json.loads(result.output)["ok"] is False
    assert pg.passwords["app"] not in result.output
    assert json.loads(result.output)["dsn"].startswith("postgresql://app:***@127.0.0.1:")


def test_replication_slots_warn_when_low_and_fail_when_used_up(pg, imported_pg_spec):
    def slots():
        result = run("doctor", "--dsn", pg.dsn(db="doc"), "-c", str(imported_pg_spec), "--format", "json")
        return result.exit_code, checks(result)["replication slots"]

    try:
        pg.execute("SELECT pg_create_physical_replication_slot('dwctl_test_1')")
        code, check = slots()
        assert (code, check["status"], check["detail"]) == (0, "warn", "max_replication_slots = 2, 1 in use, 1 free "
                                                                       "(no headroom for another task or a task restart)")
        pg.execute("SELECT pg_create_physical_replication_slot('dwctl_test_2')")
        code, check = slots()
        assert (code, check["status"]) == (1, "fail")
        assert "raise max_replication_slots to at least 4" in check["fix"]
    finally:
        pg.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                   "WHERE slot_name LIKE 'dwctl_test_%'")


def test_every_dms_task_of_the_spec_needs_its_own_slot_and_sender(pg, imported_pg_spec):
    """Two tables, one task each: the 2 free slots of the test server are just enough."""
    text = imported_pg_spec.read_text(encoding="utf-8")
    for key, task in (("[order_id]", "a"), ("[order_id, line_no]", "b")):
        text = text.replace(f"    primary_key: {key}\n", f"    primary_key: {key}\n    task: {task}\n", 1)
    imported_pg_spec.write_text(text, encoding="utf-8")
    result = run("doctor", "--dsn", pg.dsn(db="doc"), "-c", str(imported_pg_spec), "--format", "json")
    slots = checks(result)["replication slots"]
    assert (result.exit_code, slots["status"]) == (0, "warn"), result.output
    assert slots["detail"] == ("max_replication_slots = 2, 0 in use, 2 free, the spec runs 2 DMS tasks "
                               "(no headroom for another task or a task restart)")
    assert "raise max_replication_slots to at least 3" in slots["fix"]


def test_drift_missing_tables_and_keys_are_named(pg, tmp_path):
    spec = write_spec(tmp_path, "postgres", "doc", PG_DRIFT_TABLES)
    result = run("doctor", "--dsn", pg.dsn(db="doc"), "-c", str(spec), "--format", "json")
    assert result.exit_code == 1
    found = checks(result)
    orders = found["columns public.orders"]
    assert orders["status"] == "fail"
    assert orders["detail"] == ("total is numeric(12,2) in the source, numeric(10,2) in the spec; "
                                "discount missing in the source; "
                                "not in the spec: note (DMS lands every source column the spec does not exclude, "
                                "and the load job holds every file of the table that carries one); "
                                "customer_id is NOT NULL in the source (the spec could say nullable: false)")
    assert orders["fix"] == ("add note to the spec (dwctl import does), or exclude them (exclude: true on the column, "
                             "or the table's exclude: list), which renders a DMS remove-column rule")
    assert found["drift public.orders"]["status"] == "fail"
    assert found["table public.order_items"]["status"] == "pass", "int8/int4 are the same types as bigint/integer"
    assert found["columns public.order_items"]["status"] == "pass"
    assert found["table public.audit_log"]["status"] == "fail"
    assert found["table public.audit_log"]["fix"] == "ALTER TABLE public.audit_log ADD PRIMARY KEY (event);"
    assert found["table public.ghosts"]["status"] == "fail"
    assert "columns public.ghosts" not in found
    assert found["columns public.places"]["status"] == "fail"
    assert found["columns public.places"]["detail"].startswith("not in the spec: spot (DMS lands every source column")
    assert found["types public.places"]["status"] == "warn"
    assert found["types public.places"]["detail"] == "outside the documented mapping: spot (macaddr8)"


def test_text_output_lists_a_fix_for_every_failure(pg, tmp_path):
    spec = write_spec(tmp_path, "postgres", "doc", PG_DRIFT_TABLES)
    result = run("doctor", "--dsn", pg.dsn(db="doc"), "-c", str(spec))
    assert result.exit_code == 1
    fixes = result.output.split("fixes:\n", 1)[1]
    failed = [ln.split()[1:3] for ln in result.output.splitlines() if ln.startswith("FAIL")]
    assert failed == [["columns", "public.orders"], ["drift", "public.orders"], ["table", "public.audit_log"],
                      ["columns", "public.places"], ["drift", "public.places"], ["table", "public.ghosts"]]
    for kind, name in failed:
        assert f"  fail {kind} {name}: " in fixes


def test_spec_of_another_engine_is_a_usage_error(maria_on, imported_pg_spec):
    result = run("doctor", "--dsn", maria_on.dsn("doc_admin", "doc_shop"), "-c", str(imported_pg_spec))
    assert result.exit_code == 2
    assert "--dsn is a mysql database but" in result.output


def test_no_spec_runs_the_server_checks_only(pg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no config/pipeline.yaml here
    result = run("doctor", "--dsn", pg.dsn(db="doc"), "--format", "json")
    assert result.exit_code == 0, result.output
    assert checks(result)["spec"]["status"] == "warn"


def test_unreachable_server_fails_with_exit_1(pg, imported_pg_spec):
    from tests.support.dbservers import free_port

    result = run("doctor", "--dsn", f"postgresql://dms:Sup3r-Secret@127.0.0.1:{free_port()}/shop",
                 "-c", str(imported_pg_spec))
    assert result.exit_code == 1
    assert "cannot connect to postgresql://dms:***@127.0.0.1:" in result.output
    assert "Sup3r-Secret" not in result.output and "Traceback" not in result.output


# --- MariaDB -------------------------------------------------------------------------

@pytest.fixture
def imported_maria_spec(maria_on, tmp_path):
    path = write_spec(tmp_path, "mysql", "doc_shop")
    result = run("import", "--dsn", maria_on.dsn("doc_admin", "doc_shop"), "-c", str(path))
    assert result.exit_code == 0, result.output
    assert "skipped    doc_shop.log_lines: not imported: no primary key" in result.output
    return path


def test_mariadb_with_row_binlog_passes(maria_on, imported_maria_spec):
    result = run("doctor", "--dsn", maria_on.dsn("doc_admin", "doc_shop"), "-c", str(imported_maria_spec),
                 "--format", "json")
    assert result.exit_code == 0, result.output
    found = checks(result)
    assert {name: c["status"] for name, c in found.items()} == {
        "server": "pass", "log_bin": "pass", "binlog_format": "pass", "binlog_row_image": "pass",
        "binlog retention": "pass", "replication privilege": "pass", "table doc_shop.orders": "pass",
        "columns doc_shop.orders": "pass"}
    assert found["server"]["detail"].startswith("MariaDB ")
    assert found["binlog retention"]["detail"] == "168 hours"
    assert found["table doc_shop.orders"]["detail"] == "primary key (order_id, line_no)"


def test_mariadb_without_binlog_fails_every_binlog_check(maria_off, tmp_path):
    spec = write_spec(tmp_path, "mysql", "doc_shop", MARIA_ORDERS_TABLE)
    result = run("doctor", "--dsn", maria_off.dsn("doc_admin", "doc_shop"), "-c", str(spec))
    assert result.exit_code == 1
    out = result.output
    for name in ("log_bin", "binlog_format", "binlog_row_image", "binlog retention"):
        assert f"FAIL    {name}" in out, out
    assert "OFF; CDC needs ON" in out and "STATEMENT; CDC needs ROW" in out and "MINIMAL; CDC needs FULL" in out
    assert "1 hours; less than 24" in out
    assert "fail log_bin: start the server with log-bin" in out
    assert "fail binlog_format: SET GLOBAL binlog_format = 'ROW'" in out
    assert "fail binlog retention: SET GLOBAL binlog_expire_logs_seconds = 86400" in out
    assert maria_off.passwords["doc_admin"] not in out


def test_mariadb_reader_without_binlog_access_and_a_table_without_key(maria_on, tmp_path):
    tables = """
  - schema: doc_shop
    name: log_lines
    columns:
      - {name: msg, type: text, nullable: false}
    primary_key: [msg]
"""
    spec = write_spec(tmp_path, "mysql", "doc_shop", tables)
    result = run("doctor", "--dsn", maria_on.dsn("doc_reader", "doc_shop"), "-c", str(spec), "--format", "json")
    assert result.exit_code == 1
    found = checks(result)
    assert found["replication privilege"]["status"] == "fail"
    assert found["replication privilege"]["fix"] == "GRANT REPLICATION CLIENT, REPLICATION SLAVE ON *.* TO 'doc_reader'@'%';"
    assert found["table doc_shop.log_lines"]["status"] == "fail"
    assert "no primary key" in found["table doc_shop.log_lines"]["detail"]
    assert found["columns doc_shop.log_lines"]["detail"] == "msg is nullable in the source but NOT NULL in the spec"
