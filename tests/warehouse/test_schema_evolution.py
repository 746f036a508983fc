"""A source table's columns change while it replicates: the warehouse follows, through `dwctl sql verify`.

The source table gains columns (ALTER TABLE ADD COLUMN), widens them (VARCHAR length, INTEGER to
BIGINT, NUMERIC precision, the key itself) and loses them (DROP COLUMN), between batches of
changes. DMS (HandleSourceTableAltered) writes each file in the table's layout of that moment;
where a column added later sits in a file is not documented, so it is drawn (before the change
sequence DMS adds, or last). The spec follows the source as `dwctl import` writes it, either at
once or a run later (meanwhile the new files are held, or quarantined when only longer text
betrays them, and load once the spec caught up). Every run is `dwctl sql verify --database FILE`,
one DuckDB file kept between runs as the warehouse is: the job migrates the warehouse's tables
before it loads. After the last run the analytics table equals a plain replay of the changes
landed (a column the source dropped stays in the warehouse, nullable), and
the history's current versions equal it. Nothing is mocked: real Parquet files, the rendered SQL,
DuckDB with Redshift's rules.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dwctl.cli import cli
from dwctl.render.engine import table_view
from dwctl.spec import landed_layout as layout
from dwctl.spec.read import parse_spec
from tests.support.dms_files import change, spec_text_with_tables, write

FOLDER = "raw/app/acct"
OTHER = "raw/app/other"
INITIAL = [("id", "integer"), ("note", "varchar(4)"), ("qty", "integer"), ("amount", "numeric(6,2)")]


class Source:
    """The source table's columns now, its rows as replayed from every change landed, and the files."""

    def __init__(self, root: Path, added_last: bool):
        self.root, self.added_last = root, added_last
        self.columns = list(INITIAL)
        self.added: list[str] = []  # columns added by ALTER TABLE, in order: DMS may write them last
        self.rows: dict[int, dict] = {}
        self.seq = 0
        self.dropped: list[str] = []
        self.defaults: dict[str, str] = {}  # columns added with ALTER TABLE ... ADD COLUMN ... DEFAULT
        self.keys = ""  # the spec's dist_key / sort_keys lines for acct, if any

    def spec_text(self) -> str:
        """The spec `dwctl import` writes for the source as it is now (plus a second, quiet table)."""
        lines = "".join(f"\n      - {{name: {n}, type: \"{t}\"{', nullable: false' if n == 'id' else ''}"
                        + (f", default: \"{self.defaults[n]}\"" if n in self.defaults else "") + "}"
                        for n, t in self.columns)
        return spec_text_with_tables(f"""
  - schema: app
    name: acct
    columns:{lines}
    primary_key: [id]{self.keys}
    history: true
  - schema: app
    name: other
    columns:
      - {{name: id, type: bigint, nullable: false}}
    primary_key: [id]
""")

    def view(self):
        spec = parse_spec(self.spec_text(), "source.yaml")
        return table_view(spec, spec.table("acct"))

    def order(self, view) -> list[str]:
        names = [c.name for c in view.landed]
        if not self.added_last:
            return names
        late = [n for n in self.added if n in names]
        return [n for n in names if n not in late and n != layout.CHANGE_SEQ_COLUMN] + late + [layout.CHANGE_SEQ_COLUMN]

    def value(self, name: str, kind: str, n: int):
        """A value that fits the column as the source has it now, and would not fit its older type."""
        if name == "id":
            return n
        if kind.startswith("varchar"):
            width = int(kind[8:-1])
            return ("x" * width + str(n))[-width:]
        if kind in ("integer", "bigint"):
            return n * 1000 + (3_000_000_000 if kind == "bigint" else 7)
        precision = int(kind.split("(")[1].split(",")[0])
        return Decimal(10 ** precision - 1) / 100 - Decimal(n) / 100

    def apply(self, name: str, ops: list[tuple[int, str]]) -> None:
        """One CDC file of changes (key, I/U/D), in the layout the source has now; the replay follows."""
        view = self.view()
        rows = []
        for key, op in ops:
            self.seq += 1
            values = {n: self.value(n, t, key * 10 + self.seq % 10) for n, t in self.columns}
            values["id"] = key + (3_000_000_000 if dict(self.columns)["id"] == "bigint" else 0)
            rows.append(change(op, f"2024-01-01 12:00:{self.seq % 60:02d}.{self.seq:06d}", self.seq, **values))
            if op == "D":
                self.rows.pop(values["id"], None)
            else:
                self.rows[values["id"]] = {n: values[n] for n, _ in self.columns}
        write(self.root / FOLDER / name, view, rows, self.order(view))

    def alter(self, kind: str, n: int) -> bool:
        """One ALTER TABLE at the source; False if this one does not apply to the table as it is."""
        names = [c for c, _ in self.columns]
        if kind in ("add", "add_default"):
            column = f"c{n}"
            if column in names or column in self.dropped:
                return False
            self.columns.append((column, "varchar(3)"))
            self.added.append(column)
            if kind == "add_default":  # the source gives every row it has the default; DMS sends no change
                self.defaults[column] = f"d{n}"
                for row in self.rows.values():
                    row[column] = self.defaults[column]
            return True
        if kind == "drop":
            victims = [c for c in names if c != "id"]
            if not victims:
                return False
            column = victims[n % len(victims)]
            self.columns = [(c, t) for c, t in self.columns if c != column]
            self.dropped.append(column)
            return True
        widened = {"varchar": lambda t: f"varchar({int(t[8:-1]) + 5})" if t.startswith("varchar") else None,
                   "int": lambda t: "bigint" if t == "integer" else None,
                   "numeric": lambda t: f"numeric({int(t[8:].split(',')[0]) + 4},2)" if t.startswith("numeric") else None}
        candidates = [(c, widened[kind](t)) for c, t in self.columns if widened[kind](t)]
        if not candidates:
            return False
        column, new = candidates[n % len(candidates)]
        self.columns = [(c, new if c == column else t) for c, t in self.columns]
        return True


