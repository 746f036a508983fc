"""Read tables from a source catalog into one neutral model, spelling types as the spec does.

The spelling rule: whatever the catalog says is rewritten into a string that
`dwctl.spec.type_mapping.parse_source_type` accepts, so an imported spec validates and renders with
the documented mapping. Anything that mapping does not know keeps `type=None` and its
native spelling, so `import` can refuse the table and `doctor` can warn about it.

Decisions (README "dwctl import"):
- Postgres `character varying(n)` -> `varchar(n)`, `timestamp with time zone` -> `timestamptz`,
  arrays -> `<element>[]`, user enum types -> `enum`, composite types -> `composite`, domains -> their
  base type (through domains over domains, arrays of domains too).
- MySQL integer display widths and ZEROFILL are dropped (`int(10) unsigned` -> `int unsigned`);
  `tinyint(1)` stays `tinyint`: MySQL 8.0.19+ no longer reports the width, so treating it as a
  boolean would make the spec depend on the server version, and the column may hold 2..127.
  `enum('a','b')` / `set(...)` keep their labels as COLUMN_TYPE spells them (they size the column).
  MariaDB JSON (LONGTEXT with a json_valid check) -> `json`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dwctl.source.connection import Connection, Family
from dwctl.spec.naming import SOURCE_NAME
from dwctl.spec.type_mapping import parse_source_type

INTEGERS = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "int2", "int4", "int8",
            "serial", "bigserial"}


@dataclass(frozen=True)
class SourceColumn:
    name: str
    native: str  # as the catalog spells it, for messages
    type: str | None  # spec spelling; None when the documented mapping has no row for it
    nullable: bool
    # The column's DEFAULT: `default` the constant (str, int or bool; None: no constant), `default_expr`
    # the catalog's text when it is an expression instead (now(), nextval(...), uuid()): see read_defaults.
    default: str | int | bool | None = None
    default_expr: str | None = None


@dataclass
class SourceTable:
    schema: str
    name: str
    columns: list[SourceColumn] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    # Postgres: the leaf partitions / inheritance children whose changes belong to this table (and
    # the table itself first when it can hold rows of its own: an inheritance parent)
    partitions: list[str] = field(default_factory=list)
    # Postgres: each column's attnum, and the attnums of the table's dropped columns (pg_attribute keeps a
    # dropped column's slot): what tells a renamed column from a dropped one and an added one (renames.py)
    positions: dict[str, int] = field(default_factory=dict)
    dropped: list[int] = field(default_factory=list)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> SourceColumn | None:
        return next((c for c in self.columns if c.name == name), None)

    def problem(self) -> str | None:
        """Why this table cannot go into a spec as it is, or None. Names need no check: the spec
        keeps source names as they are beside derived targets; a column of a type outside the
        mapping is imported excluded (see `excluded`), unless it is part of the key."""
        names = [("table", self.name), *(("column", c.name) for c in self.columns)]
        for kind, name in names:
            if not re.match(SOURCE_NAME, name):
                return (f"the {kind} name {name!r} holds a quote, backtick, bracket, backslash, control character "
                        "or leading/trailing blank, which dwctl does not pass to DMS")
        if not self.primary_key:
            return ("no primary key; the spec requires one because CDC cannot apply updates and deletes "
                    f"without it (e.g. ALTER TABLE {self.qualified} ADD PRIMARY KEY (...))")
        keyed = [f"{c.name} ({c.native})" for c in self.columns if c.type is None and c.name in self.primary_key]
        if keyed:
            return f"primary key column(s) of a type outside dwctl's documented mapping: {', '.join(keyed)}"
        return None

    def excluded(self) -> dict[str, str]:
        """Columns imported with exclude: true, and why: types DMS or Redshift cannot carry."""
        return {c.name: f"{c.native} is outside dwctl's type mapping (DMS or Redshift cannot carry it; "
                        "land_as_text: <max characters> carries it as text instead)"
                for c in self.columns if c.type is None}


# --- reading -------------------------------------------------------------------------

# A domain resolves to the type under it, through domains over domains, for a column and for an array
# of a domain alike (README "dwctl import": domains -> their base type); its NOT NULL at any level makes
# the column NOT NULL, its length (a domain over varchar(10)) is the column's.
PG_COLUMNS = """
WITH RECURSIVE dom(oid, base, typmod, not_null, depth) AS (
  SELECT t.oid, t.typbasetype, t.typtypmod, t.typnotnull, 1 FROM pg_type t WHERE t.typtype = 'd'
  UNION ALL
  SELECT d.oid, b.typbasetype, CASE WHEN d.typmod >= 0 THEN d.typmod ELSE b.typtypmod END,
         d.not_null OR b.typnotnull, d.depth + 1
  FROM dom d JOIN pg_type b ON b.oid = d.base AND b.typtype = 'd'
), resolved AS (
  SELECT DISTINCT ON (oid) oid, base, typmod, not_null FROM dom ORDER BY oid, depth DESC
)
SELECT c.relname, a.attname, a.attnotnull OR (t.typtype = 'd' AND r.not_null),
       format_type(b.oid, CASE WHEN r.oid IS NULL THEN a.atttypmod ELSE r.typmod END)
         || CASE WHEN te.oid IS NULL THEN '' ELSE '[]' END,
       b.typtype, CASE WHEN te.oid IS NULL THEN e.typtype ELSE b.typtype END
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type te ON t.typcategory = 'A' AND te.oid = t.typelem AND te.typtype = 'd'
LEFT JOIN resolved r ON r.oid = COALESCE(te.oid, CASE WHEN t.typtype = 'd' THEN t.oid END)
JOIN pg_type b ON b.oid = COALESCE(r.base, t.oid)
LEFT JOIN pg_type e ON e.oid = b.typelem AND b.typcategory = 'A'
WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname, a.attnum
"""
PG_KEYS = """
SELECT c.relname, a.attname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE i.indisprimary AND n.nspname = %s
ORDER BY c.relname, k.ord
"""
MY_COLUMNS = """
SELECT c.TABLE_NAME, c.COLUMN_NAME, c.IS_NULLABLE, c.DATA_TYPE, c.COLUMN_TYPE
FROM information_schema.COLUMNS c
JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
WHERE c.TABLE_SCHEMA = %s AND t.TABLE_TYPE = 'BASE TABLE'
ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION
"""
MY_KEYS = """
SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = %s AND CONSTRAINT_NAME = 'PRIMARY'
ORDER BY TABLE_NAME, ORDINAL_POSITION
"""
# MariaDB spells JSON as LONGTEXT plus a json_valid() check; MySQL has a real JSON type.
MARIADB_JSON = "SELECT TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s"


def read_tables(conn: Connection, schema: str) -> dict[str, SourceTable]:
    """Every base table of one schema (MySQL: database), by name, columns in ordinal order."""
    tables: dict[str, SourceTable] = {}
    if conn.family == "postgres":
        for table, column, notnull, formatted, typtype, elem_typtype in conn.rows(PG_COLUMNS, (schema,)):
            spelled = pg_type(formatted, typtype, elem_typtype)
            tables.setdefault(table, SourceTable(schema, table)).columns.append(
                SourceColumn(column, formatted, spelled, not notnull))
        keys = conn.rows(PG_KEYS, (schema,))
        _pg_partitions(conn, schema, tables)
        _pg_positions(conn, schema, tables)
    else:
        json_columns = _mariadb_json_columns(conn, schema)
        for table, column, is_nullable, data_type, column_type in conn.rows(MY_COLUMNS, (schema,)):
            table, column = _text(table), _text(column)
            spelled = mysql_type(_text(column_type), _text(data_type), (table, column) in json_columns)
            tables.setdefault(table, SourceTable(schema, table)).columns.append(
                SourceColumn(column, _text(column_type), spelled, _text(is_nullable) == "YES"))
        keys = conn.rows(MY_KEYS, (schema,))
    for table, column in keys:
        if _text(table) in tables:
            tables[_text(table)].primary_key.append(_text(column))
    _read_defaults(conn, schema, tables)
    return tables


# --- column defaults (a source ADD COLUMN ... DEFAULT gives existing rows the default; DMS sends no
# change for them, so the spec carries the constant: dwctl/spec/column_default.py) ----------------
# Postgres: information_schema.columns.column_default, "Default expression of the column" (PostgreSQL
# documentation, The Information Schema, columns): a constant comes back with its cast ('a'::text,
# '-1'::integer, 42, true); anything else is an expression. MySQL/MariaDB: COLUMN_DEFAULT (MySQL
# Reference Manual, The INFORMATION_SCHEMA COLUMNS Table: "The default value for the column ... NULL
# if the column has an explicit default of NULL, or if the column definition includes no DEFAULT
# clause"; EXTRA says DEFAULT_GENERATED for an expression default). MariaDB 10.2.7+ quotes literals
# and spells a missing default 'NULL' (MariaDB Knowledge Base, Information Schema COLUMNS Table).
PG_DEFAULTS = """
SELECT table_name, column_name, column_default FROM information_schema.columns
WHERE table_schema = %s AND column_default IS NOT NULL
"""
MY_DEFAULTS = """
SELECT TABLE_NAME, COLUMN_NAME, COLUMN_DEFAULT, EXTRA FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = %s AND COLUMN_DEFAULT IS NOT NULL
"""
_PG_CAST = r"""(?:::(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_ .]*?)(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])?)"""
_PG_CONSTANT = re.compile(r"^\(*(?P<literal>'(?:[^']|'')*'|-?\d+(?:\.\d+)?|true|false|NULL)\)*" + _PG_CAST + r"*\)*$",
                          re.IGNORECASE)
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")


def _literal(token: str, quoted_string: bool) -> str | int | bool | None:
    if quoted_string:
        return token
    if token.lower() in ("true", "false"):
        return token.lower() == "true"
    if re.fullmatch(r"-?\d+", token):
        return int(token)
    return token  # a decimal, kept exact as text


def pg_default(text: str) -> tuple[bool, str | int | bool | None]:
    """(True, the constant) for a constant default as Postgres prints it ('a''b'::character varying,
    '-1'::integer, (-5), 1.5, true, NULL::text); (False, None) for an expression."""
    m = _PG_CONSTANT.match(text.strip())
    if m is None:
        return False, None
    token = m["literal"]
    if token.upper() == "NULL":
        return True, None
    if token.startswith("'"):
        inner = token[1:-1].replace("''", "'")
        cast = text.strip()[m.end("literal"):].lower()
        if _NUMBER.match(inner) and re.search(r"::(integer|bigint|smallint|numeric|real|double)", cast):
            return True, _literal(inner, False)
        if inner in ("t", "f", "true", "false") and "::boolean" in cast:
            return True, inner.startswith("t")
        return True, inner
    return True, _literal(token, False)


def my_default(text: str, extra: str, mariadb: bool) -> tuple[bool, str | int | bool | None]:
    """The same for MySQL/MariaDB's COLUMN_DEFAULT (and EXTRA)."""
    if "DEFAULT_GENERATED" in extra.upper():
        return False, None
    if mariadb:
        if text == "NULL":
            return True, None
        if len(text) >= 2 and text[0] == text[-1] == "'":
            return True, text[1:-1].replace("''", "'").replace("\\'", "'").replace("\\\\", "\\")
        if _NUMBER.match(text):
            return True, _literal(text, False)
        return False, None  # current_timestamp(), uuid(), an expression in parentheses
    if text.upper() in ("CURRENT_TIMESTAMP", "NOW()", "LOCALTIME", "LOCALTIMESTAMP") or \
            text.upper().startswith("CURRENT_TIMESTAMP("):
        return False, None
    return True, _literal(text, False) if _NUMBER.match(text) else text


