"""Source (Postgres / MySQL) column types -> how DMS lands them -> Redshift and Glue types.

One table, `MAPPING`, is the documentation and the implementation: the type table of docs/reference/spec.md
is generated from it. Each row says what the analytics column becomes in Redshift, what
the staging column (the landed Parquet value) is, the Glue catalog type, and the SQL
expression that turns a staged value into the analytics value.

Lengths: Postgres and MySQL (utf8mb4) count characters, Redshift VARCHAR counts bytes, so
character lengths are multiplied by 4 (capped at 65535).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

Family = Literal["postgres", "mysql"]
VARCHAR_MAX = 65535
VARBYTE_MAX = 1024000
BYTES_PER_CHAR = 4


@dataclass(frozen=True)
class SourceType:
    """A parsed source type: base name, numeric arguments, unsigned and array flags."""

    base: str
    args: tuple[int, ...] = ()
    unsigned: bool = False
    array: bool = False
    labels: tuple[str, ...] = ()  # an enum's or set's values, unescaped, when the spelling lists them


@dataclass(frozen=True)
class Mapped:
    """Where one source column ends up."""

    redshift: str  # analytics column type
    staging: str  # staging column type (the landed Parquet value as Redshift reads it)
    glue: str  # Glue catalog (Hive) type of the landed Parquet column
    cast: str = "{}"  # staging -> analytics expression; {} is the quoted staging column
    # A DMS change-data-type for the column (type, then length, or precision and scale), when what
    # DMS lands by default is not something Redshift COPY loads into the staging type.
    dms_type: tuple = ()


# (families, source base names, rule). A rule maps the parsed type to a Mapped.
def _fixed(redshift: str, glue: str, staging: str | None = None, cast: str = "{}", dms_type: tuple = ()):
    return lambda t: Mapped(redshift, staging or redshift, glue, cast, dms_type)


def _chars(t: SourceType) -> Mapped:
    n = t.args[0] if t.args else None
    size = min(n * BYTES_PER_CHAR, VARCHAR_MAX) if n else VARCHAR_MAX
    return Mapped(f"VARCHAR({size})", f"VARCHAR({size})", "string")


def _decimal(t: SourceType) -> Mapped:
    p, s = (t.args + (0, 0))[:2] if t.args else (28, 6)
    if p > 38:
        return Mapped(f"VARCHAR({p + 2})", f"VARCHAR({p + 2})", "string")
    return Mapped(f"DECIMAL({p},{s})", f"DECIMAL({p},{s})", f"decimal({p},{s})")


# MySQL UNSIGNED lands as unsigned Parquet integers (AWS DMS User Guide, CHAP_Target.S3, Parquet
# data types), which Redshift COPY does not load into its signed columns: DMS is told to land the
# next wider signed type (a change-data-type transformation), and BIGINT UNSIGNED as NUMERIC(20,0).
_SIGNED = {"SMALLINT": "int2", "INTEGER": "int4", "BIGINT": "int8"}


def _int(width: str, glue: str, wider: str, wider_glue: str):
    return lambda t: Mapped(wider, wider, wider_glue, dms_type=(_SIGNED[wider],)) if t.unsigned \
        else Mapped(width, width, glue)


def _bigint(t: SourceType) -> Mapped:
    if t.unsigned:
        return Mapped("DECIMAL(20,0)", "DECIMAL(20,0)", "decimal(20,0)", dms_type=("numeric", 20, 0))
    return Mapped("BIGINT", "BIGINT", "bigint")


# MySQL ENUM lands as "WSTRING (length) Here, length is the length of the longest value in the ENUM",
# SET as "WSTRING (length) ... the total length of all values in the SET, including commas" (AWS DMS User
# Guide, CHAP_Source.MySQL, "Source data types for MySQL"). Redshift VARCHAR counts UTF-8 bytes, so the
# width is those lengths in UTF-8 bytes. Without the labels (a bare `enum`), the most a value can take:
# MySQL allows an element of at most 255 characters and 1020 bytes ("M <= 255 and (M x w) <= 1020",
# MySQL Reference Manual, The ENUM Type / The SET Type), at most 4 UTF-8 bytes a character, and a SET at
# most 64 members. The catalog prints a character outside the BMP (4 UTF-8 bytes, an emoji) as "?"
# (MariaDB's and MySQL's information_schema and SHOW CREATE TABLE are utf8mb3), so a "?" counts 4 bytes.
ENUM_ELEMENT_MAX = 1020
SET_MEMBERS_MAX = 64


def _utf8(label: str) -> int:
    """A label's length in UTF-8 bytes, a "?" counted as the 4-byte character it may stand for."""
    return len(label.encode("utf-8")) + 3 * label.count("?")


