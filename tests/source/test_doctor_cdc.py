"""`dwctl doctor` on what logical decoding and the binlog do not carry: UNLOGGED tables, replica identities
without the key, schemas without USAGE, views, foreign tables, partitions, system-versioned tables.

The Postgres verdicts are checked against the server itself: a test_decoding slot shows which deletes
really carry their key, and doctor must fail exactly the tables whose deletes do not.
"""

from __future__ import annotations

import json

import pytest

from tests.support.cli import run
from tests.support.minispec import write_spec

PG_CDC = """
CREATE TABLE plain (id integer PRIMARY KEY, v text);
CREATE UNLOGGED TABLE scratch (id integer PRIMARY KEY, v text);
CREATE TABLE no_identity (id integer PRIMARY KEY, v text);
ALTER TABLE no_identity REPLICA IDENTITY NOTHING;
CREATE TABLE other_index (id integer PRIMARY KEY, code text NOT NULL);
CREATE UNIQUE INDEX other_index_code ON other_index (code);
ALTER TABLE other_index REPLICA IDENTITY USING INDEX other_index_code;
CREATE TABLE key_index (id integer PRIMARY KEY, code text NOT NULL);
CREATE UNIQUE INDEX key_index_code_id ON key_index (code, id);
ALTER TABLE key_index REPLICA IDENTITY USING INDEX key_index_code_id;
CREATE TABLE full_no_key (id integer NOT NULL, v text);
ALTER TABLE full_no_key REPLICA IDENTITY FULL;
CREATE TABLE no_key (id integer NOT NULL, v text);
CREATE VIEW recent AS SELECT id, v FROM plain;
CREATE MATERIALIZED VIEW plain_count AS SELECT count(*) AS n FROM plain;
CREATE TABLE events (id integer NOT NULL, day date NOT NULL, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE SCHEMA hidden;
CREATE TABLE hidden.secrets (id integer PRIMARY KEY);
"""
KEYED = ["plain", "scratch", "no_identity", "other_index", "key_index", "full_no_key", "no_key"]


def table_yaml(name: str, schema: str = "public", extra: str = "") -> str:
    return f"""
  - schema: {schema}
    name: {name}
    columns:
      - {{name: id, type: integer, nullable: false}}{extra}
    primary_key: [id]
"""


def doctor_json(dsn: str, spec) -> tuple[int, dict[str, dict]]:
    result = run("doctor", "--dsn", dsn, "-c", str(spec), "--format", "json")
    return result.exit_code, {c["name"]: c for c in json.loads(result.output)["checks"]}


def create_cdc_database(pg, name: str, user: str) -> None:
    pg.create_database(name, PG_CDC)
    pg.execute("CREATE EXTENSION postgres_fdw; "
               f"CREATE SERVER here FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '{pg.port}', "
               f"dbname '{name}'); CREATE FOREIGN TABLE remote_plain (id integer NOT NULL) SERVER here "
               "OPTIONS (table_name 'plain')", db=name)
    pg.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {user}; GRANT SELECT ON hidden.secrets TO {user}",
               db=name)


@pytest.fixture(scope="module")
def pg(pg_logical):
    pg_logical.create_user("cdc_reader", "REPLICATION")
    create_cdc_database(pg_logical, "cdc", "cdc_reader")
    return pg_logical


@pytest.fixture
def full_spec(tmp_path):
    tables = "".join(table_yaml(n, extra="\n      - {name: v, type: text}" if n not in ("other_index", "key_index")
                                else "\n      - {name: code, type: text, nullable: false}") for n in KEYED)
    tables += "".join(table_yaml(n) for n in ("recent", "remote_plain", "events_2024"))
    tables += table_yaml("secrets", "hidden")
    return write_spec(tmp_path, "postgres", "cdc", tables)