def _read_defaults(conn: Connection, schema: str, tables: dict[str, SourceTable]) -> None:
    """Each column's default, as a constant or as the expression it is."""
    import dataclasses

    if conn.family == "postgres":
        rows = [(t, c, d, "") for t, c, d in conn.rows(PG_DEFAULTS, (schema,))]
        mariadb = False
    else:
        rows = conn.rows(MY_DEFAULTS, (schema,))
        version = conn.try_rows("SELECT VERSION()") or [("",)]
        mariadb = "mariadb" in _text(version[0][0]).lower()
    found = {}
    for table, column, default, extra in rows:
        text = _text(default)
        constant, value = pg_default(text) if conn.family == "postgres" else my_default(text, _text(extra or ""), mariadb)
        found[(_text(table), _text(column))] = (value, None) if constant else (None, text)
    for name, table in tables.items():
        table.columns = [dataclasses.replace(c, default=found[(name, c.name)][0], default_expr=found[(name, c.name)][1])
                         if (name, c.name) in found else c for c in table.columns]


# A column's attnum, which ALTER TABLE ... RENAME COLUMN keeps; a dropped column keeps its row in
# pg_attribute with attisdropped true (PostgreSQL documentation, pg_attribute: "This column has been dropped
# and is no longer valid. A dropped column is still physically present in the table"), and a column added
# later is numbered after it (tests/source/test_renames.py checks that on a real server).
PG_POSITIONS = """
SELECT c.relname, a.attname, a.attnum, a.attisdropped
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
ORDER BY c.relname, a.attnum
"""