def verify(tmp: Path, spec_text: str):
    spec = tmp / "pipeline.yaml"
    spec.write_text(spec_text, encoding="utf-8")
    return CliRunner().invoke(cli, ["sql", "verify", "-c", str(spec), "--data", str(tmp / "bucket"),
                                    "--database", str(tmp / "warehouse.duckdb"), "--limit", "0"])


def ok(tmp: Path, spec_text: str):
    result = verify(tmp, spec_text)
    assert result.exit_code == 0, result.output
    return result


def started(tmp: Path, added_last: bool) -> Source:
    """A source table with two rows, fully loaded once."""
    source = Source(tmp / "bucket", added_last)
    source.apply("LOAD00000001.parquet", [(1, "I"), (2, "I")])
    ok(tmp, source.spec_text())
    return source


def warehouse_rows(tmp: Path, table: str, where: str = "") -> tuple[list[str], dict]:
    con = duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True)
    try:
        cur = con.execute(f'SELECT * FROM analytics."{table}" {where}')
        names = [d[0] for d in cur.description]
        return names, {row[names.index("id")]: dict(zip(names, row)) for row in cur.fetchall()}
    finally:
        con.close()


def assert_replayed(tmp: Path, source: Source) -> None:
    """The source's columns equal a replay; a column the source dropped is still there (its values are
    the source's as of the spec's drop: the source has none to compare with)."""
    names, found = warehouse_rows(tmp, "acct")
    assert set(names) >= {n for n, _ in source.columns} | set(source.dropped)
    now = [n for n, _ in source.columns]
    expected = {key: {n: row.get(n) for n in now} for key, row in source.rows.items()}
    assert {k: {n: r[n] for n in now} for k, r in found.items()} == expected
    history_names, current = warehouse_rows(tmp, "acct_history", 'WHERE "is_current"')
    assert set(history_names) >= set(names)
    assert {k: {n: r[n] for n in now} for k, r in current.items()} == expected


alters = st.sampled_from(["add", "add_default", "drop", "varchar", "int", "numeric"])
HAND_GRANTS = [("analytics", "acct", "SELECT", "analyst", "role", False),
               ("analytics", "acct", "INSERT", "loader", "user", True),
               ("analytics", "acct_history", "SELECT", "analyst", "role", False)]
HAND_COLUMN_GRANTS = [("analytics", "acct", "note", "SELECT", "auditor", "role"),
                      ("analytics", "acct", "id", "SELECT", "auditor", "role")]