def test_doctor_fails_what_logical_decoding_does_not_carry(pg, full_spec):
    code, found = doctor_json(pg.dsn("cdc_reader", "cdc"), full_spec)
    assert code == 1
    assert found["cdc public.plain"] == {"name": "cdc public.plain", "status": "pass",
                                         "detail": "logged, REPLICA IDENTITY DEFAULT", "fix": None}
    assert found["cdc public.scratch"]["status"] == "fail"
    assert found["cdc public.scratch"]["detail"].startswith("UNLOGGED: its changes are not written to the WAL")
    assert found["cdc public.scratch"]["fix"] == "ALTER TABLE public.scratch SET LOGGED;"
    assert found["cdc public.no_identity"]["detail"].startswith("REPLICA IDENTITY NOTHING: a delete carries no key")
    assert found["cdc public.no_identity"]["fix"] == "ALTER TABLE public.no_identity REPLICA IDENTITY DEFAULT;"
    assert found["cdc public.other_index"]["detail"] == (
        "REPLICA IDENTITY USING INDEX other_index_code (code) does not hold the key (id): "
        "a delete carries only the index's columns")
    assert found["cdc public.other_index"]["fix"] == "ALTER TABLE public.other_index REPLICA IDENTITY DEFAULT;"
    assert found["cdc public.key_index"]["status"] == "pass"
    assert found["table public.full_no_key"]["status"] == "warn", "FULL carries the key: DMS's documented workaround"
    assert found["table public.no_key"]["status"] == "fail"
    assert "REPLICA IDENTITY DEFAULT without a primary key: a delete carries no key" in found["table public.no_key"]["detail"]
    assert found["key updates"]["status"] == "warn"
    assert "DMS ignores an UPDATE that changes a primary-key value" in found["key updates"]["detail"]


def test_objects_that_are_not_tables_fail_with_their_kind(pg, full_spec):
    _, found = doctor_json(pg.dsn("cdc_reader", "cdc"), full_spec)
    assert found["table public.recent"]["status"] == "fail"
    assert found["table public.recent"]["detail"].startswith("not replicated: a view: logical decoding emits no changes")
    assert found["table public.remote_plain"]["detail"].startswith("not replicated: a foreign table")
    assert found["table public.events_2024"]["detail"].startswith("not replicated: a partition of public.events")
    assert found["table public.events_2024"]["fix"] == "list the partitioned table public.events instead"
    # What the spec does not list is named too, once per schema (partitions only when listed).
    assert found["not replicated public"] == {
        "name": "not replicated public", "status": "warn", "detail": "materialized views: plain_count",
        "fix": "dwctl replicates base tables; these have no changes DMS CDC can read (dwctl import names the "
               "reason for each)"}


def test_a_schema_without_usage_is_one_fail_row_with_the_grant(pg, full_spec):
    code, found = doctor_json(pg.dsn("cdc_reader", "cdc"), full_spec)
    assert found["schema hidden"] == {"name": "schema hidden", "status": "fail",
                                      "detail": "cdc_reader has no USAGE on it: the full load and the catalog reads "
                                                "cannot reach its tables",
                                      "fix": "GRANT USAGE ON SCHEMA hidden TO cdc_reader;"}
    assert found["table public.plain"]["status"] == "pass", "the rest of the report is still there"
    assert "columns hidden.secrets" in found


def test_running_the_fixes_makes_the_rows_pass(pg, tmp_path):
    """The fixes are exact SQL: run them and doctor passes those rows (a database of its own, so order is free)."""
    pg.create_user("fix_reader", "REPLICATION")
    create_cdc_database(pg, "cdc_fix", "fix_reader")
    tables = "".join(table_yaml(n, extra="\n      - {name: v, type: text}") for n in ("scratch", "no_identity"))
    tables += table_yaml("other_index", extra="\n      - {name: code, type: text, nullable: false}")
    tables += table_yaml("secrets", "hidden")
    spec = write_spec(tmp_path, "postgres", "cdc_fix", tables)
    names = ["cdc public.scratch", "cdc public.no_identity", "cdc public.other_index", "schema hidden"]
    code, before = doctor_json(pg.dsn("fix_reader", "cdc_fix"), spec)
    assert [before[n]["status"] for n in names] == ["fail"] * 4
    for name in names:
        pg.execute(before[name]["fix"], db="cdc_fix")
    code, after = doctor_json(pg.dsn("fix_reader", "cdc_fix"), spec)
    assert "schema hidden" not in after
    assert [after[n]["status"] for n in names[:3]] == ["pass"] * 3
    assert code == 0, after