def _pg_positions(conn: Connection, schema: str, tables: dict[str, SourceTable]) -> None:
    """Each table's column attnums and dropped attnums."""
    for table, column, attnum, dropped in conn.rows(PG_POSITIONS, (schema,)) or []:
        found = tables.get(_text(table))
        if found is None:
            continue
        if dropped:
            found.dropped.append(int(attnum))
        else:
            found.positions[_text(column)] = int(attnum)


# Every leaf under each top-level parent of this schema, through pg_inherits (declarative partitions
# and INHERITS children alike; sub-partitioned tables are walked down to their leaves).
PG_PARTITIONS = """
WITH RECURSIVE tree(root, child) AS (
  SELECT i.inhparent, i.inhrelid FROM pg_inherits i
  WHERE NOT EXISTS (SELECT 1 FROM pg_inherits up WHERE up.inhrelid = i.inhparent)
  UNION ALL
  SELECT t.root, i.inhrelid FROM tree t JOIN pg_inherits i ON i.inhparent = t.child
)
SELECT p.relname, p.relkind, c.relname, c.relkind
FROM tree
JOIN pg_class p ON p.oid = tree.root JOIN pg_namespace pn ON pn.oid = p.relnamespace
JOIN pg_class c ON c.oid = tree.child JOIN pg_namespace cn ON cn.oid = c.relnamespace
WHERE pn.nspname = %s AND cn.nspname = pn.nspname
ORDER BY p.relname, c.relname
"""


