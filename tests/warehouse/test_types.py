"""The documented type mapping (dwctl/spec/type_mapping.py MAPPING): each rule, and values of every kind carried
from DMS-shaped Parquet through the rendered SQL (in DuckDB) into the analytics table."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal

import duckdb
import pytest

from dwctl.spec.type_mapping import MAPPING, map_type, mapping_table
from dwctl.warehouse.verifier import Verifier
from tests.support.dms_files import FULL_LOAD_TS, Landing, change, spec_with_tables


@pytest.mark.parametrize("source, family, redshift, staging, cast", [
    ("numeric(12,2)", "postgres", "DECIMAL(12,2)", "DECIMAL(12,2)", "{}"),
    ("numeric", "postgres", "DECIMAL(28,6)", "DECIMAL(28,6)", "{}"),  # DMS's default for unbounded numeric
    ("numeric(40,2)", "postgres", "VARCHAR(42)", "VARCHAR(42)", "{}"),  # beyond Redshift's 38 digits
    ("decimal(10,0) unsigned", "mysql", "DECIMAL(10,0)", "DECIMAL(10,0)", "{}"),
    ("varchar(10)", "postgres", "VARCHAR(40)", "VARCHAR(40)", "{}"),  # 10 characters, up to 40 UTF-8 bytes
    ("varchar(20000)", "mysql", "VARCHAR(65535)", "VARCHAR(65535)", "{}"),  # capped at Redshift's maximum
    ("character varying", "postgres", "VARCHAR(65535)", "VARCHAR(65535)", "{}"),
    ("char(2)", "postgres", "VARCHAR(8)", "VARCHAR(8)", "{}"),
    ("timestamp", "postgres", "TIMESTAMP", "TIMESTAMP", "{}"),
    ("timestamp with time zone", "postgres", "TIMESTAMPTZ", "TIMESTAMPTZ", "{}"),
    ("datetime", "mysql", "TIMESTAMP", "TIMESTAMP", "{}"),
    ("timestamp", "mysql", "TIMESTAMPTZ", "TIMESTAMPTZ", "{}"),  # MySQL TIMESTAMP is stored in UTC
    # Postgres BOOLEAN lands as the text true/false; MySQL's BOOLEAN is TINYINT(1) and lands as an integer
    ("boolean", "postgres", "BOOLEAN", "VARCHAR(5)",
     "CASE LOWER({}) WHEN 'true' THEN TRUE WHEN 't' THEN TRUE WHEN 'false' THEN FALSE WHEN 'f' THEN FALSE END"),
    ("boolean", "mysql", "BOOLEAN", "SMALLINT", "({} <> 0)"),
    ("time", "postgres", "VARCHAR(32)", "VARCHAR(32)", "{}"),
    ("jsonb", "postgres", "SUPER", "VARCHAR(65535)", "JSON_PARSE({})"),
    ("json", "mysql", "SUPER", "VARCHAR(65535)", "JSON_PARSE({})"),
    ("uuid", "postgres", "VARCHAR(36)", "VARCHAR(36)", "{}"),
    ("text", "postgres", "VARCHAR(65535)", "VARCHAR(65535)", "{}"),
    ("longtext", "mysql", "VARCHAR(65535)", "VARCHAR(65535)", "{}"),
    ("bytea", "postgres", "VARBYTE(1024000)", "VARBYTE(1024000)", "{}"),
    ("varbinary(16)", "mysql", "VARBYTE(1024000)", "VARBYTE(1024000)", "{}"),
    # MySQL ENUM: WSTRING of the longest value, SET: of all values and commas (CHAP_Source.MySQL), in UTF-8
    # bytes; "?" is what the catalog prints for a 4-byte character
    ("enum('a','bb')", "mysql", "VARCHAR(2)", "VARCHAR(2)", "{}"),
    ("enum('é','it''s','a\\\\b')", "mysql", "VARCHAR(4)", "VARCHAR(4)", "{}"),
    ("enum('??','ab')", "mysql", "VARCHAR(8)", "VARCHAR(8)", "{}"),
    ("enum", "mysql", "VARCHAR(1020)", "VARCHAR(1020)", "{}"),
    ("set('r','w','ü')", "mysql", "VARCHAR(6)", "VARCHAR(6)", "{}"),
    ("set", "mysql", "VARCHAR(65343)", "VARCHAR(65343)", "{}"),
    ("enum", "postgres", "VARCHAR(256)", "VARCHAR(256)", "{}"),
    ("interval", "postgres", "VARCHAR(128)", "VARCHAR(128)", "{}"),  # DMS: STRING(128)
    ("composite", "postgres", "VARCHAR(65535)", "VARCHAR(65535)", "{}"),  # DMS: NCLOB
    ("composite[]", "postgres", "VARCHAR(65535)", "VARCHAR(65535)", "{}"),
    ("integer[]", "postgres", "VARCHAR(65535)", "VARCHAR(65535)", "{}"),  # array text form, not JSON
    ("text[][]", "postgres", "VARCHAR(65535)", "VARCHAR(65535)", "{}"),
    ("int unsigned", "mysql", "BIGINT", "BIGINT", "{}"),
    ("bigint unsigned", "mysql", "DECIMAL(20,0)", "DECIMAL(20,0)", "{}"),
    ("tinyint(1)", "mysql", "SMALLINT", "SMALLINT", "{}"),
    ("float", "mysql", "DOUBLE PRECISION", "DOUBLE PRECISION", "{}"),  # DMS: REAL8 (CHAP_Source.MySQL)
    ("real", "mysql", "DOUBLE PRECISION", "DOUBLE PRECISION", "{}"),
    ("real", "postgres", "REAL", "REAL", "{}"),
    ("float", "postgres", "DOUBLE PRECISION", "DOUBLE PRECISION", "{}"),  # Postgres FLOAT is FLOAT8
    ("float(10)", "postgres", "REAL", "REAL", "{}"),
])
def test_mapping_rules(source, family, redshift, staging, cast):
    mapped = map_type(source, family)
    assert (mapped.redshift, mapped.staging, mapped.cast) == (redshift, staging, cast)


@pytest.mark.parametrize("source, family, dms_type", [
    ("time", "postgres", ("string", 32)),  # Postgres TIME lands as Parquet TIME, which COPY does not load into text
    ("smallint unsigned", "mysql", ("int4",)),  # MySQL UNSIGNED lands as unsigned Parquet integers
    ("int unsigned", "mysql", ("int8",)),
    ("bigint unsigned", "mysql", ("numeric", 20, 0)),
    ("time", "mysql", ()),
    ("integer", "mysql", ()),
])
def test_dms_is_told_to_land_what_copy_loads(source, family, dms_type):
    assert map_type(source, family).dms_type == dms_type


def test_change_data_type_rules_reach_the_dms_table_mapping():
    spec = spec_with_tables(MYSQL_TYPES.replace("      - {name: yr, type: year}\n",
                                                "      - {name: yr, type: year}\n      - {name: big, type: bigint unsigned}\n"),
                            engine="mysql")
    from dwctl.render.engine import render

    dms = render(spec, "x.yaml")["iac/dms.tf"]
    rule = dms.split('"rule-name"   = "data-type-shop-legacy-big"')[1].split("},\n    {")[0]
    assert '"rule-action" = "change-data-type"' in rule and '"column-name" = "big"' in rule
    assert '"type"      = "numeric"' in rule and '"precision" = 20' in rule and '"scale"     = 0' in rule
    assert '"data-type-shop-legacy-id"' in dms, "int unsigned: landed as int8"


@pytest.mark.parametrize("source, family, message", [
    ("integer[]", "mysql", "arrays exist only in Postgres"),
    ("geography", "postgres", "not a known postgres type"),
    ("uuid", "mysql", "not a known mysql type"),
    ("enum(a,b)", "mysql", "must be quoted"),
])
def test_unknown_or_wrong_types_are_refused(source, family, message):
    with pytest.raises(ValueError, match=message):
        map_type(source, family)


def test_mapping_table_documents_every_rule():
    rows = mapping_table()
    assert len(rows) == len(MAPPING) + 1
    documented = {name for _, names, _ in rows for name in names.split(", ")}
    assert {"numeric", "varchar", "timestamptz", "boolean", "jsonb", "uuid", "text", "bytea", "enum",
            "type[]"} <= documented
    assert any("bytes" in note for _, _, note in rows), "the bytes-vs-characters rule is explained"


ALL_TYPES = """
  - schema: public
    name: kinds
    columns:
      - {name: id, type: bigint, nullable: false}
      - {name: price, type: "numeric(12,2)"}
      - {name: huge, type: "numeric(40,0)"}
      - {name: word, type: varchar(5)}
      - {name: local_ts, type: timestamp}
      - {name: utc_ts, type: timestamptz}
      - {name: flag, type: boolean}
      - {name: doc, type: jsonb}
      - {name: ref, type: uuid}
      - {name: body, type: text}
      - {name: raw, type: bytea}
      - {name: mood, type: "enum('happy','sad')"}
      - {name: tags, type: "integer[]"}
      - {name: day, type: date}
      - {name: ratio, type: double precision}
      - {name: small, type: smallint}
    primary_key: [id]