def grant_by_hand(tmp: Path) -> None:
    """What a user's GRANTs leave in SVV_RELATION_PRIVILEGES / SVV_COLUMN_PRIVILEGES (the verifier's stand-ins)."""
    con = duckdb.connect(str(tmp / "warehouse.duckdb"))
    try:
        con.executemany("INSERT INTO svv_relation_privileges VALUES (?, ?, ?, ?, ?, ?)", HAND_GRANTS)
        con.executemany("INSERT INTO svv_column_privileges VALUES (?, ?, ?, ?, ?, ?)", HAND_COLUMN_GRANTS)
    finally:
        con.close()


def assert_grants_kept(tmp: Path) -> None:
    """Every grant made by hand is still there: kept with the table, or given again after a rebuild."""
    con = duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True)
    try:
        relation = con.execute("SELECT * FROM svv_relation_privileges").fetchall()
        column = con.execute("SELECT * FROM svv_column_privileges").fetchall()
    finally:
        con.close()
    assert sorted(set(relation)) == sorted(HAND_GRANTS) and len(relation) == len(set(relation))
    assert sorted(set(column)) == sorted(HAND_COLUMN_GRANTS) and len(column) == len(set(column))
steps = st.lists(st.one_of(
    st.tuples(st.just("changes"), st.lists(st.tuples(st.integers(0, 3), st.sampled_from("IUD")), min_size=1, max_size=4)),
    st.tuples(st.just("alter"), alters, st.integers(0, 5), st.booleans())), min_size=1, max_size=7)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps, added_last=st.booleans())
def test_the_warehouse_follows_the_source_through_add_widen_and_drop(tmp_path_factory, steps, added_last):
    tmp = tmp_path_factory.mktemp("evolve")
    source = started(tmp, added_last)
    grant_by_hand(tmp)
    files = 0
    for step in steps:
        if step[0] == "changes":
            files += 1
            source.apply(f"20240101-13{files // 60:02d}{files % 60:02d}000.parquet", step[1])
            continue
        _, kind, n, spec_lags = step
        before = source.spec_text()
        if source.alter(kind, n) and spec_lags:
            files += 1
            source.apply(f"20240101-13{files // 60:02d}{files % 60:02d}000.parquet", [(n % 4, "U"), (3, "I")])
            verify(tmp, before)  # the spec has not caught up: new files may be held; must not stall
        ok(tmp, source.spec_text())
    ok(tmp, source.spec_text())
    assert_replayed(tmp, source)
    assert_grants_kept(tmp)


def test_new_column_files_are_held_until_the_spec_has_the_column_and_other_tables_go_on(tmp_path):
    source = started(tmp_path, added_last=True)
    old_spec = source.spec_text()
    source.alter("add", 7)  # ALTER TABLE acct ADD COLUMN c7 varchar(3)
    source.apply("20240101-130000000.parquet", [(1, "U"), (3, "I")])
    other = parse_spec(old_spec, "x.yaml")
    write(tmp_path / "bucket" / OTHER / "LOAD00000001.parquet", table_view(other, other.table("other")),
          [change("I", "2024-01-01 12:00:00.000000", None, id=5)])

    held = verify(tmp_path, old_spec)
    assert held.exit_code != 0
    assert "20240101-130000000.parquet quarantined: held: it carries column(s) c7 that the spec does not have" in held.output
    assert "dwctl import" in held.output
    assert set(warehouse_rows(tmp_path, "other")[1]) == {5}, "the other table loaded"
    assert 3 not in warehouse_rows(tmp_path, "acct")[1]
    again = verify(tmp_path, old_spec)
    assert again.exit_code != 0 and 3 not in warehouse_rows(tmp_path, "acct")[1], "still held"
    assert "acct: 1 file(s) quarantined or held in an earlier run are still not loaded" in again.output, \
        "every later run fails naming the table until the fix (issue 22: a loud stop stays loud)"

    ok(tmp_path, source.spec_text())
    names, rows = warehouse_rows(tmp_path, "acct")
    assert "c7" in names and rows[3]["c7"] == source.rows[3]["c7"] and rows[2]["c7"] is None
    assert_replayed(tmp_path, source)
    spec = tmp_path / "pipeline.yaml"
    listed = CliRunner().invoke(cli, ["sql", "quarantine", "-c", str(spec), "--database", str(tmp_path / "warehouse.duckdb")])
    assert "0 quarantined file(s)" in listed.output


