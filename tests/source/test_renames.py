"""A column renamed at the source (issue 22, item 3): `dwctl import` proposes the rename, the load job
renames the warehouse column, and the warehouse ends equal to a plain replay of the source.

Real PostgreSQL and MariaDB servers (tests/support/dbservers.py) run the ALTER TABLE; `dwctl import`
reads their catalogs; the landed files are real Parquet files in the layout DMS writes for the table as
it is at the source (the held file in the new names, a late file in the old ones); every run is
`dwctl sql verify` on one DuckDB file kept between runs, as the warehouse is.
"""

from __future__ import annotations

import duckdb
import pytest

from dwctl.render.engine import table_view
from dwctl.source.introspect import SourceColumn, SourceTable
from dwctl.spec.read import parse_spec
from tests.support.cli import run
from tests.support.dms_files import change, write
from tests.support.minispec import write_spec

CREATE = "CREATE TABLE people (id int PRIMARY KEY, name varchar(20), city varchar(20), score int)"


class Replica:
    """One source database, its spec file, a landing folder and a warehouse file."""

    def __init__(self, tmp_path, server, engine: str, db: str):
        self.tmp, self.server, self.engine, self.db = tmp_path, server, engine, db
        if engine == "postgres":
            server.create_database(db, CREATE)
            self.dsn = server.dsn(db=db)
        else:
            server.execute(f"CREATE DATABASE {db}")
            server.execute(CREATE, db=db)
            server.create_user(f"{db}_reader", f"SELECT ON {db}.*")
            self.dsn = server.dsn(f"{db}_reader", db=db)
        self.spec = write_spec(tmp_path, engine, db)
        self.rows: dict[int, dict] = {}
        self.seq = 0

    def alter(self, sql: str) -> None:
        self.server.execute(sql, db=self.db)

    def import_(self):
        result = run("import", "--dsn", self.dsn, "-c", str(self.spec), "--tables", "people")
        assert result.exit_code == 0, result.output
        return result.output

    def land(self, name: str, spec_text: str, changes: list[tuple[str, dict]]) -> None:
        """A DMS file in the layout of `spec_text`'s table; the replay follows (in the file's column names)."""
        spec = parse_spec(spec_text, "x.yaml")
        view = table_view(spec, spec.table("people"))
        rows = []
        for op, values in changes:
            self.seq += 1
            rows.append(change(op, f"2024-01-01 12:00:{self.seq:02d}.000000", None if name.startswith("LOAD") else self.seq,
                               **values))
            self.rows[values["id"]] = dict(values)
        write(self.tmp / "bucket" / view.s3_prefix / name, view, rows)

    def verify(self):
        return run("sql", "verify", "-c", str(self.spec), "--data", str(self.tmp / "bucket"),
                   "--database", str(self.tmp / "warehouse.duckdb"), "--limit", "0")

    def warehouse(self) -> tuple[list[str], dict[int, dict]]:
        con = duckdb.connect(str(self.tmp / "warehouse.duckdb"), read_only=True)
        try:
            cur = con.execute('SELECT * FROM analytics."people" ORDER BY "id"')
            names = [d[0] for d in cur.description]
            return names, {row[0]: dict(zip(names, row)) for row in cur.fetchall()}
        finally:
            con.close()


@pytest.fixture(params=["postgres", "mysql"])
def replica(request, tmp_path):
    server = request.getfixturevalue("pg_logical" if request.param == "postgres" else "maria_binlog")
    return Replica(tmp_path, server, request.param, "ren_late")


