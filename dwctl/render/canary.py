"""The smoke run's canary Parquet files (`dwctl smoke`): rows in each table's landed layout, and one
file holding every landed type, written here with the standard library so the rendered bytes are
the same on every machine (a Parquet library would stamp its own version into each file).

`dwctl render` writes them, base64, into iac/glue_scripts/smoke_canary.json, which Terraform
uploads beside the load job's config: each distinct file once (`parquet`), each unit's steps naming
theirs by index (tables of one landed layout have the same files; load_job.expanded_canary puts
the base64 back in its place). The job's smoke mode (dwctl/warehouse/load_job.py, smoke)
copies them under its scratch prefix and COPYs them into scratch tables: Redshift itself then says
whether it loads each landed type, and runs every table's merge on them.

The files follow the Apache Parquet format specification (parquet.thrift, "File Format"): "PAR1",
one row group of one uncompressed data page (v1, PLAIN values, RLE definition levels) per column,
then the FileMetaData in the Thrift compact protocol, its length (4 bytes, little-endian) and
"PAR1". Each staging type gets the Parquet type our model of DMS's files gives it
(tests/support/dms_files.py, from the AWS DMS User Guide, CHAP_Target.S3, "Target data types for
S3 Parquet": INT2 -> INT16, INT4 -> INT32, INT8 -> INT64, NUMERIC -> DECIMAL, REAL4 -> FLOAT,
REAL8 -> DOUBLE, STRING -> STRING, DATE -> DATE32, DATETIME -> TIMESTAMP, BOOLEAN -> BOOL,
BYTES/BLOB -> BINARY). DMS compresses its pages (GZIP here, dms.tf); the canary does not, so its
bytes do not depend on the zlib build.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import struct
from dataclasses import dataclass
from functools import lru_cache

from dwctl.render import job_config
from dwctl.spec import landed_layout as layout

PATH = "iac/glue_scripts/smoke_canary.json"
FORMAT = 2  # the version of this document the job's smoke mode reads (load_job.SMOKE_CANARY_FORMAT)
MAGIC = b"PAR1"
# A unit's files, named as DMS names them (CHAP_Target.S3): two full-load files and one CDC file.
LOAD_FILES = (f"{layout.FULL_LOAD_PREFIX}00000001.parquet", f"{layout.FULL_LOAD_PREFIX}00000002.parquet")
CDC_FILE = "20240101-000001000.parquet"
EPOCH = dt.date(1970, 1, 1)
DAY0 = dt.datetime(2024, 1, 1)
# One column per kind of Parquet type a staging column can have (type_mapping's staging types),
# decimals in each fixed-length size class: what `dwctl smoke` asks Redshift to COPY.
ALL_TYPES = (("c_smallint", "SMALLINT"), ("c_integer", "INTEGER"), ("c_bigint", "BIGINT"),
             ("c_decimal_9_2", "DECIMAL(9,2)"), ("c_decimal_18_4", "DECIMAL(18,4)"),
             ("c_decimal_38_10", "DECIMAL(38,10)"), ("c_real", "REAL"), ("c_double", "DOUBLE PRECISION"),
             ("c_boolean", "BOOLEAN"), ("c_date", "DATE"), ("c_timestamp", "TIMESTAMP"),
             ("c_timestamptz", "TIMESTAMPTZ"), ("c_varchar", "VARCHAR(65535)"), ("c_varbyte", "VARBYTE(1024000)"))

# parquet.thrift enums
BOOLEAN, INT32, INT64, FLOAT, DOUBLE, BYTE_ARRAY, FIXED = 0, 1, 2, 4, 5, 6, 7
UTF8, DECIMAL, DATE, TIMESTAMP_MICROS, INT_16 = 0, 5, 6, 10, 16
OPTIONAL, PLAIN, RLE, UNCOMPRESSED, DATA_PAGE = 1, 0, 3, 0, 0


@dataclass(frozen=True)
class ParquetType:
    """How one staging column is stored: physical type, FIXED length, converted type and LogicalType."""

    physical: int
    length: int | None = None
    converted: int | None = None
    logical: tuple | None = None  # (LogicalType union field, its struct's fields)
    precision: int | None = None
    scale: int | None = None


@lru_cache(maxsize=None)
def parquet_type(staging: str) -> ParquetType:
    t = staging.upper()
    if m := re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", t):
        p, s = int(m[1]), int(m[2])
        size = next(n for n in range(1, 17) if 2 ** (8 * n - 1) > 10 ** p - 1)
        return ParquetType(FIXED, size, DECIMAL, (5, [(1, "i32", s), (2, "i32", p)]), p, s)
    if t.startswith(("VARCHAR", "CHAR")):
        return ParquetType(BYTE_ARRAY, converted=UTF8, logical=(1, []))
    if t.startswith("VARBYTE"):
        return ParquetType(BYTE_ARRAY)
    micros = (2, "struct", [(2, "struct", [])])  # TimeUnit.MICROS
    return {
        "SMALLINT": ParquetType(INT32, converted=INT_16, logical=(10, [(1, "i8", 16), (2, "bool", True)])),
        "INTEGER": ParquetType(INT32), "BIGINT": ParquetType(INT64), "REAL": ParquetType(FLOAT),
        "DOUBLE PRECISION": ParquetType(DOUBLE), "BOOLEAN": ParquetType(BOOLEAN),
        "DATE": ParquetType(INT32, converted=DATE, logical=(6, [])),
        # A TIMESTAMP converted type means "adjusted to UTC" (LogicalTypes.md): only the UTC one carries it.
        "TIMESTAMP": ParquetType(INT64, logical=(8, [(1, "bool", False), micros])),
        "TIMESTAMPTZ": ParquetType(INT64, converted=TIMESTAMP_MICROS, logical=(8, [(1, "bool", True), micros])),
    }[t]


# --- Thrift compact protocol (just what FileMetaData and PageHeader need) -------------------------
_BYTE = [bytes([n]) for n in range(256)]
_TYPES = {"bool": 1, "i8": 3, "i32": 5, "i64": 6, "bin": 8, "list": 9, "struct": 12, "encoded list": 9,
          "encoded struct": 12}


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _BYTE[n]
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _zigzag(n: int) -> bytes:
    return _varint((n << 1) ^ (n >> 63))


def _value(kind: str, value) -> bytes:
    if kind == "i8":
        return struct.pack("<b", value)
    if kind in ("i32", "i64"):
        return _zigzag(value)
    if kind == "bin":
        data = value.encode("utf-8") if isinstance(value, str) else value
        return _varint(len(data)) + data
    if kind == "struct":
        return _struct(value)
    if kind in ("encoded list", "encoded struct"):  # encoded before (cached parts)
        return value
    if kind == "list":
        element, items = value
        return _list_head(len(items), element) + b"".join(_value(element, item) for item in items)
    raise ValueError(kind)


def _list_head(size: int, element: str) -> bytes:
    return bytes([size << 4 | _TYPES[element]]) if size < 15 else bytes([0xF0 | _TYPES[element]]) + _varint(size)


def _struct(fields, last: int = 0, stop: bool = True) -> bytes:
    """fields: (id, kind, value) in id order; a None value is left out. `last` and `stop` encode a
    struct in parts: fields after id `last`, without the stop byte."""
    out = bytearray()
    for fid, kind, value in fields:
        if value is None:
            continue
        code = (1 if value else 2) if kind == "bool" else _TYPES[kind]
        out += bytes([(fid - last) << 4 | code]) if 0 < fid - last <= 15 else bytes([code]) + _zigzag(fid)
        if kind != "bool":
            out += _value(kind, value)
        last = fid
    return bytes(out + b"\x00") if stop else bytes(out)


# --- values ----------------------------------------------------------------------------------
def _plain(ptype: ParquetType, values: list) -> bytes:
    """PLAIN encoding of the non-null values of one column."""
    if ptype.physical == BOOLEAN:
        bits = bytearray((len(values) + 7) // 8)
        for i, v in enumerate(values):
            bits[i // 8] |= int(bool(v)) << (i % 8)
        return bytes(bits)
    if ptype.physical == FIXED:
        return b"".join(v.to_bytes(ptype.length, "big", signed=True) for v in values)
    if ptype.physical == BYTE_ARRAY:
        return b"".join(struct.pack("<i", len(d)) + d for d in (v.encode("utf-8") if isinstance(v, str) else v
                                                                  for v in values))
    fmt = {INT32: "<i", INT64: "<q", FLOAT: "<f", DOUBLE: "<d"}[ptype.physical]
    return b"".join(struct.pack(fmt, v) for v in values)


def _levels(defined: list[bool]) -> bytes:
    """Definition levels (bit width 1) in the RLE/bit-packed hybrid, as RLE runs, length-prefixed."""
    runs, i = bytearray(), 0
    while i < len(defined):
        j = i
        while j < len(defined) and defined[j] == defined[i]:
            j += 1
        runs += _varint((j - i) << 1) + bytes([int(defined[i])])
        i = j
    return struct.pack("<i", len(runs)) + bytes(runs)


def stored(staging: str, value):
    """A Python value as the column stores it: days for DATE, microseconds for TIMESTAMP*, the
    unscaled integer for DECIMAL (value given as a string or int), bytes for VARBYTE."""
    if value is None:
        return None
    ptype = parquet_type(staging)
    if ptype.converted == DATE:
        return (value - EPOCH).days
    if ptype.logical is not None and ptype.logical[0] == 8:
        return (value - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
    if ptype.physical == FIXED:
        whole, _, frac = str(value).partition(".")
        return int(whole + frac.ljust(ptype.scale, "0")[: ptype.scale])
    return value


@lru_cache(maxsize=64)
def _schema(columns: tuple) -> bytes:
    """FileMetaData.schema of these columns: the root, then one OPTIONAL leaf per column."""
    schema = [[(4, "bin", "schema"), (5, "i32", len(columns))]]
    for name, staging in columns:
        p = parquet_type(staging)
        schema.append([(1, "i32", p.physical), (2, "i32", p.length), (3, "i32", OPTIONAL), (4, "bin", name),
                       (6, "i32", p.converted), (7, "i32", p.scale), (8, "i32", p.precision),
                       (10, "struct", [(p.logical[0], "struct", p.logical[1])] if p.logical else None)])
    return _value("list", ("struct", schema))


@lru_cache(maxsize=4096)
def _page_header(size: int, rows: int) -> bytes:
    """PageHeader of an uncompressed v1 data page: PLAIN values, RLE definition and repetition levels."""
    return _struct([(1, "i32", DATA_PAGE), (2, "i32", size), (3, "i32", size),
                    (5, "struct", [(1, "i32", rows), (2, "i32", PLAIN), (3, "i32", RLE), (4, "i32", RLE)])])


@lru_cache(maxsize=None)
def _meta_head(name: str, staging: str) -> bytes:
    """ColumnMetaData's fields 1-4 (type, encodings, path, codec): the same in every file."""
    return _struct([(1, "i32", parquet_type(staging).physical), (2, "list", ("i32", [PLAIN, RLE])),
                    (3, "list", ("bin", [name])), (4, "i32", UNCOMPRESSED)], stop=False)