def test_a_dropped_source_column_stays_in_the_warehouse_nullable(tmp_path):
    source = started(tmp_path, added_last=False)
    with_amount = source.spec_text()
    source.alter("drop", 2)  # ALTER TABLE acct DROP COLUMN amount: DMS writes files without it
    source.apply("20240101-130000000.parquet", [(1, "U")])
    assert verify(tmp_path, with_amount).exit_code == 0  # files without the column load, NULL in it
    assert verify(tmp_path, source.spec_text()).exit_code == 0  # import removed it from the spec: kept
    names, rows = warehouse_rows(tmp_path, "acct")
    assert "amount" in names and rows[1]["amount"] is None and rows[2]["amount"] is not None
    assert_replayed(tmp_path, source)


@pytest.mark.parametrize("kind", ["varchar", "int", "numeric"])
def test_a_widened_column_keeps_every_row(tmp_path, kind):
    source = started(tmp_path, added_last=False)
    for n in range(2):  # the first widening of each kind, then the next (the key too, for int)
        source.alter(kind, n)
        source.apply(f"20240101-13000{n}000.parquet", [(1, "U"), (3, "I")])
        ok(tmp_path, source.spec_text())
    assert_replayed(tmp_path, source)


def test_files_written_before_a_drop_load_after_the_spec_dropped_the_column(tmp_path):
    """DMS wrote them with the column; the spec (re-imported) no longer has it; the warehouse keeps it."""
    source = Source(tmp_path / "bucket", added_last=False)
    source.apply("LOAD00000001.parquet", [(1, "I"), (2, "I")])
    source.apply("20240101-130000000.parquet", [(1, "U"), (3, "I")])
    assert verify(tmp_path, source.spec_text()).exit_code == 0
    source.apply("20240101-130001000.parquet", [(2, "U")])  # still with qty, not loaded yet
    source.alter("drop", 1)  # ALTER TABLE acct DROP COLUMN qty, and dwctl import
    source.apply("20240101-130002000.parquet", [(3, "U")])
    ok(tmp_path, source.spec_text())
    assert_replayed(tmp_path, source)


def test_load_alter_import_load_against_a_real_postgres(pg_logical, tmp_path):
    """The issue's case: load, ALTER TABLE ADD COLUMN at the source, doctor shows the drift, the
    new files are held, `dwctl import` takes the column, the next run migrates and loads them."""
    from tests.support.minispec import write_spec

    pg_logical.create_database("evolve", "CREATE TABLE items (id bigint PRIMARY KEY, name varchar(20));")
    spec_path = write_spec(tmp_path, "postgres", "evolve")
    dsn = pg_logical.dsn(db="evolve")
    run = CliRunner().invoke
    assert run(cli, ["import", "--dsn", dsn, "-c", str(spec_path), "--tables", "items"]).exit_code == 0

    def files(name: str, rows: list[dict]) -> None:
        """A DMS file in the layout of the source as the spec now has it."""
        spec = parse_spec(spec_path.read_text(encoding="utf-8"), "x.yaml")
        view = table_view(spec, spec.table("items"))
        write(tmp_path / "bucket" / view.s3_prefix / name, view, rows)

    def verify_now():
        return run(cli, ["sql", "verify", "-c", str(spec_path), "--data", str(tmp_path / "bucket"),
                         "--database", str(tmp_path / "warehouse.duckdb"), "--limit", "0"])

    files("LOAD00000001.parquet", [change("I", "2024-01-01 12:00:00.000000", None, id=1, name="a")])
    assert verify_now().exit_code == 0
    pg_logical.execute("ALTER TABLE items ADD COLUMN email varchar(50)", db="evolve")
    doctor = run(cli, ["doctor", "--dsn", dsn, "-c", str(spec_path), "--format", "json"])
    drift = [c for c in json.loads(doctor.output)["checks"] if c["name"] == "drift public.items"]
    assert drift and "in the source, not the spec: email" in drift[0]["detail"] and "dwctl import" in drift[0]["fix"]

    # DMS writes the new column into the next file (written here from the spec import makes, then
    # the old spec is put back: the load job runs before anyone re-imported)
    before = spec_path.read_text(encoding="utf-8")
    assert run(cli, ["import", "--dsn", dsn, "-c", str(spec_path), "--tables", "items"]).exit_code == 0
    files("20240101-130000000.parquet", [change("U", "2024-01-01 13:00:00.000000", 1, id=1, name="b", email="b@x")])
    imported = spec_path.read_text(encoding="utf-8")
    assert "email" in imported
    spec_path.write_text(before, encoding="utf-8")
    held = verify_now()
    assert held.exit_code != 0 and "held: it carries column(s) email" in held.output
    spec_path.write_text(imported, encoding="utf-8")
    doctor = run(cli, ["doctor", "--dsn", dsn, "-c", str(spec_path), "--format", "json"])
    assert "drift public.items" not in doctor.output
    loaded = verify_now()
    assert loaded.exit_code == 0, loaded.output
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute('SELECT "id", "name", "email" FROM analytics."items"').fetchall() == [(1, "b", "b@x")]
    finally:
        con.close()