def _pg_partitions(conn: Connection, schema: str, tables: dict[str, SourceTable]) -> None:
    """Fill each parent's partitions; drop inheritance children from the table list (they are read
    as part of their parent). A partitioned parent ('p') holds no rows and is not selected itself
    (DMS would load its rows twice); an inheritance parent ('r') may hold rows and is listed first."""
    for parent, parent_kind, child, child_kind in conn.rows(PG_PARTITIONS, (schema,)) or []:
        parent, child = _text(parent), _text(child)
        tables.pop(child, None)
        if parent not in tables or _text(child_kind) == "p":
            continue
        parts = tables[parent].partitions
        if _text(parent_kind) == "r" and not parts:
            parts.append(parent)
        parts.append(child)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)


def _mariadb_json_columns(conn: Connection, schema: str) -> set[tuple[str, str]]:
    rows = conn.try_rows(MARIADB_JSON, (schema,)) or []
    found = set()
    for table, clause in rows:
        match = re.fullmatch(r"\s*json_valid\(`([^`]+)`\)\s*", _text(clause), re.IGNORECASE)
        if match:
            found.add((_text(table), match[1]))
    return found


# --- spelling ------------------------------------------------------------------------

_PG_REWRITES = [
    (re.compile(r"^character varying"), "varchar"),
    (re.compile(r"^character\b"), "char"),
    (re.compile(r"^timestamp(\(\d+\))? with time zone$"), r"timestamptz\1"),
    (re.compile(r"^timestamp(\(\d+\))? without time zone$"), r"timestamp\1"),
    (re.compile(r"^time(\(\d+\))? without time zone$"), r"time\1"),
    (re.compile(r"^time(\(\d+\))? with time zone$"), r"timetz\1"),
    (re.compile(r"^interval\b.*?(\(\d+\))?$"), r"interval\1"),
]


