"""Issue 25: the source as DMS reads it, against real PostgreSQL and MariaDB servers.

Each test names the DMS User Guide page it holds dwctl to. Where the warehouse decides (a landed value
that must fit its staging column), the imported spec is rendered and `dwctl sql verify` loads a file in
the DMS layout holding the source's own values, read back from the server.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from dwctl.cli import cli
from dwctl.render.engine import table_view
from dwctl.spec.read import load_spec
from dwctl.spec.type_mapping import map_type
from tests.conftest import EXAMPLE
from tests.support.cli import run
from tests.support.dms_files import change, write
from tests.support.minispec import write_spec

PG_TYPES = """
CREATE TYPE address AS (street text, house integer);
CREATE DOMAIN code AS varchar(10) NOT NULL;
CREATE DOMAIN short_code AS code;
CREATE DOMAIN checked_code AS short_code CHECK (VALUE <> '');
CREATE DOMAIN money2 AS numeric(8,2);
CREATE DOMAIN money3 AS money2;
CREATE DOMAIN home AS address;
CREATE TABLE places (
  id integer PRIMARY KEY, addr address, past address[], home home, code checked_code, codes short_code[],
  price money3, prices money3[], span interval, note varchar(20));
CREATE TABLE hand (id integer PRIMARY KEY, note varchar(20), secret text);
CREATE TABLE docs (id integer PRIMARY KEY, title varchar(40), body text, meta jsonb, blob bytea, n integer);
CREATE TABLE wide (id integer PRIMARY KEY, a varchar(400), b varchar(400), n integer);
CREATE TABLE narrow (id integer PRIMARY KEY, a varchar(100), n integer);
"""


@pytest.fixture(scope="module")
def pg(pg_logical):
    pg_logical.create_database("dmsreads", PG_TYPES)
    return pg_logical


def connect(pg, db: str = "dmsreads"):
    return psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", password=pg.password, dbname=db,
                           autocommit=True)


def imported(dsn: str, tmp_path: Path, engine: str, database: str, tables: str):
    spec = write_spec(tmp_path, engine, database)
    result = run("import", "--dsn", dsn, "-c", str(spec), "--tables", tables)
    assert result.exit_code == 0, result.output
    return spec, result.output


def doctor(dsn: str, spec: Path) -> tuple[int, dict[str, dict]]:
    result = run("doctor", "--dsn", dsn, "-c", str(spec), "--format", "json")
    return result.exit_code, {c["name"]: c for c in json.loads(result.output)["checks"]}


def verify(spec: Path, table: str, rows: list[dict], tmp_path: Path):
    """A full-load file of `rows` where DMS lands the table, loaded by `dwctl sql verify`."""
    loaded = load_spec(spec)
    view = table_view(loaded, loaded.table(table))
    write(tmp_path / "bucket" / view.s3_prefix / "LOAD00000001.parquet", view,
          [change("I", "2024-01-01 12:00:00.000000", None, **row) for row in rows])
    return CliRunner().invoke(cli, ["sql", "verify", "-c", str(spec), "--data", str(tmp_path / "bucket"),
                                    "--database", str(tmp_path / "wh.duckdb"), "--limit", "0"])


# --- 1. a source column the spec lacks ----------------------------------------------------

def test_a_source_column_missing_from_a_hand_written_spec_fails_doctor(pg, tmp_path):
    """DMS lands every source column no remove-column rule drops (a table-mapping rule removes one: DMS User
    Guide, Transformation rules and actions); the load job holds each file carrying a column the spec lacks,
    so the table never loads: a CDC blocker, named with both fixes."""
    spec = write_spec(tmp_path, "postgres", "dmsreads", """
  - name: hand
    columns:
      - {name: id, type: integer, nullable: false}
      - {name: note, type: varchar(20)}
    primary_key: [id]