def test_a_source_default_fills_the_rows_that_existed_and_old_files(tmp_path):
    """ALTER TABLE acct ADD COLUMN c7 varchar(3) DEFAULT 'd7': the rows already there have it at the source
    (DMS sends no change for them), and so does a row of a file written before the ALTER, loaded after."""
    source = started(tmp_path, added_last=True)
    source.apply("20240101-130000000.parquet", [(1, "U"), (4, "I")])  # old layout, not loaded yet
    source.alter("add_default", 7)
    source.apply("20240101-130001000.parquet", [(3, "I")])  # new layout: c7 has its own value
    ok(tmp_path, source.spec_text())
    names, rows = warehouse_rows(tmp_path, "acct")
    assert rows[1]["c7"] == rows[2]["c7"] == rows[4]["c7"] == "d7" and rows[3]["c7"] == source.rows[3]["c7"] != "d7"
    assert_replayed(tmp_path, source)
    source.alter("varchar", 3)  # c7 (or note) grows: a column with a default is copied, not altered in place
    ok(tmp_path, source.spec_text())
    assert_replayed(tmp_path, source)


def mark(tmp: Path, table: str) -> None:
    """A comment on the table: ALTERs keep it, a table dropped and created again has none."""
    con = duckdb.connect(str(tmp / "warehouse.duckdb"))
    try:
        con.execute(f"COMMENT ON TABLE analytics.\"{table}\" IS 'made by the first run'")
    finally:
        con.close()


def marked(tmp: Path, table: str) -> bool:
    con = duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("SELECT comment FROM duckdb_tables() WHERE schema_name = 'analytics' AND table_name = ?",
                           [table]).fetchone()[0] == "made by the first run"
    finally:
        con.close()


def test_widenings_keep_the_table_and_a_key_change_gives_its_grants_back(tmp_path):
    source = started(tmp_path, added_last=False)
    grant_by_hand(tmp_path)
    mark(tmp_path, "acct")
    source.alter("numeric", 0)  # amount numeric(6,2) -> numeric(10,2): add, copy, drop, rename
    source.alter("int", 1)  # qty integer -> bigint
    source.apply("20240101-130000000.parquet", [(1, "U"), (3, "I")])
    ok(tmp_path, source.spec_text())
    assert marked(tmp_path, "acct"), "the same table: its grants were never dropped"
    names, _ = warehouse_rows(tmp_path, "acct")
    assert names[-2:] == ["amount", "qty"] or names[-2:] == ["qty", "amount"], names  # copied columns move last
    assert_replayed(tmp_path, source)
    assert_grants_kept(tmp_path)
    source.alter("int", 0)  # the key: id integer -> bigint rebuilds the table
    source.apply("20240101-130001000.parquet", [(2, "U")])
    ok(tmp_path, source.spec_text())
    assert not marked(tmp_path, "acct"), "rebuilt"
    assert_replayed(tmp_path, source)
    assert_grants_kept(tmp_path)