def _column_chunk(name: str, staging: str, rows: int, size: int, offset: int) -> bytes:
    """ColumnChunk: file_offset and ColumnMetaData (values, sizes, data page offset). What
    _struct([(5, "i64", rows), (6, ...), (7, ...), (9, "i64", offset)], last=4) and _struct([(2, "i64",
    offset), (3, "encoded struct", meta)]) write, spelled out (a field header is its id's delta << 4 |
    its type: i64 6, struct 12): this runs once per column of every canary file."""
    meta = b"".join((_meta_head(name, staging), b"\x16", _zigzag(rows), b"\x16", _zigzag(size), b"\x16",
                     _zigzag(size), b"\x26", _zigzag(offset), b"\x00"))
    return b"".join((b"\x26", _zigzag(offset), b"\x1c", meta, b"\x00"))


def parquet_file(columns: list[tuple[str, str]], rows: list[list]) -> bytes:
    """A Parquet file of `rows` (Python values, None for NULL; see stored) in `columns`
    [(name, staging type)], every column OPTIONAL as DMS writes them."""
    out = bytearray(MAGIC)
    chunks = []
    for index, (name, staging) in enumerate(columns):
        values = [stored(staging, row[index]) for row in rows]
        data = _levels([v is not None for v in values]) + _plain(parquet_type(staging), [v for v in values if v is not None])
        header = _page_header(len(data), len(rows))
        chunks.append(_column_chunk(name, staging, len(rows), len(header) + len(data), len(out)))
        out += header + data
    row_group = [(1, "encoded list", _list_head(len(chunks), "struct") + b"".join(chunks)),
                 (2, "i64", len(out) - len(MAGIC)), (3, "i64", len(rows))]
    footer = _struct([(1, "i32", 2), (2, "encoded list", _schema(tuple(columns))), (3, "i64", len(rows)),
                      (4, "list", ("struct", [row_group])), (6, "bin", "dwctl smoke canary")])
    return bytes(out + footer + struct.pack("<i", len(footer)) + MAGIC)


