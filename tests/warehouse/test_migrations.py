"""The load job's migrations: the rules for a type change, and Redshift's rules enforced by the verifier."""

from __future__ import annotations

import io

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dwctl.render.engine import render
from dwctl.warehouse import load_job
from dwctl.warehouse.verifier import DuckDBWarehouse, LocalLanding, Transpiler

JOB_CONFIG = "iac/glue_scripts/load_job_config.json"


@pytest.mark.parametrize(("have", "want", "change"), [
    ("VARCHAR(20)", "varchar(20)", "same"),
    ("VARCHAR(20)", "VARCHAR(30)", "in_place"),
    ("VARCHAR(30)", "VARCHAR(20)", "narrow"),
    ("CHAR(2)", "VARCHAR(4)", "rebuild"),
    ("INTEGER", "BIGINT", "rebuild"),
    ("BIGINT", "INTEGER", "narrow"),
    ("INTEGER", "DECIMAL(12,2)", "rebuild"),
    ("INTEGER", "DECIMAL(10,2)", "narrow"),
    ("DECIMAL(10,2)", "NUMERIC(12, 2)", "rebuild"),
    ("DECIMAL(10,2)", "DECIMAL(12,4)", "rebuild"),
    ("DECIMAL(10,2)", "DECIMAL(10,3)", "narrow"),
    ("REAL", "DOUBLE PRECISION", "rebuild"),
    ("TIMESTAMP", "TIMESTAMPTZ", "incompatible"),
    ("BIGINT", "VARCHAR(20)", "incompatible"),
])
def test_column_change(have, want, change):
    assert load_job.column_change(have, want) == change


@given(st.integers(1, 38), st.integers(0, 10), st.integers(1, 38), st.integers(0, 10))
def test_a_decimal_widening_keeps_every_value(p1, s1, p2, s2):
    """A widening is one whose type holds every value of the old: as many integer digits, as many decimals."""
    change = load_job.column_change(f"DECIMAL({p1},{s1})", f"DECIMAL({p2},{s2})")
    holds = s2 >= s1 and p2 - s2 >= p1 - s1
    assert (change in ("rebuild", "same")) == holds


def test_a_fresh_warehouse_needs_no_migration(tmp_path, example_spec):
    """The config's warehouse_tables are what 01_create_tables.sql creates, column for column."""
    config = load_job.Config.from_json(render(example_spec, "pipeline.yaml")[JOB_CONFIG])
    con = duckdb.connect()
    warehouse = DuckDBWarehouse(con, Transpiler(con, LocalLanding(tmp_path, "")))
    warehouse.batch(load_job.split_statements(config.create_sql), "create")
    found = load_job.read_catalog(warehouse, config)
    assert {(p["schema"], p["name"]) for parts in config.parts.values() for p in parts} <= set(found)
    plans = load_job.plan_migrations(config, found)
    assert plans == {}


def redshift(tmp_path):
    con = duckdb.connect()
    warehouse = DuckDBWarehouse(con, Transpiler(con, LocalLanding(tmp_path, "")))
    warehouse.batch(['CREATE SCHEMA "s"', 'CREATE TABLE "s"."t" ("id" VARCHAR(4) NOT NULL, "v" VARCHAR(4), "n" INTEGER, '
                     'PRIMARY KEY ("id"))'], "create")
    return warehouse


def test_the_verifier_changes_a_type_in_place_only_as_redshift_does(tmp_path):
    warehouse = redshift(tmp_path)
    warehouse.execute('ALTER TABLE "s"."t" ALTER COLUMN "v" TYPE VARCHAR(8)')
    assert warehouse.query('SELECT "data_type", "character_maximum_length" FROM "svv_columns" '
                           "WHERE \"column_name\" = 'v'") == [["character varying", 8]]
    with pytest.raises(load_job.JobError, match="only to make a VARCHAR longer"):
        warehouse.execute('ALTER TABLE "s"."t" ALTER COLUMN "n" TYPE BIGINT')
    with pytest.raises(load_job.JobError, match="a key column"):
        warehouse.execute('ALTER TABLE "s"."t" ALTER COLUMN "id" TYPE VARCHAR(10)')
    with pytest.raises(load_job.JobError, match="inside a transaction block"):
        warehouse.batch(['ALTER TABLE "s"."t" ALTER COLUMN "v" TYPE VARCHAR(9)'], "in a batch")
    warehouse.batch(['ALTER TABLE "s"."t" ADD COLUMN "d" VARCHAR(4) DEFAULT \'x\''], "a default")
    with pytest.raises(load_job.JobError, match="the column has a default"):  # r_ALTER_TABLE
        warehouse.execute('ALTER TABLE "s"."t" ALTER COLUMN "d" TYPE VARCHAR(8)')