def test_a_sort_and_distribution_key_column_is_widened_in_the_table(tmp_path):
    """qty is acct's DISTKEY and first SORTKEY column: it stops being the key, is copied, and is the key again."""
    source = Source(tmp_path / "bucket", added_last=False)
    source.keys = "\n    dist_key: qty\n    sort_keys: [qty, id]"
    source.apply("LOAD00000001.parquet", [(1, "I"), (2, "I")])
    ok(tmp_path, source.spec_text())
    mark(tmp_path, "acct")
    source.alter("int", 1)  # qty integer -> bigint
    source.apply("20240101-130000000.parquet", [(1, "U"), (3, "I")])
    ok(tmp_path, source.spec_text())
    assert marked(tmp_path, "acct"), "the same table"
    assert_replayed(tmp_path, source)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        keys = con.execute("SELECT kind, column_name FROM verify_keys WHERE schema_name = 'analytics' AND "
                           "table_name = 'acct' ORDER BY kind, column_name").fetchall()
    finally:
        con.close()
    assert keys == [("dist", "qty"), ("sort", "id"), ("sort", "qty")]


def user_sql(tmp: Path, sql: str) -> None:
    """A user's own Redshift statement on the warehouse, through the verifier's Redshift rules."""
    from dwctl.warehouse.verifier import LocalLanding, Transpiler

    con = duckdb.connect(str(tmp / "warehouse.duckdb"))
    try:
        for statement in Transpiler(con, LocalLanding(tmp, ""))(sql):
            con.execute(statement)
    finally:
        con.close()


def test_a_view_on_a_column_a_migration_drops_stops_the_table_loudly_until_it_is_late_binding(tmp_path):
    """Issue 21, item 2. A column copy drops the column; DROP COLUMN is RESTRICT, so a view bound to the
    column would make it fail (r_ALTER_TABLE), and CASCADE would lose the user's view. The job changes
    nothing, names the view and the fix; the table stays stopped run after run; once the view is
    re-created WITH NO SCHEMA BINDING (r_CREATE_VIEW), the next run migrates and loads, and the view
    still answers. A view on other columns is no obstacle."""
    source = started(tmp_path, added_last=False)
    user_sql(tmp_path, 'CREATE VIEW "analytics"."acct_notes" AS SELECT "id", "note" FROM "analytics"."acct"')
    user_sql(tmp_path, 'CREATE VIEW "analytics"."acct_qty" AS SELECT "id", "qty" FROM "analytics"."acct"')
    source.alter("int", 1)  # qty integer -> bigint: a column copy, DROP COLUMN qty
    source.apply("20240101-130000000.parquet", [(1, "U"), (3, "I")])
    for _ in range(2):  # stopped, and stays stopped until the fix
        result = verify(tmp_path, source.spec_text())
        assert result.exit_code != 0
        assert "acct: migration failed" in result.output and "analytics.acct_qty" in result.output
        assert "WITH NO SCHEMA BINDING" in result.output and "acct_notes" not in result.output
        _, rows = warehouse_rows(tmp_path, "acct")
        assert sorted(rows) == [1, 2], "nothing of acct was loaded while it waits"
    user_sql(tmp_path, 'CREATE OR REPLACE VIEW "analytics"."acct_qty" AS SELECT "id", "qty" FROM "analytics"."acct" '
                       'WITH NO SCHEMA BINDING')
    ok(tmp_path, source.spec_text())
    assert_replayed(tmp_path, source)
    _, through_view = warehouse_rows(tmp_path, "acct_qty")
    assert sorted(through_view) == [1, 2, 3]


def test_the_verifier_refuses_to_drop_what_a_bound_view_reads_as_redshift_does(tmp_path):
    """r_DROP_TABLE: "cannot drop table feedback because other objects depend on it"; DuckDB itself would drop it."""
    from dwctl.errors import ToolError
    from dwctl.warehouse.verifier import LocalLanding, Transpiler

    con = duckdb.connect()
    transpile = Transpiler(con, LocalLanding(tmp_path, ""))
    for sql in ['CREATE SCHEMA "s"', 'CREATE TABLE "s"."feedback" ("a" INTEGER, "b" INTEGER)',
                'CREATE VIEW "s"."feedback_view" AS SELECT "a" FROM "s"."feedback"']:
        for statement in transpile(sql):
            con.execute(statement)
    with pytest.raises(ToolError, match="cannot drop table s.feedback because other objects depend on it"):
        transpile('DROP TABLE "s"."feedback"')
    with pytest.raises(ToolError, match="cannot drop column a of s.feedback"):
        transpile('ALTER TABLE "s"."feedback" DROP COLUMN "a"')
    assert transpile('ALTER TABLE "s"."feedback" DROP COLUMN "b"')  # no view reads b