# --- what the canaries hold ------------------------------------------------------------------
_NUMERIC = ("SMALLINT", "INT", "BIGINT", "DECIMAL", "NUMERIC", "REAL", "DOUBLE", "FLOAT")


def _text(analytics: str, n: int, limit: int | None) -> str:
    """Text the merge turns into the analytics type without error (a Postgres boolean lands as
    true/false, json as text for JSON_PARSE); key values differ by n."""
    t = analytics.upper()
    if t.startswith(_NUMERIC):
        text = str(n)
    elif t.startswith("BOOL"):
        text = "true"
    elif t == "DATE":
        text = (DAY0 + dt.timedelta(days=n)).date().isoformat()
    elif t.startswith("TIMESTAMP"):
        text = str(DAY0 + dt.timedelta(seconds=n))
    elif t == "SUPER":
        text = '{"dwctl": %d}' % n
    else:
        text = "dwctl smoke %d" % n
    return text if limit is None or len(text) <= limit else str(n)[:limit]


def _length(staging: str) -> int | None:
    m = re.search(r"\((\d+)\)$", staging)
    return int(m[1]) if m else None


def canary_value(staging: str, analytics: str, n: int):
    """A value of a staging column whose analytics column has type `analytics`; n (>= 1) tells key values apart."""
    ptype = parquet_type(staging)
    if ptype.physical == BYTE_ARRAY and ptype.converted == UTF8:
        return _text(analytics, n, _length(staging))
    if ptype.physical == BYTE_ARRAY:
        return b"dwctl"[: _length(staging) or 5]
    if ptype.physical == FIXED:
        return str(n) if ptype.precision > ptype.scale and len(str(n)) <= ptype.precision - ptype.scale else \
            "0." + str(n).rjust(ptype.scale, "0")[-ptype.scale:]
    if ptype.physical == BOOLEAN:
        return True
    if ptype.converted == DATE:
        return (DAY0 + dt.timedelta(days=n)).date()
    if ptype.logical is not None and ptype.logical[0] == 8:
        return DAY0 + dt.timedelta(seconds=n)
    return n + 0.5 if ptype.physical in (FLOAT, DOUBLE) else n