"""


def test_every_kind_of_value_reaches_the_analytics_table(tmp_path):
    spec = spec_with_tables(ALL_TYPES)
    landing = Landing(tmp_path / "bucket", spec, Verifier(spec, duckdb.connect(), tmp_path))
    utc = datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=timezone.utc)
    full = dict(id=1, price=Decimal("1234567890.12"), huge="1" * 40, word="ééééé", local_ts=datetime(2024, 3, 1, 8),
                utc_ts=utc, flag=True, doc='{"k": [1, {"n": null}]}', ref="2f1e3d4c-0000-4000-8000-123456789abc",
                body="x" * 5000, raw=b"\x00\xffbytes", mood="sad", tags="{1,2,3}", day=date(2024, 2, 29),
                ratio=0.1, small=-32768)
    landing.full_load("kinds", [change("I", FULL_LOAD_TS, None, **full), change("I", FULL_LOAD_TS, None, id=2)])
    landing.run()
    one, two = landing.state("kinds")
    assert one["price"] == Decimal("1234567890.12") and one["huge"] == "1" * 40
    assert one["word"] == "ééééé" and len(one["word"].encode()) == 10  # 5 characters, 10 bytes, fits VARCHAR(20)
    assert one["local_ts"] == datetime(2024, 3, 1, 8) and one["utc_ts"] == utc
    assert one["flag"] is True and json.loads(one["doc"]) == {"k": [1, {"n": None}]}
    assert one["ref"] == full["ref"] and one["body"] == full["body"] and one["raw"] == b"\x00\xffbytes"
    assert (one["mood"], one["tags"], one["day"], one["ratio"], one["small"]) == ("sad", "{1,2,3}", date(2024, 2, 29),
                                                                                0.1, -32768)
    assert all(value is None for key, value in two.items() if key != "id"), "NULLs of every type stay NULL"


MYSQL_TYPES = """
  - schema: shop
    name: legacy
    columns:
      - {name: id, type: int unsigned, nullable: false}
      - {name: made, type: datetime}
      - {name: seen, type: timestamp}
      - {name: active, type: tinyint(1)}
      - {name: yr, type: year}
      - {name: perms, type: "set('r','w')"}
      - {name: blob_col, type: blob}
    primary_key: [id]