def _mysql_enum(t: SourceType) -> Mapped:
    size = max(1, max(map(_utf8, t.labels))) if t.labels else ENUM_ELEMENT_MAX
    return Mapped(f"VARCHAR({size})", f"VARCHAR({size})", "string")


def _mysql_set(t: SourceType) -> Mapped:
    if t.labels:
        size = max(1, sum(map(_utf8, t.labels)) + len(t.labels) - 1)
    else:
        size = min(SET_MEMBERS_MAX * ENUM_ELEMENT_MAX + SET_MEMBERS_MAX - 1, VARCHAR_MAX)
    return Mapped(f"VARCHAR({size})", f"VARCHAR({size})", "string")


def _binary(t: SourceType) -> Mapped:
    return Mapped(f"VARBYTE({VARBYTE_MAX})", f"VARBYTE({VARBYTE_MAX})", "binary")


_JSON = _fixed("SUPER", "string", staging=f"VARCHAR({VARCHAR_MAX})", cast="JSON_PARSE({})")
_TEXT = _fixed(f"VARCHAR({VARCHAR_MAX})", "string")

BOTH: tuple[Family, ...] = ("postgres", "mysql")
PG: tuple[Family, ...] = ("postgres",)
MY: tuple[Family, ...] = ("mysql",)