def test_doctor_agrees_with_what_logical_decoding_emits(pg):
    """For every keyed table: a DELETE, decoded by test_decoding; doctor's cdc row fails exactly where the
    decoded delete does not carry the key (or nothing is decoded at all)."""
    import psycopg

    pg.execute("".join(f"INSERT INTO {t} (id, {'code' if 'index' in t else 'v'}) VALUES (424242, 'x');"
                       for t in KEYED), db="cdc")
    conn = psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", password=pg.password, dbname="cdc",
                           autocommit=True)
    try:
        conn.execute("SELECT pg_create_logical_replication_slot('dwctl_cdc_probe', 'test_decoding')")
        for table in KEYED:
            conn.execute(f"DELETE FROM {table} WHERE id = 424242")
        decoded = [row[0] for row in conn.execute(
            "SELECT data FROM pg_logical_slot_get_changes('dwctl_cdc_probe', NULL, NULL)")]
    finally:
        conn.execute("SELECT pg_drop_replication_slot('dwctl_cdc_probe')")
        conn.close()
    carries = {t: any(line.startswith(f"table public.{t}: DELETE:") and "424242" in line for line in decoded)
               for t in KEYED}
    assert carries == {"plain": True, "scratch": False, "no_identity": False, "other_index": False,
                       "key_index": True, "full_no_key": True, "no_key": False}, decoded
    spec_tables = "".join(table_yaml(t) for t in KEYED)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        spec = write_spec(Path(tmp), "postgres", "cdc", spec_tables)
        _, found = doctor_json(pg.dsn(db="cdc"), spec)
    for table in KEYED:
        verdict = [found[f"{kind} public.{table}"]["status"] for kind in ("table", "cdc")]
        assert ("fail" not in verdict) is carries[table], (table, verdict, found[f"cdc public.{table}"])


# --- MariaDB -------------------------------------------------------------------------

MARIA_KINDS = [
    "CREATE TABLE plain (id int PRIMARY KEY, v text)",
    "CREATE TABLE prices (id int PRIMARY KEY, amount decimal(10,2)) WITH SYSTEM VERSIONING",
    "CREATE VIEW recent AS SELECT id, v FROM plain",
    "CREATE SEQUENCE ticket_no",
]


@pytest.fixture(scope="module")
def maria(maria_binlog):
    maria_binlog.execute("CREATE DATABASE kinds", "CREATE DATABASE locked")
    maria_binlog.execute(*MARIA_KINDS, db="kinds")
    maria_binlog.execute("CREATE TABLE vault (id int PRIMARY KEY)", db="locked")
    maria_binlog.create_user("kinds_dms", "SELECT, REPLICATION CLIENT, REPLICATION SLAVE ON *.*")
    maria_binlog.execute("REVOKE SELECT ON *.* FROM 'kinds_dms'@'%'", "GRANT SELECT ON kinds.* TO 'kinds_dms'@'%'")
    return maria_binlog


def test_mariadb_system_versioned_view_and_invisible_database(maria, tmp_path):
    tables = "".join(table_yaml(n, "kinds") for n in ("plain", "prices", "recent")) + table_yaml("vault", "locked")
    spec = write_spec(tmp_path, "mysql", "kinds", tables.replace("type: integer", "type: int"))
    code, found = doctor_json(maria.dsn("kinds_dms", "kinds"), spec)
    assert code == 1
    assert found["table kinds.prices"]["status"] == "fail"
    assert found["table kinds.prices"]["detail"] == ("not replicated: a system-versioned table: DMS does not support "
                                                     "them on MariaDB sources")
    assert found["table kinds.prices"]["fix"].startswith("ALTER TABLE ... REMOVE SYSTEM VERSIONING")
    assert found["table kinds.recent"]["detail"].startswith("not replicated: a view")
    assert found["not replicated kinds"]["detail"] == "sequences: ticket_no"
    assert found["table kinds.plain"]["status"] == "pass"
    assert found["schema locked"]["status"] == "fail"
    assert found["schema locked"]["fix"] == "GRANT SELECT ON `locked`.* TO 'kinds_dms'@'%';"
    maria.execute(found["schema locked"]["fix"])
    _, after = doctor_json(maria.dsn("kinds_dms", "kinds"), spec)
    assert "schema locked" not in after and after["table locked.vault"]["status"] == "pass"