def unit_rows(unit, key: int, op: str, ts: str, seq: str) -> list:
    """One landed row of a unit (engine.TableView): Op, timestamp, every source column, change sequence."""
    analytics = {c.name: c.redshift_type for c in unit.columns}
    keys = set(unit.primary_key)
    row = []
    for column in unit.landed:
        if column.name == layout.OP_COLUMN:
            row.append(op)
        elif column.name == layout.TIMESTAMP_COLUMN:
            row.append(ts)
        elif column.name == layout.CHANGE_SEQ_COLUMN:
            row.append(seq)
        else:
            row.append(canary_value(column.staging_type, analytics[column.name], key if column.name in keys else 1))
    return row


def unit_steps(unit, offset: int = 0) -> list[tuple[str, dict[str, bytes]]]:
    """A unit's scenario: (name, {file name: bytes}) of each pass the smoke run merges, in order. The
    first full load alone takes the first load's fast path; the changes, more of the full load and a
    reload (its first file rewritten, transferred later: the job restages the second) take the
    ranked path and the reload's two passes. Units merging into one analytics table (partitions) get
    keys apart (offset), as partitions never share a key."""
    columns = [(c.parquet_name, c.staging_type) for c in unit.landed]

    def file(key: int, op: str, ts: str, seq: str = "") -> bytes:
        return parquet_file(columns, [unit_rows(unit, offset + key, op, "2024-01-01 00:00:%s.000000" % ts, seq)])

    first, second = LOAD_FILES
    return [("first full load", {first: file(1, "I", "00")}),
            ("changes", {CDC_FILE: file(1, "U", "01", "1".rjust(35, "0"))}),
            ("more of the full load", {second: file(2, "I", "00")}),
            ("reload", {first: file(1, "I", "02")})]