MAPPING: list[tuple[tuple[Family, ...], tuple[str, ...], object, str]] = [
    (BOTH, ("smallint", "int2"), _int("SMALLINT", "smallint", "INTEGER", "int"), "SMALLINT (unsigned: INTEGER)"),
    (MY, ("tinyint",), _int("SMALLINT", "smallint", "SMALLINT", "smallint"), "SMALLINT"),
    (BOTH, ("integer", "int", "int4", "serial", "mediumint"), _int("INTEGER", "int", "BIGINT", "bigint"),
     "INTEGER (unsigned: BIGINT)"),
    (BOTH, ("bigint", "int8", "bigserial"), _bigint, "BIGINT (unsigned: DECIMAL(20,0))"),
    (BOTH, ("numeric", "decimal"), _decimal,
     "DECIMAL(p,s); no precision: DECIMAL(28,6) as DMS lands it; p > 38: VARCHAR"),
    (PG, ("real", "float4"), _fixed("REAL", "float"), "REAL"),
    # Postgres FLOAT is FLOAT8 unless FLOAT(p) with p <= 24 (PostgreSQL documentation, datatype-numeric,
    # "Floating-Point Types").
    (PG, ("float",), lambda t: Mapped("REAL", "REAL", "float") if t.args and t.args[0] <= 24
     else Mapped("DOUBLE PRECISION", "DOUBLE PRECISION", "double"), "FLOAT(p <= 24): REAL; else DOUBLE PRECISION"),
    # MySQL FLOAT lands as DMS's REAL8 ("REAL(DOUBLE)", with the double range) and REAL is DOUBLE
    # (AWS DMS User Guide, CHAP_Source.MySQL, "Source data types"); REAL8 is a Parquet DOUBLE on S3
    # (CHAP_Target.S3, "Parquet data types"), which COPY loads into DOUBLE PRECISION only.
    (MY, ("float", "real"), _fixed("DOUBLE PRECISION", "double"),
     "DOUBLE PRECISION (DMS lands MySQL FLOAT as REAL8, a Parquet DOUBLE)"),
    (BOTH, ("double precision", "float8", "double"), _fixed("DOUBLE PRECISION", "double"), "DOUBLE PRECISION"),
    # Postgres BOOLEAN lands as the string true/false (CHAP_Source.PostgreSQL: "CHAR (5)"); MySQL's
    # BOOLEAN is TINYINT(1) and lands as an integer: both become BOOLEAN in the merge.
    (PG, ("boolean", "bool"), _fixed("BOOLEAN", "string", staging="VARCHAR(5)", cast="CASE LOWER({}) WHEN 'true' THEN TRUE WHEN 't' THEN TRUE WHEN 'false' THEN FALSE WHEN 'f' THEN FALSE END"),
     "BOOLEAN (landed as the text true/false)"),
    (MY, ("boolean", "bool"), _fixed("BOOLEAN", "smallint", staging="SMALLINT", cast="({} <> 0)"),
     "BOOLEAN (landed as TINYINT(1))"),
    (BOTH, ("varchar", "character varying", "char", "character", "bpchar"), _chars,
     "VARCHAR(4 x n bytes, max 65535): sources count characters, Redshift counts bytes"),
    (BOTH, ("text", "citext", "tinytext", "mediumtext", "longtext"), _TEXT, "VARCHAR(65535)"),
    (PG, ("uuid",), _fixed("VARCHAR(36)", "string"), "VARCHAR(36)"),
    (BOTH, ("date",), _fixed("DATE", "date"), "DATE"),
    (PG, ("timestamp", "timestamp without time zone"), _fixed("TIMESTAMP", "timestamp"), "TIMESTAMP"),
    (PG, ("timestamptz", "timestamp with time zone"), _fixed("TIMESTAMPTZ", "timestamp"), "TIMESTAMPTZ (UTC)"),
    (MY, ("datetime",), _fixed("TIMESTAMP", "timestamp"), "TIMESTAMP"),
    (MY, ("timestamp",), _fixed("TIMESTAMPTZ", "timestamp"), "TIMESTAMPTZ (MySQL stores UTC)"),
    # Postgres TIME lands as Parquet TIME (CHAP_Target.S3), which Redshift COPY does not load into
    # VARCHAR: DMS is told to land it as text, as it lands MySQL's.
    (PG, ("time", "time without time zone"), _fixed("VARCHAR(32)", "string", dms_type=("string", 32)),
     "VARCHAR(32) (landed as text by a DMS change-data-type)"),
    (MY, ("time",), _fixed("VARCHAR(32)", "string"), "VARCHAR(32) (DMS lands MySQL time as text)"),
    # "INTERVAL: STRING (128)" (CHAP_Source.PostgreSQL, "Source data types for PostgreSQL"): Postgres prints
    # legal intervals of 67 characters ('-178000000 years -11 mons -2147483648 days -2562047788:00:54.775807').
    (PG, ("interval",), _fixed("VARCHAR(128)", "string"), "VARCHAR(128) (DMS: STRING(128))"),
    (BOTH, ("json", "jsonb"), _JSON, "SUPER via JSON_PARSE (landed as text)"),
    (PG, ("bytea",), _binary, "VARBYTE(1024000)"),
    (MY, ("blob", "tinyblob", "mediumblob", "longblob", "binary", "varbinary"), _binary, "VARBYTE(1024000)"),
    (PG, ("enum",), _fixed("VARCHAR(256)", "string"), "VARCHAR(256)"),
    (MY, ("enum",), _mysql_enum, "VARCHAR(UTF-8 bytes of the longest label, a ? counted as 4; no labels: 1020) "
     "(DMS: WSTRING of the longest value)"),
    (MY, ("set",), _mysql_set, "VARCHAR(UTF-8 bytes of all labels and the commas between them, a ? counted as 4; "
     "no labels: 65343) (DMS: WSTRING of the total length)"),
    (MY, ("year",), _fixed("SMALLINT", "smallint"), "SMALLINT"),
    # Types beyond the everyday ones, as DMS lands them (CHAP_Source.PostgreSQL and CHAP_Source.MySQL,
    # "Source data types"): strings, MONEY as NUMERIC(38,4), MySQL spatial types as BLOB (their bytes).
    (PG, ("money",), _fixed("DECIMAL(38,4)", "decimal(38,4)"), "DECIMAL(38,4) (DMS lands MONEY as NUMERIC(38,4))"),
    (PG, ("inet", "cidr"), _fixed("VARCHAR(50)", "string"), "VARCHAR(50) (DMS: STRING(50))"),
    (PG, ("macaddr",), _fixed("VARCHAR(18)", "string"), "VARCHAR(18) (DMS: STRING(18))"),
    (PG, ("bit", "bit varying", "varbit"), _chars, "VARCHAR(4 x n) of 0s and 1s (DMS: STRING(n))"),
    (PG, ("timetz", "time with time zone"), _fixed("VARCHAR(32)", "string", dms_type=("string", 32)),
     "VARCHAR(32) (landed as text by a DMS change-data-type, as time)"),
    (PG, ("tsvector", "tsquery", "xml", "hstore", "path", "polygon"), _TEXT,
     "VARCHAR(65535) (DMS lands these as CLOB text)"),
    # A composite (row) type: "COMPOSITE: NCLOB" (CHAP_Source.PostgreSQL, "Source data types for PostgreSQL"),
    # which the S3 target writes as a Parquet STRING (CHAP_Target.S3, Parquet data types): its text form,
    # e.g. (Main St,12). `dwctl import` spells any composite-typed column `composite`. A LOB: DMS can only
    # drop it (no land_as_text: see _LOBS).
    (PG, ("composite",), _TEXT, "VARCHAR(65535) (DMS lands COMPOSITE as NCLOB text, e.g. (Main St,12))"),
    (PG, ("point", "line", "lseg", "box", "circle", "int4range", "int8range", "numrange"),
     _fixed("VARCHAR(255)", "string"), "VARCHAR(255) (DMS: STRING(255))"),
    (MY, ("geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
          "geometrycollection"), _binary, "VARBYTE(1024000) (DMS lands spatial values as BLOB bytes)"),
    (MY, ("bit",), lambda t: Mapped("BOOLEAN", "BOOLEAN", "boolean") if (t.args or (1,))[0] == 1
     else _binary(t), "bit(1): BOOLEAN (DMS: BOOLEAN); bit(n): VARBYTE (DMS: BYTES)"),
]

