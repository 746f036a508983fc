"""Write Parquet files the way DMS lands them: the column names and order come from dwctl.spec.landed_layout."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dwctl.render.engine import TableView
from dwctl.spec import landed_layout as layout

FULL_LOAD_TS = "2024-01-01 00:00:00.000000"


def arrow_type(staging_type: str) -> pa.DataType:
    """The Parquet type DMS writes for a staging column type."""
    t = staging_type.upper()
    if m := re.match(r"DECIMAL\((\d+),(\d+)\)", t):
        return pa.decimal128(int(m[1]), int(m[2]))
    simple = {"BIGINT": pa.int64(), "INTEGER": pa.int32(), "SMALLINT": pa.int16(), "BOOLEAN": pa.bool_(),
              "REAL": pa.float32(), "DOUBLE PRECISION": pa.float64(), "DATE": pa.date32(),
              "TIMESTAMP": pa.timestamp("us"), "TIMESTAMPTZ": pa.timestamp("us", tz="UTC")}
    if t in simple:
        return simple[t]
    if t.startswith("VARBYTE"):
        return pa.binary()
    if t.startswith(("VARCHAR", "CHAR")):
        return pa.string()
    raise ValueError(f"no Parquet type for {staging_type}")


def schema(table: TableView) -> pa.Schema:
    return pa.schema([pa.field(c.name, arrow_type(c.staging_type)) for c in table.landed])


def write(path: Path, table: TableView, rows: list[dict], order: list[str] | None = None) -> Path:
    """rows: dicts with Op, dms_commit_ts, dms_change_seq and source columns (missing -> NULL).
    order: the file's column names in the order written, when not the spec's landed layout (DMS
    documents no position for a column added by ALTER TABLE)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sch = schema(table)
    if order is not None:
        sch = pa.schema([sch.field(name) for name in order])
    columns = {f.name: [landed_value(row.get(f.name), f.type) for row in rows] for f in sch}
    pq.write_table(pa.table(columns, schema=sch), path)
    return path


def landed_value(value, arrow: pa.DataType):
    """A value as DMS lands it: a Python bool in a text column is DMS's true/false (Postgres BOOLEAN)."""
    if isinstance(value, bool) and pa.types.is_string(arrow):
        return "true" if value else "false"
    return value


def change(op: str, ts: str, seq: int | None, **values) -> dict:
    """One landed row; seq None is a full-load row (DMS leaves the change sequence empty)."""
    return {layout.OP_COLUMN: op, layout.TIMESTAMP_COLUMN: ts,
            layout.CHANGE_SEQ_COLUMN: "" if seq is None else f"{seq:035d}", **values}


def cdc_name(second: int) -> str:
    """DMS CDC file name for `second` seconds after 2024-01-01 12:00:00: yyyyMMdd-HHmmssSSS.parquet."""
    h, rest = divmod(second, 3600)
    m, s = divmod(rest, 60)
    return f"20240101-{12 + h:02d}{m:02d}{s:02d}000.parquet"


def table_dir(root: Path, table: TableView) -> Path:
    """root is the bucket root: the table's files go under its landing prefix."""
    return root / table.s3_prefix


class Landing:
    """A local landing bucket for one spec: write DMS files, then run the verifier on it."""

    def __init__(self, root: Path, spec, verifier):
        from dwctl.render.engine import table_view

        self.root, self.spec, self.verifier = root, spec, verifier
        self.views = {t.name: table_view(spec, t) for t in spec.tables}
        (root / spec.landing.prefix).mkdir(parents=True, exist_ok=True)

    def full_load(self, table: str, rows: list[dict], number: int = 1) -> Path:
        name = f"{layout.FULL_LOAD_PREFIX}{number:08d}.parquet"
        return write(table_dir(self.root, self.views[table]) / name, self.views[table], rows)

    def cdc(self, table: str, second: int, rows: list[dict]) -> Path:
        return write(table_dir(self.root, self.views[table]) / cdc_name(second), self.views[table], rows)

    def run(self) -> dict[str, int]:
        return self.verifier.run(self.root)

    def state(self, table: str) -> list[dict]:
        columns, rows = self.verifier.analytics(self.spec.table(table))
        return [dict(zip(columns, row)) for row in rows]


def spec_text_with_tables(tables_yaml: str, engine: str = "postgres") -> str:
    """The example spec's YAML with its tables (and grants) replaced by `tables_yaml` (a `tables:` list body)."""
    from tests.conftest import EXAMPLE

    text = EXAMPLE.read_text(encoding="utf-8")
    text = text[: text.index("\ntables:")] + "\ntables:" + tables_yaml.rstrip() + (
        "\ngovernance:\n  admins:\n    - arn:aws:iam::123456789012:role/DataPlatformAdmin\n")
    if engine != "postgres":
        text = text.replace("engine: postgres", f"engine: {engine}").replace("port: 5432", "port: 3306")
    return text


def spec_with_tables(tables_yaml: str, engine: str = "postgres", name: str = "test.yaml"):
    """The example spec with its tables (and grants) replaced by `tables_yaml`, parsed."""
    from dwctl.spec.read import parse_spec

    return parse_spec(spec_text_with_tables(tables_yaml, engine), name)