def pg_type(formatted: str, typtype: str, elem_typtype: str | None) -> str | None:
    """format_type() output -> spec spelling, or None if the documented mapping has no row for it."""
    text = formatted
    array = text.endswith("[]")
    if array:
        text = text[:-2]
        typtype = elem_typtype or typtype
    if typtype == "e":
        text = "enum"
    elif typtype == "c":  # a composite (row) type: DMS lands it as NCLOB text (type_mapping, "composite")
        text = "composite"
    else:
        text = re.sub(r'^(?:"[^"]*"|[A-Za-z_][A-Za-z0-9_$]*)\.', "", text)  # drop a schema qualifier
        for pattern, replacement in _PG_REWRITES:
            text = pattern.sub(replacement, text)
    return _accepted(text, "postgres", array)


def mysql_type(column_type: str, data_type: str, is_json: bool = False) -> str | None:
    """information_schema COLUMN_TYPE -> spec spelling, or None if the documented mapping has no row for it."""
    data_type = data_type.lower()
    if is_json:
        return "json"
    if data_type in ("enum", "set"):  # with its labels, which size its column (type_mapping._mysql_enum)
        return _accepted(column_type.strip(), "mysql", False) or data_type
    text = re.sub(r"\s+zerofill\b", "", column_type.lower()).strip()
    if data_type in INTEGERS:
        text = re.sub(r"^(\w+)\(\d+\)", r"\1", text)
    return _accepted(text, "mysql", False)


def _accepted(text: str, family: Family, array: bool) -> str | None:
    try:
        parse_source_type(text, family)
    except ValueError:
        return None
    return text + "[]" if array else text


# --- comparing -----------------------------------------------------------------------

_ALIASES: dict[Family, dict[str, str]] = {
    "postgres": {"int": "integer", "int4": "integer", "serial": "integer", "int2": "smallint", "int8": "bigint",
                 "bigserial": "bigint", "float4": "real", "float8": "double precision", "bool": "boolean",
                 "character varying": "varchar", "character": "char", "bpchar": "char", "decimal": "numeric",
                 "timestamp without time zone": "timestamp", "timestamp with time zone": "timestamptz",
                 "time without time zone": "time"},
    "mysql": {"integer": "int", "numeric": "decimal", "double precision": "double", "real": "double",
              "bool": "tinyint", "boolean": "tinyint", "character varying": "varchar", "character": "char"},
}
_DEFAULT_ARGS: dict[Family, dict[str, tuple[int, ...]]] = {
    "postgres": {"char": (1,), "timestamp": (6,), "timestamptz": (6,), "time": (6,), "interval": (6,)},
    "mysql": {"char": (1,), "binary": (1,), "decimal": (10, 0), "datetime": (0,), "timestamp": (0,), "time": (0,),
              "year": (4,)},
}


def canonical(text: str, family: Family) -> tuple:
    """A comparable form of a type spelling: aliases folded, integer widths and default arguments dropped."""
    st = parse_source_type(text, family)
    base = _ALIASES[family].get(st.base, st.base)
    args = () if base in INTEGERS else st.args
    if args == _DEFAULT_ARGS[family].get(base):
        args = ()
    return base, args, st.unsigned, st.array, st.labels or None


def same_type(a: str, b: str, family: Family) -> bool:
    """True when two spellings name the same source type (`int4` = `integer`, bare `enum` matches any enum)."""
    try:
        ca, cb = canonical(a, family), canonical(b, family)
    except ValueError:
        return a.strip().lower() == b.strip().lower()
    if None in (ca[4], cb[4]):
        return ca[:4] == cb[:4]
    return ca == cb