"""


def test_mysql_types_through_the_sql(tmp_path):
    spec = spec_with_tables(MYSQL_TYPES, engine="mysql")
    landing = Landing(tmp_path / "bucket", spec, Verifier(spec, duckdb.connect(), tmp_path))
    row = dict(id=4_000_000_000, made=datetime(2024, 1, 2, 3, 4, 5), seen=datetime(2024, 1, 2, tzinfo=timezone.utc),
               active=1, yr=2024, perms="r,w", blob_col=b"\x01")
    landing.full_load("legacy", [change("I", FULL_LOAD_TS, None, **row)])
    landing.run()
    assert landing.state("legacy") == [row]


def test_a_mysql_float_lands_as_dms_writes_it(tmp_path):
    """AWS DMS User Guide, CHAP_Source.MySQL: FLOAT lands as REAL8 ("REAL(DOUBLE)", the double range),
    which the S3 target writes as a Parquet DOUBLE (CHAP_Target.S3, "Parquet data types"). The file here
    is written with that Parquet type as DMS documents it, not with the type dwctl expects, and the
    verifier applies Redshift COPY's type rules: the value arrives whole."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dwctl.render.engine import table_view
    from dwctl.spec import landed_layout as layout
    from tests.support.dms_files import table_dir

    spec = spec_with_tables("""
  - schema: shop
    name: gauges
    columns:
      - {name: id, type: int, nullable: false}
      - {name: reading, type: float}
    primary_key: [id]
""", engine="mysql")
    landing = Landing(tmp_path / "bucket", spec, Verifier(spec, duckdb.connect(), tmp_path))
    view = table_view(spec, spec.table("gauges"))
    names = [c.parquet_name for c in view.landed]
    values = {layout.OP_COLUMN: ["I"], layout.TIMESTAMP_COLUMN: [FULL_LOAD_TS], layout.CHANGE_SEQ_COLUMN: [""],
              "id": [1], "reading": [0.1]}
    types = {"id": pa.int32(), "reading": pa.float64()}
    table = pa.table({n: pa.array(values[n], types.get(n, pa.string())) for n in names})
    folder = table_dir(landing.root, view)
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "LOAD00000001.parquet")
    assert landing.run() == {"gauges": 1}
    assert landing.state("gauges") == [{"id": 1, "reading": 0.1}]  # a double's 0.1, not a float32's