""")
    code, found = doctor(pg.dsn(db="dmsreads"), spec)
    assert code == 1
    columns = found["columns public.hand"]
    assert columns["status"] == "fail"
    assert columns["detail"].startswith("not in the spec: secret (DMS lands every source column")
    assert "add secret to the spec (dwctl import does), or exclude them (exclude: true" in columns["fix"]
    assert found["drift public.hand"]["status"] == "fail"
    assert "exclude secret" in found["drift public.hand"]["fix"]
    spec.write_text(spec.read_text().replace("      - {name: note, type: varchar(20)}\n",
                                             "      - {name: note, type: varchar(20)}\n"
                                             "      - {name: secret, type: text, exclude: true}\n"))
    code, found = doctor(pg.dsn(db="dmsreads"), spec)
    assert found["columns public.hand"]["status"] == "pass" and "drift public.hand" not in found
    assert code == 0, found


def test_render_cannot_see_the_source_and_says_what_a_dropped_column_means(tmp_path):
    """Render reads no catalog: a column gone from the spec may be gone from the source, or left out by
    hand. It says which fix applies to the second (the warning `dwctl render` prints)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(text, encoding="utf-8")
    assert run("render", "-c", str(spec), "-o", str(tmp_path / "out")).exit_code == 0
    spec.write_text(text.replace("      - {name: currency, type: char(3), nullable: false}\n", "", 1), encoding="utf-8")
    result = run("render", "-c", str(spec), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0
    assert ("column currency is no longer in the spec; kept (nullable); if the source still has it, exclude it "
            "instead (exclude: true), or the table's files are held") in result.output


# --- 2. composite types -------------------------------------------------------------------

def test_a_composite_is_imported_as_the_text_dms_lands_and_never_cast(pg, tmp_path):
    """CHAP_Source.PostgreSQL, data types: "COMPOSITE: NCLOB"; the S3 target writes NCLOB as a Parquet STRING
    (CHAP_Target.S3). A LOB allows no change-data-type ("The only supported transformation for columns that
    are mapped to BLOB/CLOB data types is to drop the column on the target", transformation rules,
    Limitations), so import carries it as text, render refuses land_as_text on it as on hstore, and doctor
    fails a spec that casts a composite (what the old hint, land_as_text, produced)."""
    spec, output = imported(pg.dsn(db="dmsreads"), tmp_path, "postgres", "dmsreads", "places")
    assert "excluded" not in output
    columns = {c.name: c for c in load_spec(spec).table("places").columns}
    assert (columns["addr"].type, columns["past"].type, columns["home"].type) == ("composite", "composite[]",
                                                                                  "composite")
    assert not any(c.exclude for c in columns.values())
    assert map_type("composite", "postgres").redshift == "VARCHAR(65535)"
    with connect(pg) as conn:
        conn.execute("INSERT INTO places (id, addr, code) VALUES (1, ROW('Main St', 12), 'a')")
        text = conn.execute("SELECT addr::text FROM places WHERE id = 1").fetchone()[0]
    assert text == '("Main St",12)'
    result = verify(spec, "places", [{"id": 1, "addr": text, "code": "a"}], tmp_path)
    assert result.exit_code == 0, result.output

    cast = spec.read_text().replace("{name: addr, type: composite}", "{name: addr, type: composite, land_as_text: 80}")
    assert cast != spec.read_text()
    refused = tmp_path / "cast.yaml"
    refused.write_text(cast)
    result = run("render", "-c", str(refused), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "land_as_text: composite is a LOB to DMS" in result.output
    assert "remove land_as_text (dwctl lands composite as VARCHAR(65535)) or use exclude: true" in result.output

    old_hint = spec.read_text().replace("{name: addr, type: composite}", "{name: addr, type: address, land_as_text: 80}")
    spec.write_text(old_hint)
    code, found = doctor(pg.dsn(db="dmsreads"), spec)
    assert code == 1
    assert found["columns public.places"]["status"] == "fail"
    assert ("addr is composite in the source, a LOB to DMS, which land_as_text (a change-data-type) cannot carry: "
            "spell it type: composite without land_as_text (dwctl lands it as VARCHAR(65535)), or exclude it"
            ) in found["columns public.places"]["detail"]
    again = run("import", "--dsn", pg.dsn(db="dmsreads"), "-c", str(spec), "--tables", "places")
    assert again.exit_code == 0, again.output
    assert ("column addr type address -> composite; column addr land_as_text removed (composite is a LOB to DMS, "
            "which lands it as text)") in again.output
    assert run("render", "-c", str(spec), "-o", str(tmp_path / "out")).exit_code == 0


# --- 3. interval --------------------------------------------------------------------------

def test_an_interval_lands_in_the_width_dms_writes(pg, tmp_path):
    """CHAP_Source.PostgreSQL, data types: "INTERVAL: STRING (128)". Postgres prints legal intervals longer
    than 64 characters; the staging column holds what DMS declares."""
    spec, _ = imported(pg.dsn(db="dmsreads"), tmp_path, "postgres", "dmsreads", "places")
    assert load_spec(spec).table("places").columns[8].type == "interval"
    with connect(pg) as conn:
        longest = conn.execute("SELECT '-178000000 years -11 mons -2147483648 days -2562047788:00:54.775807'"
                               "::interval::text").fetchone()[0]
    assert len(longest) == 67
    declared = "1 YEAR, 2 MONTHS, 3 DAYS, 4 HOURS, 5 MINUTES, 6 SECONDS".ljust(128, " ")
    result = verify(spec, "places", [{"id": 1, "span": longest, "code": "a"}, {"id": 2, "span": declared, "code": "b"}],
                    tmp_path)
    assert result.exit_code == 0, result.output
    assert map_type("interval", "postgres").staging == "VARCHAR(128)"


# --- 5. domains ---------------------------------------------------------------------------

def test_domains_resolve_all_the_way_down_arrays_too(pg, tmp_path):
    """README "dwctl import": domains -> their base type; a domain over a domain, a domain over a composite,
    and an array of a domain resolve too, and a NOT NULL anywhere in the chain makes the column NOT NULL."""
    spec, output = imported(pg.dsn(db="dmsreads"), tmp_path, "postgres", "dmsreads", "places")
    columns = {c.name: (c.type, c.nullable, c.exclude) for c in load_spec(spec).table("places").columns}
    assert columns["code"] == ("varchar(10)", False, False)
    assert columns["codes"] == ("varchar(10)[]", True, False)
    assert columns["price"] == ("numeric(8,2)", True, False)
    assert columns["prices"] == ("numeric(8,2)[]", True, False)
    assert columns["home"] == ("composite", True, False)
    code, found = doctor(pg.dsn(db="dmsreads"), spec)
    assert found["columns public.places"]["status"] == "pass", found["columns public.places"]
    assert "types public.places" not in found


# --- 6. unchanged TOAST values ------------------------------------------------------------

def decoded_update(pg, table: str) -> str:
    """The UPDATE of `table`'s row 1 (setting n only) as test_decoding gives it, the plugin DMS uses unless
    pglogical is installed (CHAP_Source.PostgreSQL)."""
    with connect(pg) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot('dwctl_toast_probe', 'test_decoding')")
        try:
            conn.execute(f"UPDATE {table} SET n = n + 1 WHERE id = 1")
            lines = [row[0] for row in conn.execute(
                "SELECT data FROM pg_logical_slot_get_changes('dwctl_toast_probe', NULL, NULL)")]
        finally:
            conn.execute("SELECT pg_drop_replication_slot('dwctl_toast_probe')")
    return next(line for line in lines if line.startswith(f"table public.{table}: UPDATE:"))


RANDOM_TEXT = "(SELECT string_agg(chr(65536 + (random() * 1000000)::int), '') FROM generate_series(1, {n}))"


def test_doctor_warns_about_toast_values_an_update_does_not_carry(pg, tmp_path):
    """An UPDATE that leaves an out-of-line value alone carries no value for it (test_decoding:
    unchanged-toast-datum) unless the replica identity holds it; what DMS then writes to S3 is not
    documented. Doctor warns for exactly the TOAST-able spec columns the identity leaves out (unbounded ones;
    bounded ones when they alone can outgrow the ~2 kB row limit), and its fix, REPLICA IDENTITY FULL, puts
    the value into the change (the old row)."""
    with connect(pg) as conn:
        conn.execute(f"INSERT INTO docs VALUES (1, 't', {RANDOM_TEXT.format(n=3000)}, "
                     f"jsonb_build_object('k', {RANDOM_TEXT.format(n=3000)}), convert_to({RANDOM_TEXT.format(n=900)}, "
                     "'UTF8'), 0)")
        conn.execute(f"INSERT INTO wide VALUES (1, {RANDOM_TEXT.format(n=400)}, {RANDOM_TEXT.format(n=400)}, 0)")
        conn.execute("INSERT INTO narrow VALUES (1, 'x', 0)")
    spec, _ = imported(pg.dsn(db="dmsreads"), tmp_path, "postgres", "dmsreads", "docs,wide,narrow")
    spec.write_text(spec.read_text().replace("{name: blob, type: bytea}", "{name: blob, type: bytea, exclude: true}"))
    code, found = doctor(pg.dsn(db="dmsreads"), spec)
    toast = found["toast public.docs"]
    assert toast["status"] == "warn" and code == 0
    assert toast["detail"].startswith("body, meta can be stored out of line (TOAST, a row over about 2 kB), "
                                      "and REPLICA IDENTITY DEFAULT does not carry")
    assert "The DMS User Guide does not say what DMS then writes to S3" in toast["detail"]
    assert toast["fix"].startswith("ALTER TABLE public.docs REPLICA IDENTITY FULL;")
    assert found["toast public.wide"]["detail"].startswith("a, b can be stored out of line"), "2 x 1,604 bytes"
    assert "toast public.narrow" not in found, "no row of it can outgrow 2 kB: Postgres gave it no TOAST table"

    before = decoded_update(pg, "docs")
    assert "body[text]:unchanged-toast-datum" in before and "meta[jsonb]:unchanged-toast-datum" in before
    assert "old-key" not in before
    assert "unchanged-toast-datum" in decoded_update(pg, "wide"), "a bounded value moved out of line too"
    with connect(pg) as conn:
        conn.execute(toast["fix"].split(";")[0])
        body = conn.execute("SELECT body FROM docs WHERE id = 1").fetchone()[0]
    after = decoded_update(pg, "docs")
    old_row = after.split(" new-tuple: ")[0]
    assert f"body[text]:'{body}'" in old_row, "FULL logs the whole old row, the unchanged value included"
    _, found = doctor(pg.dsn(db="dmsreads"), spec)
    assert "toast public.docs" not in found and "toast public.wide" in found


# --- 4. MySQL ENUM and SET widths ---------------------------------------------------------

WIDE = "\U0001F600" * 100  # 100 characters, 400 UTF-8 bytes
SET_LABELS = ["é" * 255, "ü" * 255, "x" * 255, "ß" * 61]  # 510 + 510 + 255 + 122 bytes, 3 commas: 1,400


@pytest.fixture(scope="module")
def maria(maria_binlog):
    labels = ",".join(f"'{label}'" for label in SET_LABELS)
    maria_binlog.execute("CREATE DATABASE dms_reads CHARACTER SET utf8mb4")
    maria_binlog.execute(f"CREATE TABLE tags (id int PRIMARY KEY, mood enum('ok','{WIDE}','it''s') NOT NULL, "
                         f"flags set({labels}), note varchar(10)) CHARACTER SET utf8mb4", db="dms_reads")
    maria_binlog.create_user("dms_reads", "ALL PRIVILEGES ON *.*")
    return maria_binlog


def test_mysql_enum_and_set_columns_are_as_wide_as_their_values_in_utf8_bytes(maria, tmp_path):
    """CHAP_Source.MySQL, data types: ENUM is "WSTRING (length) ... the length of the longest value in the
    ENUM", SET "the total length of all values in the SET, including commas". Redshift VARCHAR counts
    bytes, so the widths are UTF-8 bytes: a 400-byte label, and every member of the set at once, load."""
    spec, _ = imported(maria.dsn("dms_reads", "dms_reads"), tmp_path, "mysql", "dms_reads", "tags")
    columns = {c.name: c for c in load_spec(spec).table("tags").columns}
    assert not any(c.exclude for c in columns.values())
    everything = ",".join(SET_LABELS)
    assert len(everything.encode("utf-8")) == 1400
    maria.execute(f"INSERT INTO tags VALUES (1, '{WIDE}', '{everything}', 'a'), (2, 'it''s', '', 'b')", db="dms_reads")
    import pymysql

    conn = pymysql.connect(unix_socket=maria.socket, user="root", password="", database="dms_reads", charset="utf8mb4")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, mood, flags, note FROM tags ORDER BY id")
            rows = [dict(zip(("id", "mood", "flags", "note"), r)) for r in cur.fetchall()]
    finally:
        conn.close()
    assert rows[0]["mood"] == WIDE and rows[0]["flags"] == everything and rows[1]["mood"] == "it's"
    result = verify(spec, "tags", rows, tmp_path)
    assert result.exit_code == 0, result.output
    # the catalog prints the emoji as "?" (utf8mb3 metadata): each counts 4 bytes
    assert map_type(columns["mood"].type, "mysql").redshift == "VARCHAR(400)"
    assert map_type(columns["flags"].type, "mysql").redshift == "VARCHAR(1400)"
    code, found = doctor(maria.dsn("dms_reads", "dms_reads"), spec)
    assert found["columns dms_reads.tags"]["status"] == "pass", found["columns dms_reads.tags"]