def test_a_renamed_column_keeps_its_values_and_late_files_under_the_old_name_load(replica):
    replica.import_()
    before = replica.spec.read_text(encoding="utf-8")
    replica.land("LOAD00000001.parquet", before, [("I", {"id": 1, "name": "ann", "city": "oslo", "score": 5}),
                                                 ("I", {"id": 2, "name": "bob", "city": "rome", "score": 7})])
    assert replica.verify().exit_code == 0

    # The source renames the column; DMS writes the changes that follow under the new name.
    replica.alter("ALTER TABLE people RENAME COLUMN city TO town")
    imported = replica.import_()
    assert "column city renamed to town (proposed as a rename" in imported, imported
    after = replica.spec.read_text(encoding="utf-8")
    assert "renamed_from: city" in after and "name: city" not in after
    replica.land("20240101-130000000.parquet", after, [("U", {"id": 1, "name": "ann", "town": "oslo2", "score": 6}),
                                                      ("I", {"id": 3, "name": "cy", "town": "bonn", "score": 1})])
    replica.rows = {k: {("town" if n == "city" else n): v for n, v in row.items()} for k, row in replica.rows.items()}

    # The job runs before anyone re-imported: the new file is held, loudly.
    replica.spec.write_text(before, encoding="utf-8")
    held = replica.verify()
    assert held.exit_code != 0 and "held: it carries column(s) town" in held.output

    # After the import (and deploy), the warehouse column is renamed and the held file loads.
    replica.spec.write_text(after, encoding="utf-8")
    loaded = replica.verify()
    assert loaded.exit_code == 0, loaded.output
    # A file DMS wrote before the rename, landing late, in the old names.
    replica.land("20240101-120059000.parquet", before, [("U", {"id": 2, "name": "bob", "city": "rome2", "score": 8})])
    replica.rows[2] = {"id": 2, "name": "bob", "town": "rome2", "score": 8}  # the source's column is town now
    late = replica.verify()
    assert late.exit_code == 0, late.output

    names, found = replica.warehouse()
    assert "city" not in names and "town" in names
    assert {k: {n: row[n] for n in ("id", "name", "town", "score")} for k, row in found.items()} == replica.rows


def test_a_dropped_last_column_and_an_added_one_are_not_a_rename_on_postgres(pg_logical, tmp_path):
    """Postgres keeps the dropped column's slot: import sees the drop, proposes no rename, and says how to
    say it was one."""
    replica = Replica(tmp_path, pg_logical, "postgres", "ren_dropped")
    replica.import_()
    replica.alter("ALTER TABLE people DROP COLUMN score")
    replica.alter("ALTER TABLE people ADD COLUMN points int")
    out = replica.import_()
    assert "(proposed as a rename" not in out and "renamed_from" not in replica.spec.read_text(encoding="utf-8")
    assert "column score removed and points added: Postgres shows a column dropped" in out


def test_postgres_renames_a_middle_column_even_with_a_new_type(pg_logical, tmp_path):
    """A new name before the last column both sides have cannot have been added since (Postgres numbers
    an added column last): a rename, even when its type changed too."""
    replica = Replica(tmp_path, pg_logical, "postgres", "ren_middle")
    replica.import_()
    replica.alter("ALTER TABLE people RENAME COLUMN name TO full_name")
    replica.alter("ALTER TABLE people ALTER COLUMN full_name TYPE varchar(40)")
    out = replica.import_()
    assert "column name renamed to full_name (proposed as a rename: Postgres kept its place" in out
    spec = parse_spec(replica.spec.read_text(encoding="utf-8"), "x.yaml")
    column = next(c for c in spec.table("people").columns if c.name == "full_name")
    assert column.renamed_from == "name" and column.type == "varchar(40)"
    assert [c.name for c in spec.table("people").columns] == ["id", "full_name", "city", "score"]


def pg_table(columns, positions, dropped=()):
    table = SourceTable("public", "t", [SourceColumn(n, t, t, True) for n, t in columns], ["id"])
    table.positions, table.dropped = dict(positions), list(dropped)
    return table


def test_find_renames_by_place_and_type():
    from dwctl.source.renames import find_renames

    spec = [("id", "int"), ("a", "varchar(3)"), ("b", "int")]
    # MySQL: the same place and type
    mysql = SourceTable("db", "t", [SourceColumn(n, t, t, True) for n, t in [("id", "int"), ("x", "varchar(3)"),
                                                                              ("b", "int")]], ["id"])
    assert find_renames(spec, mysql, "mysql")[0] == [("a", "x", "the same place and type")]
    other_type = SourceTable("db", "t", [SourceColumn(n, t, t, True) for n, t in [("id", "int"), ("x", "int"),
                                                                                   ("b", "int")]], ["id"])
    assert find_renames(spec, other_type, "mysql") == ([], [])
    # Postgres: the last column renamed (no drop in its slot), and one added after it
    renamed = pg_table([("id", "integer"), ("a", "varchar(3)"), ("c", "integer"), ("d", "integer")],
                       {"id": 1, "a": 2, "c": 3, "d": 4})
    assert [r[:2] for r in find_renames(spec, renamed, "postgres")[0]] == [("b", "c")]
    dropped = pg_table([("id", "integer"), ("a", "varchar(3)"), ("c", "integer")], {"id": 1, "a": 2, "c": 4}, [3])
    assert find_renames(spec, dropped, "postgres")[0] == []