def test_a_migration_gives_back_the_grants_of_what_it_drops():
    """Rebuilt: every table and column grant; a column copied: only that column's grants."""
    relation = [("SELECT", "analyst", "role", "false"), ("INSERT", "loader", "user", "true"),
                ("SELECT", "public", "public", "false"), ("SELECT", "readers", "group", "false")]
    columns = [("note", "SELECT", "auditor", "role"), ("qty", "UPDATE", "Bob Smith", "user")]
    assert load_job.grant_statements("analytics", "t", relation, columns) == [
        'GRANT SELECT ON TABLE "analytics"."t" TO ROLE "analyst"',
        'GRANT INSERT ON TABLE "analytics"."t" TO "loader" WITH GRANT OPTION',
        'GRANT SELECT ON TABLE "analytics"."t" TO PUBLIC',
        'GRANT SELECT ON TABLE "analytics"."t" TO GROUP "readers"',
        'GRANT SELECT ("note") ON TABLE "analytics"."t" TO ROLE "auditor"',
        'GRANT UPDATE ("qty") ON TABLE "analytics"."t" TO "Bob Smith"']
    assert load_job.grant_statements("analytics", "t", relation, columns, ["QTY"]) == [
        'GRANT UPDATE ("qty") ON TABLE "analytics"."t" TO "Bob Smith"']


def test_the_footer_reader_gives_every_top_level_column(tmp_path):
    fields = [("Op", pa.string()), ("nested", pa.struct([("a", pa.int32()), ("b", pa.list_(pa.string()))])),
              ("amount", pa.decimal128(12, 2)), ("big", pa.int64())] + [(f"c{i}", pa.int16()) for i in range(20)]
    out = io.BytesIO()
    schema = pa.schema(fields)
    pq.write_table(schema.empty_table(), out)
    columns = load_job.parquet_columns(out.getvalue())
    assert [c[0] for c in columns] == [name for name, _ in fields]
    assert columns[2][2] == 12 and columns[3][1] == load_job.PARQUET_INT64
    with pytest.raises(ValueError, match="not a Parquet file"):
        load_job.parquet_columns(b"x" * 40)


def test_the_footer_reader_gives_an_integers_width_which_the_physical_type_hides(tmp_path):
    """INT8 and INT16 are Parquet INT32 with a width annotation (what DMS lands for INT1 / INT2); a plain
    INT32 (DMS's INT4) fits no SMALLINT: a TINYINT or SMALLINT the source widened to INT is held, not quarantined."""
    fields = [("t", pa.int8()), ("s", pa.int16()), ("i", pa.int32()), ("u", pa.uint8()), ("w", pa.uint16()),
              ("b", pa.int64()), ("d", pa.date32()), ("x", pa.string())]
    out = io.BytesIO()
    pq.write_table(pa.schema(fields).empty_table(), out)
    widths = {c[0]: c[3] for c in load_job.parquet_columns(out.getvalue())}
    assert widths == {"t": (8, True), "s": (16, True), "i": (32, True), "u": (8, False), "w": (16, False),
                      "b": (64, True), "d": None, "x": None}
    fits = {name: load_job.int_fits("SMALLINT", width) for name, width in widths.items()}
    assert fits == {"t": True, "s": True, "i": False, "u": True, "w": False, "b": False, "d": True, "x": True}
    assert load_job.int_fits("INTEGER", (32, True)) and not load_job.int_fits("INTEGER", (32, False))
    columns = load_job.parquet_columns(out.getvalue())
    landed = [("t", "SMALLINT"), ("s", "SMALLINT"), ("i", "SMALLINT"), ("u", "SMALLINT"), ("w", "INTEGER"),
              ("b", "BIGINT"), ("d", "DATE"), ("x", "VARCHAR(4)")]
    assert load_job.file_layout(columns, landed) == ("held", "its column i is wider than the spec's SMALLINT")
    landed[2] = ("i", "INTEGER")
    assert load_job.file_layout(columns, landed) == ("same", None)


