"""A source ADD COLUMN ... DEFAULT, against real PostgreSQL and MariaDB, through the CLI.

load, ALTER TABLE ... ADD COLUMN ... DEFAULT <constant> at the source, `dwctl import`, render, load
again: the rows that existed before the ALTER have the default at the source although DMS sent no
change for them, and so does a row of a file written before the ALTER and loaded after it. The
truth is the source itself, queried at the end. The DMS files are real Parquet written from the
source's rows in the layout the source had when DMS would have written them (tests/support/dms_files.py).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from dwctl.cli import cli
from dwctl.render.engine import table_view
from dwctl.spec.read import parse_spec
from tests.support.dms_files import change, write
from tests.support.minispec import write_spec

DB = "evolve_defaults"  # the servers are shared by the session: a database of its own


class Pipeline:
    """One source table, its spec, the landed files and the warehouse (a DuckDB file) of `dwctl sql verify`."""

    def __init__(self, tmp: Path, engine: str, dsn: str, query, table: str):
        self.tmp, self.dsn, self.query, self.table = tmp, dsn, query, table
        self.spec = write_spec(tmp, engine, DB)
        self.files = 0

    def dwctl(self, *args: str):
        return CliRunner().invoke(cli, [*args, "-c", str(self.spec)])

    def imported(self) -> str:
        done = self.dwctl("import", "--dsn", self.dsn, "--tables", self.table)
        assert done.exit_code == 0, done.output
        return done.output

    def land(self, rows: list[dict], full_load: bool = False) -> None:
        """A DMS file in the layout the spec (the source, as imported) has now."""
        spec = parse_spec(self.spec.read_text(encoding="utf-8"), "x.yaml")
        view = table_view(spec, spec.table(self.table))
        self.files += 1
        name = "LOAD00000001.parquet" if full_load else f"20240101-1300{self.files:02d}000.parquet"
        write(self.tmp / "bucket" / view.s3_prefix / name, view, rows)

    def source_rows(self, columns: str) -> list[dict]:
        names = [c.strip() for c in columns.split(",")]
        return [dict(zip(names, row)) for row in self.query(f"SELECT {columns} FROM {self.table} ORDER BY id")]

    def load(self) -> None:
        done = CliRunner().invoke(cli, ["sql", "verify", "-c", str(self.spec), "--data", str(self.tmp / "bucket"),
                                        "--database", str(self.tmp / "warehouse.duckdb"), "--limit", "0"])
        assert done.exit_code == 0, done.output

    def warehouse(self, columns: str) -> list[dict]:
        names = [c.strip() for c in columns.split(",")]
        con = duckdb.connect(str(self.tmp / "warehouse.duckdb"), read_only=True)
        try:
            return [dict(zip(names, row)) for row in
                    con.execute(f'SELECT {columns} FROM analytics."{self.table}" ORDER BY id').fetchall()]
        finally:
            con.close()


def evolve(p: Pipeline, execute, add_column: str) -> str:
    """The issue's sequence; returns the import's output after the ALTER."""
    p.imported()
    p.land([change("I", "2024-01-01 12:00:00.000000", None, **r) for r in p.source_rows("id, name")], full_load=True)
    p.load()
    execute("UPDATE items SET name = 'b2' WHERE id = 2")  # DMS writes it, in the old layout, before the ALTER
    p.land([change("U", "2024-01-01 12:30:00.000000", 1, **p.source_rows("id, name")[1])])
    execute(add_column)
    execute("INSERT INTO items (id, name, status) VALUES (3, 'c', 'vip')")
    said = p.imported()
    p.land([change("I", "2024-01-01 13:00:00.000000", 2, **p.source_rows("id, name, status")[2])])
    p.load()
    return said


def assert_equal_to_the_source(p: Pipeline) -> None:
    truth = p.source_rows("id, name, status")
    assert [r["status"] for r in truth] == ["new", "new", "vip"]  # the source gave rows 1 and 2 the default
    assert p.warehouse("id, name, status") == truth


def test_postgres_add_column_default_reaches_the_rows_that_existed(pg_logical, tmp_path):
    pg_logical.create_database(DB, "CREATE TABLE items (id bigint PRIMARY KEY, name varchar(20));"
                                         "INSERT INTO items VALUES (1, 'a'), (2, 'b');")
    p = Pipeline(tmp_path, "postgres", pg_logical.dsn(db=DB),
                 lambda sql: _pg_rows(pg_logical, sql), "items")
    said = evolve(p, lambda sql: pg_logical.execute(sql, db=DB),
                  "ALTER TABLE items ADD COLUMN status varchar(10) DEFAULT 'new'")
    assert "column status default 'new'" in said
    assert 'default: "new"' in p.spec.read_text(encoding="utf-8")
    assert_equal_to_the_source(p)


def test_mariadb_add_column_default_reaches_the_rows_that_existed(maria_binlog, tmp_path):
    maria_binlog.execute(f"CREATE DATABASE {DB}")
    maria_binlog.execute("CREATE TABLE items (id bigint PRIMARY KEY, name varchar(20))",
                         "INSERT INTO items VALUES (1, 'a'), (2, 'b')", db=DB)
    maria_binlog.create_user("evolver", f"SELECT ON {DB}.*")
    p = Pipeline(tmp_path, "mysql", maria_binlog.dsn("evolver", DB),
                 lambda sql: _maria_rows(maria_binlog, sql), "items")
    said = evolve(p, lambda sql: maria_binlog.execute(sql, db=DB),
                  "ALTER TABLE items ADD COLUMN status varchar(10) DEFAULT 'new'")
    assert "column status default 'new'" in said
    assert_equal_to_the_source(p)


@pytest.mark.parametrize("engine", ["postgres", "mariadb"])
def test_a_volatile_default_is_not_written_and_the_import_says_why(engine, request, tmp_path):
    if engine == "postgres":
        server = request.getfixturevalue("pg_logical")
        server.create_database("volatile_defaults", "CREATE TABLE items (id bigint PRIMARY KEY);")
        server.execute("ALTER TABLE items ADD COLUMN seen timestamptz DEFAULT now()", db="volatile_defaults")
        dsn = server.dsn(db="volatile_defaults")
    else:
        server = request.getfixturevalue("maria_binlog")
        server.execute("CREATE DATABASE volatile_defaults")
        server.execute("CREATE TABLE items (id bigint PRIMARY KEY)", db="volatile_defaults")
        server.create_user("volatile_reader", "SELECT ON volatile_defaults.*")
        dsn = server.dsn("volatile_reader", "volatile_defaults")
    spec = write_spec(tmp_path, "postgres" if engine == "postgres" else "mysql", "volatile_defaults")
    first = CliRunner().invoke(cli, ["import", "--dsn", dsn, "-c", str(spec), "--tables", "items"])
    assert first.exit_code == 0, first.output
    if engine == "postgres":
        server.execute("ALTER TABLE items ADD COLUMN token uuid DEFAULT gen_random_uuid()", db="volatile_defaults")
    else:
        server.execute("ALTER TABLE items ADD COLUMN token varchar(36) DEFAULT (uuid())", db="volatile_defaults")
    again = CliRunner().invoke(cli, ["import", "--dsn", dsn, "-c", str(spec), "--tables", "items"])
    assert again.exit_code == 0, again.output
    assert "column token added" in again.output
    assert "is not a constant" in again.output and "stay NULL in the warehouse until the table is reloaded" in again.output
    assert "default" not in spec.read_text(encoding="utf-8").split("token", 1)[1].split("\n", 1)[0]


def _pg_rows(server, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(server.dsn(db=DB)) as conn:
        return conn.execute(sql).fetchall()


def _maria_rows(server, sql: str) -> list[tuple]:
    import pymysql

    conn = pymysql.connect(unix_socket=server.socket, user="root", password="", database=DB)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()