# --- what is not replicated ------------------------------------------------------------

@dataclass(frozen=True)
class Unreplicated:
    """A schema object that looks like a table but that dwctl does not replicate, and why (import and doctor say so)."""

    schema: str
    name: str
    kind: str  # "view", "foreign table", "system-versioned table", "partition", ...
    reason: str
    fix: str
    by_name_only: bool = False  # partitions: reported only when named (--tables, the spec), their parent carries them

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


PG_UNREPLICATED = """
SELECT c.relname, c.relkind, c.relispartition, p.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND c.relispartition
LEFT JOIN pg_class p ON p.oid = i.inhparent
WHERE n.nspname = %s AND (c.relkind IN ('v', 'm', 'f') OR c.relispartition)
ORDER BY c.relname
"""
MY_UNREPLICATED = """
SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES
WHERE TABLE_SCHEMA = %s AND TABLE_TYPE NOT IN ('BASE TABLE', 'TEMPORARY', 'LOCAL TEMPORARY')
ORDER BY TABLE_NAME
"""
_OUT = "take it out of the spec (or leave it out of --tables)"
# Logical decoding emits changes only for ordinary logged tables: views, materialized views and foreign
# tables have no changes of their own in the WAL (PostgreSQL docs, CREATE PUBLICATION: "Temporary tables,
# unlogged tables, foreign tables, materialized views, and regular views cannot be part of a publication";
# https://www.postgresql.org/docs/current/sql-createpublication.html). DMS reads views only in a full load
# with table-type view (https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Troubleshooting.html).
_PG_KINDS = {
    "v": ("view", "a view: logical decoding emits no changes for it, so CDC cannot follow it; "
                  "import the tables it reads instead"),
    "m": ("materialized view", "a materialized view: logical decoding emits no changes for it (REFRESH is not "
                               "replicated); import the tables it reads instead"),
    "f": ("foreign table", "a foreign table: its rows live on another server and logical decoding sees no "
                           "change to them; replicate it from the server that holds it"),
}
# https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Source.MySQL.html (Limitations): "Temporal data tables or
# system-versioned tables are not supported on MariaDB source ..."; "AWS DMS currently doesn't support views
# migration for MariaDB"; on MySQL a view has no rows of its own in the binlog either.
_MY_KINDS = {
    "VIEW": ("view", "a view: it has no changes of its own in the binlog and DMS does not migrate MariaDB views; "
                     "import the tables it reads instead", _OUT),
    "SYSTEM VERSIONED": ("system-versioned table", "a system-versioned table: DMS does not support them on "
                         "MariaDB sources", "ALTER TABLE ... REMOVE SYSTEM VERSIONING (this drops the row history), "
                         "or " + _OUT),
    "SEQUENCE": ("sequence", "a sequence, not a table", _OUT),
}


def read_unreplicated(conn: Connection, schema: str) -> dict[str, Unreplicated]:
    """Views, foreign tables, partitions, system-versioned tables ... of one schema, by name: what
    read_tables leaves out, so that nothing is left out silently."""
    found: dict[str, Unreplicated] = {}
    if conn.family == "postgres":
        for name, relkind, is_partition, parent in conn.rows(PG_UNREPLICATED, (schema,)):
            if is_partition:
                found[name] = Unreplicated(
                    schema, name, "partition", f"a partition of {schema}.{parent}: its rows are replicated "
                    f"with {parent}", f"list the partitioned table {schema}.{parent} instead", by_name_only=True)
            else:
                kind, reason = _PG_KINDS[relkind]
                found[name] = Unreplicated(schema, name, kind, reason, _OUT)
    else:
        for name, table_type in conn.rows(MY_UNREPLICATED, (schema,)):
            name, table_type = _text(name), _text(table_type).upper()
            kind, reason, fix = _MY_KINDS.get(table_type, (table_type.lower(), f"a {table_type.lower()}, "
                                                                            "not a base table", _OUT))
            found[name] = Unreplicated(schema, name, kind, reason, fix)
    return found