def test_a_copy_that_fails_on_longer_text_holds_the_file_with_the_fix():
    """Redshift's own words for a string longer than its column (load_job.TOO_LONG), and the verifier's."""
    redshift = ("ERROR: Spectrum Scan Error\n  code: 15007\n  context: The length of the data column note is longer "
                "than the length defined in the table. Table: 40, Data: 160, File name: https://s3...")
    held = load_job.too_long_hold(redshift)
    assert held.startswith("held: its column note holds a value of 160 bytes, longer than the 40 bytes")
    assert "Update the spec (dwctl import, or by hand), render and deploy" in held
    assert load_job.too_long_hold(redshift.replace("Table: 40", "Table: 65535")) is None, "no spec can widen it"
    assert load_job.too_long_hold("ERROR: Spectrum Scan Error: incompatible Parquet schema") is None


class RefusingAlter:
    """The verifier's warehouse, but ALTER COLUMN TYPE fails as Redshift's does on a BYTEDICT-encoded
    column (r_ALTER_TABLE): the one refusal DuckDB cannot reproduce, since it has no encodings."""

    def __init__(self, inner):
        self.inner = inner

    def execute(self, sql, **params):
        if "ALTER COLUMN" in sql:
            raise load_job.JobError("ERROR: ALTER COLUMN TYPE is not supported for BYTEDICT encoded columns")
        return self.inner.execute(sql, **params)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_refused_in_place_widening_copies_the_column_and_keeps_its_rows(tmp_path):
    from dwctl.spec.read import parse_spec
    from tests.support.dms_files import spec_text_with_tables

    def spec(width: int):
        return parse_spec(spec_text_with_tables(f"""
  - schema: app
    name: acct
    columns:
      - {{name: id, type: bigint, nullable: false}}
      - {{name: note, type: varchar({width})}}
    primary_key: [id]
"""), "x.yaml")

    con = duckdb.connect()
    before = load_job.Config.from_json(render(spec(4), "x.yaml")[JOB_CONFIG])
    warehouse = DuckDBWarehouse(con, Transpiler(con, LocalLanding(tmp_path, "")))
    warehouse.batch(load_job.split_statements(before.create_sql), "create")
    con.execute("INSERT INTO analytics.acct VALUES (1, 'abcd')")
    after = load_job.Config.from_json(render(spec(8), "x.yaml")[JOB_CONFIG])
    log = []
    changed, problems = load_job.migrate(RefusingAlter(warehouse), after, log.append)
    assert changed == {"acct"} and problems == []
    assert any("copying the column instead" in line for line in log)
    assert con.execute("SELECT * FROM analytics.acct").fetchall() == [(1, "abcd")]
    types = {(t, c): (d, n) for t, c, d, n in warehouse.query(
        'SELECT "table_name", "column_name", "data_type", "character_maximum_length" FROM "svv_columns"')}
    assert types[("acct", "note")] == ("character varying", 32)
    assert load_job.plan_migrations(after, load_job.read_catalog(warehouse, after)) == {}


def test_a_type_svv_columns_spells_unknown_is_left_alone():
    """Only types the job can read are compared: a column of another spelling is neither rebuilt nor refused."""
    assert load_job.catalog_type("geometry", None, None, None) is None
    part = {"schema": "analytics", "name": "t", "columns": [["id", "BIGINT", False], ["shape", "GEOMETRY", True]],
            "empty": False, "fixed": ["id"], "aside_suffix": "__dwctl_aside"}
    migration = load_job.Migration()
    load_job.plan_part(part, [("id", "BIGINT", False), ("shape", None, True)], "CREATE ...", migration)
    assert not migration and migration.notes == [] and migration.problems == []


def test_the_verifier_refuses_to_drop_a_key_column_as_redshift_does(tmp_path):
    """r_ALTER_TABLE: "You can't drop a column that is the distribution key (DISTKEY) or a sort key (SORTKEY)"."""
    con = duckdb.connect()
    warehouse = DuckDBWarehouse(con, Transpiler(con, LocalLanding(tmp_path, "")))
    warehouse.batch(['CREATE SCHEMA "s"', 'CREATE TABLE "s"."t" ("id" INTEGER, "k" INTEGER, "v" INTEGER) '
                     'DISTKEY("k") SORTKEY("v", "id")'], "create")
    for column in ("k", "v"):
        with pytest.raises(load_job.JobError, match="key; Redshift refuses it"):
            warehouse.batch([f'ALTER TABLE "s"."t" DROP COLUMN "{column}"'], "drop a key")
    warehouse.batch(['ALTER TABLE "s"."t" ALTER SORTKEY NONE', 'ALTER TABLE "s"."t" ALTER DISTSTYLE EVEN',
                     'ALTER TABLE "s"."t" DROP COLUMN "v"', 'ALTER TABLE "s"."t" DROP COLUMN "k"',
                     'ALTER TABLE "s"."t" ALTER SORTKEY ("id")'], "no longer keys")
    assert con.execute("SELECT kind, column_name FROM verify_keys").fetchall() == [("sort", "id")]