# Source types DMS carries as LOBs (CLOB, NCLOB, BLOB in the "Source data types" tables of
# CHAP_Source.PostgreSQL and CHAP_Source.MySQL). "The only supported transformation for columns
# that are mapped to BLOB/CLOB data types is to drop the column on the target" (CHAP_Tasks.
# CustomizingTasks.TableMapping.SelectionTransformation.Transformations, Limitations): DMS cannot
# rename them, so they land under their source names. Listed generously: a type wrongly listed
# only keeps its source name in the landed file, which every layer then reads consistently.
_LOBS: dict[Family, frozenset[str]] = {
    "postgres": frozenset({"text", "citext", "bytea", "json", "jsonb", "xml", "tsvector", "tsquery", "hstore",
                           "path", "polygon", "composite"}),
    "mysql": frozenset({"longtext", "mediumtext", "longblob", "mediumblob", "json", "geometry", "point",
                        "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
                        "geometrycollection"}),
}


def dms_lob(text: str, family: Family) -> bool:
    """True when DMS carries a column of this source type as a LOB (arrays too, on Postgres)."""
    try:
        st = parse_source_type(text, family)
    except ValueError:
        return True
    return st.array or st.base in _LOBS[family] or (family == "postgres" and st.base == "varchar" and not st.args)

ARRAY_NOTE = ("any Postgres array (type[]): VARCHAR(65535) holding the array's text form, e.g. {1,2} "
              "(DMS lands arrays as text, which is not JSON, so JSON_PARSE would fail)")
_ARRAY = _TEXT