def all_types_columns() -> list[tuple[str, str]]:
    return [(layout.OP_COLUMN, "CHAR(1)"), (layout.TIMESTAMP_COLUMN, "VARCHAR(26)"), *ALL_TYPES,
            (layout.CHANGE_SEQ_COLUMN, f"VARCHAR({layout.CHANGE_SEQ_LENGTH})")]


def all_types_file() -> bytes:
    """Every landed type: one row of values, one of NULLs (definition levels)."""
    columns = all_types_columns()
    values = ["I", "2024-01-01 00:00:00.000000", *(canary_value(t, t, 1) for _, t in ALL_TYPES), ""]
    return parquet_file(columns, [values, ["I"] + [None] * (len(columns) - 1)])


def unit_shape(unit, offset: int) -> tuple:
    """What unit_steps' files depend on: units of one shape have the same files."""
    analytics = {c.name: c.redshift_type for c in unit.columns}
    keys = set(unit.primary_key)
    return offset, tuple((c.name, c.parquet_name, c.staging_type, analytics.get(c.name), c.name in keys)
                         for c in unit.landed)


def document(units, note: str) -> str:
    """iac/glue_scripts/smoke_canary.json: the all-types file, each distinct unit file once (base64, in
    `parquet`), and each unit's steps with their files' indexes there."""
    b64 = lambda data: base64.b64encode(data).decode("ascii")  # noqa: E731
    siblings: dict[str, int] = {}
    files: dict[str, list] = {}
    pool: dict[str, int] = {}  # base64 -> its index
    shapes: dict[tuple, list] = {}
    for unit in units:
        offset = 2 * siblings.get(unit.analytics_name, 0)
        siblings[unit.analytics_name] = siblings.get(unit.analytics_name, 0) + 1
        shape = unit_shape(unit, offset)
        if shape not in shapes:
            shapes[shape] = [{"name": name, "files": {f: pool.setdefault(b64(data), len(pool)) for f, data in step.items()}}
                             for name, step in unit_steps(unit, offset)]
        files[unit.name] = shapes[shape]
    doc = {"//": note, "format": FORMAT,
           "all_types": {"columns": [list(c) for c in all_types_columns()], "parquet": b64(all_types_file())},
           "parquet": list(pool), "units": files}
    return job_config.text(doc, sort_keys=True)