def test_auto_keeps_the_key_and_the_catalog_reports_it(tmp_path):
    """r_ALTER_TABLE: ALTER SORTKEY AUTO "preserves the existing sort key of the table", and ALTER DISTSTYLE
    AUTO keeps a large table's DISTKEY: neither frees a column to be dropped. SVV_REDSHIFT_COLUMNS gives the
    key columns (sortkey: the place in the sort key), which the job reads before a migration (read_keys)."""
    from dwctl.spec.read import load_spec
    from tests.conftest import EXAMPLE

    con = duckdb.connect()
    warehouse = DuckDBWarehouse(con, Transpiler(con, LocalLanding(tmp_path, "")))
    warehouse.batch(['CREATE SCHEMA "analytics"', 'CREATE TABLE "analytics"."t" ("id" INTEGER, "k" INTEGER, "v" INTEGER) '
                     'DISTKEY("k") SORTKEY("v", "id")'], "create")
    warehouse.batch(['ALTER TABLE "analytics"."t" ALTER SORTKEY AUTO', 'ALTER TABLE "analytics"."t" ALTER DISTSTYLE AUTO'],
                    "auto")
    for column in ("k", "v"):
        with pytest.raises(load_job.JobError, match="key; Redshift refuses it"):
            warehouse.batch([f'ALTER TABLE "analytics"."t" DROP COLUMN "{column}"'], "drop a key")
    config = load_job.Config.from_json(render(load_spec(EXAMPLE), "pipeline.yaml")[JOB_CONFIG])
    assert load_job.read_keys(warehouse, config) == {("analytics", "t"): (["v", "id"], "k")}


@given(st.lists(st.integers(1, 60), max_size=12))
def test_changes_are_packed_whole_into_data_api_batches(sizes):
    """A change (a column copy: drop, then rename) is split between two transactions only when it alone is longer
    than a batch; nothing is lost or reordered, and no batch holds more than the Data API takes."""
    units = [[f"{n}.{i}" for i in range(size)] for n, size in enumerate(sizes)]
    batches = load_job.transactions(units)
    assert [s for b in batches for s in b] == [s for u in units for s in u]
    assert all(0 < len(b) <= load_job.MAX_BATCH for b in batches)
    for unit in units:
        if len(unit) <= load_job.MAX_BATCH:
            assert sum(1 for b in batches if set(unit) & set(b)) == 1, unit


def test_a_renamed_column_is_renamed_first_and_its_widening_copied_inside_the_same_batch():
    """renamed_from: RENAME COLUMN opens the batch; a widening of the renamed column cannot be an ALTER COLUMN
    TYPE (those run before the batch, when the column still has its old name), so it is copied after it."""
    part = {"schema": "analytics", "name": "t", "empty": False, "fixed": ["id"], "aside_suffix": "__dwctl_aside",
            "columns": [["id", "INTEGER", False], ["town", "VARCHAR(80)", True]], "renamed": {"town": "city"}}
    create = 'CREATE TABLE IF NOT EXISTS "analytics"."t" ("id" INTEGER NOT NULL, "town" VARCHAR(80), PRIMARY KEY ("id"))'
    migration = load_job.Migration()
    load_job.plan_part(part, [("id", "INTEGER", False), ("city", "VARCHAR(40)", True)], create, migration)
    assert migration.in_place == [] and migration.problems == []
    assert migration.batch[0] == 'ALTER TABLE "analytics"."t" RENAME COLUMN "city" TO "town"'
    assert 'UPDATE "analytics"."t" SET "town__dwctl_aside" = CAST("town" AS VARCHAR(80))' in migration.batch
    assert migration.notes[0] == "analytics.t: column city renamed to town (RENAME COLUMN: its values carry over)"

    done = load_job.Migration()  # renamed already: nothing to do
    load_job.plan_part(part, [("id", "INTEGER", False), ("town", "VARCHAR(80)", True)], create, done)
    assert not done and done.notes == [] and done.problems == []

    both = load_job.Migration()  # a drop and an add were deployed before the spec said rename: loud, with the fix
    load_job.plan_part(part, [("id", "INTEGER", False), ("city", "VARCHAR(40)", True), ("town", "VARCHAR(80)", True)],
                       create, both)
    assert "RENAME" not in " ".join(both.batch)
    assert both.problems and "both in the warehouse" in both.problems[0] and "Reload the table in DMS" in both.problems[0]