_TYPE = re.compile(
    r"^(?P<base>[a-z][a-z0-9]*(?: [a-z][a-z0-9]*)*?)"
    r"(?:\s*\((?P<args>[^()]*)\))?"
    r"(?P<tz> with(?:out)? time zone)?"
    r"(?P<unsigned> unsigned)?"
    r"(?P<array>(?:\[\])+)?$"
)
# An enum's or set's labels as MySQL's COLUMN_TYPE spells them: quoted, a quote doubled, a backslash escaped.
_LABEL = r"'(?:[^'\\]|''|\\.)*'"
_ENUM_ARGS = re.compile(rf"^{_LABEL}(?:\s*,\s*{_LABEL})*$", re.S)
_ENUM_TYPE = re.compile(r"^\s*(enum|set)\s*\((.*)\)\s*$", re.S | re.IGNORECASE)
_ESCAPES = {"0": "\0", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a", "b": "\b"}


def enum_labels(args: str) -> tuple[str, ...]:
    """The values of `'a','it''s','back\\\\slash'` as the source stores them."""
    def unescape(quoted: str) -> str:
        return re.sub(r"''|\\(.)", lambda m: "'" if m[0] == "''" else _ESCAPES.get(m[1], m[1]), quoted[1:-1],
                      flags=re.S)
    return tuple(unescape(m) for m in re.findall(_LABEL, args, re.S))


@lru_cache(maxsize=4096)
def parse_source_type(text: str, family: Family) -> SourceType:
    """Parse and check a source type; raise ValueError naming what is wrong."""
    listed = _ENUM_TYPE.match(text)
    if listed:  # the labels as written: case and blanks count in their length
        if not _ENUM_ARGS.match(listed[2].strip()):
            raise ValueError(f"{text!r}: enum/set labels must be quoted 'a','b'")
        st = SourceType(listed[1].lower(), labels=enum_labels(listed[2]))
        if _rule(st, family) is None:
            raise ValueError(f"{text!r} is not a known {family} type")
        return st
    match = _TYPE.match(" ".join(text.strip().lower().split()))
    if not match:
        raise ValueError(f"{text!r} is not a source type dwctl can read")
    base = match["base"] + (match["tz"] or "")
    args_text = match["args"]
    args: tuple[int, ...] = ()
    if args_text is not None and base in ("enum", "set"):
        if not _ENUM_ARGS.match(args_text.strip()):
            raise ValueError(f"{text!r}: enum/set labels must be quoted 'a','b'")
    elif args_text is not None:
        parts = [p.strip() for p in args_text.split(",")]
        if not all(p.isdigit() for p in parts) or len(parts) > 2:
            raise ValueError(f"{text!r}: type arguments must be one or two whole numbers")
        args = tuple(int(p) for p in parts)
    st = SourceType(base, args, bool(match["unsigned"]), bool(match["array"]))
    if st.array and family != "postgres":
        raise ValueError(f"{text!r}: arrays exist only in Postgres")
    if not st.array and _rule(st, family) is None:
        known = ", ".join(sorted({n for fams, names, _, _ in MAPPING if family in fams for n in names}))
        raise ValueError(f"{text!r} is not a known {family} type (known: {known}; arrays as type[])")
    return st


def _rule(st: SourceType, family: Family):
    for families, names, rule, _ in MAPPING:
        if family in families and st.base in names:
            return rule
    return None


@lru_cache(maxsize=4096)
def map_type(text: str, family: Family) -> Mapped:
    """The Redshift, staging and Glue types for a source column type."""
    st = parse_source_type(text, family)
    if st.array:
        return _ARRAY(st)
    return _rule(st, family)(st)


def as_text(length: int) -> Mapped:
    """A column the spec lands as text (Column.land_as_text): DMS casts it to a string of `length`
    characters (change-data-type), Redshift holds it as VARCHAR of 4 bytes a character."""
    size = min(length * BYTES_PER_CHAR, VARCHAR_MAX)
    return Mapped(f"VARCHAR({size})", f"VARCHAR({size})", "string", dms_type=("string", length))


def mapping_table() -> list[tuple[str, str, str]]:
    """(engines, source types, Redshift type) rows for the spec reference page."""
    rows = [("/".join(f), ", ".join(names), note) for f, names, _, note in MAPPING]
    rows.append(("postgres", "type[]", ARRAY_NOTE))
    return rows
