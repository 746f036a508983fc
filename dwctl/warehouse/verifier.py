"""Run the rendered warehouse SQL on local DMS files in DuckDB, to prove the merge gives the source's state.

Nothing here re-implements the load or the merge. The spec is rendered in memory, and a run
is the load job's own `run` (dwctl/warehouse/load_job.py, shipped as iac/glue_scripts/load_job.py)
reading the rendered iac/glue_scripts/load_job_config.json, with listing discovery, a folder as
the landing bucket (ETag: the MD5 of the file, as S3 gives for a single-part upload) and DuckDB
as the warehouse: each table's COPY and merge run in ONE transaction, as in the Data API batch.
The statements executed are those of sql/01, sql/02 and sql/03_merge_<table>.sql, transpiled
Redshift -> DuckDB by sqlglot with these documented rewrites, each the smallest DuckDB can run:

  COPY ... FORMAT PARQUET MANIFEST  -> INSERT INTO t (all columns) SELECT the same names FROM
                                       read_parquet(the manifest's files), after checking what
                                       Redshift COPY checks and DuckDB would not: each file's
                                       columns are the table's, in number and order (COPY maps
                                       Parquet columns by position), each Parquet type is one
                                       Redshift loads into the column's type, and no text is
                                       longer in bytes than its VARCHAR/CHAR
  COPY ... (cols) FORMAT CSV        -> INSERT INTO t (cols) SELECT FROM read_csv(the file)
  SUPER                             -> JSON (JSON_PARSE becomes json(), which also validates, of
                                       rs_json_parse, which refuses an object with a repeated
                                       attribute name unless SET json_parse_dedup_attributes ON came
                                       before in the batch, and then keeps the last: Redshift Database
                                       Developer Guide, super-configurations, "Parsing options for SUPER")
  VARBYTE(n)                        -> BLOB
  comparing and grouping text       -> without trailing spaces, as Redshift compares VARCHAR and CHAR
                                       (r_Character_types: "Trailing spaces in VARCHAR and CHAR values
                                       are treated as semantically insignificant when values are
                                       compared"): each side of = <> < <= > >= and IN, each PARTITION BY
                                       expression and COUNT(DISTINCT ...) goes through rs_text (RTRIM for
                                       VARCHAR, nothing for other types), and SELECT DISTINCT keeps one row
                                       per trimmed value (DISTINCT ON; which of 'k' and 'k ' is kept is
                                       not said, so either may be)
  INSERT / UPDATE of text           -> as long in bytes as the column's VARCHAR(n) or CHAR(n), as
                                       Redshift stores it (r_Character_types; see fit_lengths)
  DISTKEY / SORTKEY / DISTSTYLE     -> dropped (physical layout only)
  column types                      -> DuckDB keeps no VARCHAR length: each column created or added
                                       carries its Redshift type as its DuckDB comment, and the
                                       catalog view SVV_COLUMNS is a DuckDB view that reads them
  ALTER COLUMN ... TYPE             -> only a VARCHAR made longer, on no key column, no column with
                                       a default and outside a transaction block, as Redshift
                                       allows (r_ALTER_TABLE); the new length goes to the comment
                                       (DuckDB's VARCHAR has none)
  DISTKEY / SORTKEY of a table      -> recorded in the table verify_keys (CREATE TABLE, ALTER DISTKEY,
                                       ALTER DISTSTYLE, ALTER SORTKEY keep it; AUTO keeps the key the
                                       table has, as Redshift does), so DROP COLUMN of a key is
                                       refused as Redshift refuses it (r_ALTER_TABLE: "You can't drop a
                                       column that is the distribution key (DISTKEY) or a sort key
                                       (SORTKEY) of the table"); SVV_REDSHIFT_COLUMNS is a view of it
  grants                            -> DuckDB has none: SVV_RELATION_PRIVILEGES and
                                       SVV_COLUMN_PRIVILEGES are tables here (a test grants by
                                       inserting a row); GRANT inserts its row, DROP TABLE deletes
                                       the table's rows and DROP COLUMN the column's, RENAME COLUMN
                                       renames them, as Redshift's grants go with the object

Anything else sqlglot cannot express in DuckDB is an error, never silently dropped.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from dwctl.errors import ToolError, UsageError
from dwctl.spec.model import HISTORY_SUFFIX

JOB_SCRIPT = "iac/glue_scripts/load_job.py"
JOB_CONFIG = "iac/glue_scripts/load_job_config.json"
VERIFY_BUCKET = "dwctl-verify"  # the bucket name in the manifests the verifier writes
VERIFY_ROLE = "arn:aws:iam::000000000000:role/dwctl-verify"


# --- the landed files on disk -----------------------------------------------------------------
@dataclass(frozen=True)
class LocalLanding:
    """A folder standing in for the landing bucket: DIR is the bucket root, or the landing prefix itself."""

    root: Path
    key_prefix: str  # what DIR stands for in S3 keys: "" (bucket root) or "<landing.prefix>/"

    @classmethod
    def at(cls, data_dir: Path, landing_prefix: str, schemas: set[str]) -> "LocalLanding":
        if not data_dir.is_dir():
            raise UsageError(f"{data_dir}: no such folder (pass --data with the landed DMS files)")
        if (data_dir / landing_prefix).is_dir():
            return cls(data_dir, "")
        if any((data_dir / schema).is_dir() for schema in schemas):
            return cls(data_dir, landing_prefix.rstrip("/") + "/")
        raise UsageError(f"{data_dir}: expected the bucket root (holding {landing_prefix}/<schema>/<table>/) "
                         f"or the landing prefix (holding <schema>/<table>/); found neither")

    def path(self, key: str) -> Path:
        if not key.startswith(self.key_prefix):
            raise ToolError(f"{key}: not under {self.key_prefix or 'the bucket root'}")
        return self.root / key[len(self.key_prefix):]

    def list(self, prefix: str):
        """The job's storage interface: every object under prefix, as S3 ListObjectsV2 gives it."""
        import hashlib

        from dwctl.warehouse.load_job import Landed

        folder = self.path(prefix)
        if not folder.is_dir():
            return []
        found = []
        for dirpath, _, names in os.walk(folder):
            for name in names:
                full = Path(dirpath) / name
                key = self.key_prefix + full.relative_to(self.root).as_posix()
                found.append(Landed(key, full.stat().st_size, hashlib.md5(full.read_bytes()).hexdigest()))
        return sorted(found, key=lambda o: o.key)

    def resolve_url(self, url: str) -> Path:
        head = f"s3://{VERIFY_BUCKET}/"
        if not url.startswith(head):
            raise ToolError(f"{url}: manifest entry outside the verifier's bucket")
        return self.path(url[len(head):])


# --- Redshift -> DuckDB -----------------------------------------------------------------------
# Transpiled DML shared by every Transpiler in the process, keyed by (Transpiler.catalog(), SQL): parsing
# and generating a merge file's statements costs a few tenths of a second, and each Verifier (each test,
# each bench run) would otherwise pay it again for the same SQL on the same tables.
_SHARED: dict[tuple[str, str], list[str]] = {}
_SHARED_LIMIT = 20_000
_DML = re.compile(r"^\s*(?:--[^\n]*\n\s*)*(?:INSERT|UPDATE|DELETE|SELECT|WITH)\b", re.IGNORECASE)

class Transpiler:
    """Turns one Redshift statement into DuckDB statements (see the module docstring for the rewrites)."""

    def __init__(self, con, landing: LocalLanding, cache: dict[str, list[str]] | None = None,
                 declared: dict[tuple[str, str], list[tuple]] | None = None):
        """declared: (schema, table) -> [(column, Redshift type, name in the landed file)] of the
        staging tables COPY loads."""
        self.con, self.landing = con, landing
        # Statements without COPY transpile the same every run, until a statement changes a table's columns
        # (an INSERT or UPDATE checks the lengths of its target's columns as they are: see fit_lengths).
        self.cache = {} if cache is None else cache
        self.declared = declared or {}
        self.in_transaction = False  # DuckDBWarehouse.batch sets it: a Data API batch is one transaction
        con.execute(SVV_COLUMNS)
        con.execute(PRIVILEGES)
        con.execute(SVV_REDSHIFT_COLUMNS)
        con.execute(REDSHIFT_MACROS)
        _register_functions(con)

    def __call__(self, sql: str) -> list[str]:
        import sqlglot
        from sqlglot import exp
        from sqlglot.errors import ErrorLevel

        if sql in self.cache:
            return self.cache[sql]
        shared = (self.catalog(), sql) if _DML.match(sql) else None
        done = _SHARED.get(shared) if shared is not None else None  # get: another thread may clear it meanwhile
        if done is not None:
            self.cache[sql] = done
            return done
        out, has_copy, dml_only = [], False, True
        for stmt in sqlglot.parse(sql, read="redshift"):
            if stmt is None:
                continue
            dml_only = dml_only and isinstance(stmt, (exp.Insert, exp.Update, exp.Delete, exp.Query))
            if isinstance(stmt, (exp.Create, exp.Drop, exp.Alter)):
                self.cache.clear()  # a table's columns may change: INSERTs and UPDATEs are transpiled again
            if isinstance(stmt, exp.Grant):
                out.append(_grant_row(sql))
                continue
            if isinstance(stmt, exp.Set):
                out.append(_session_setting(stmt))
                continue
            out += _privileges_follow(stmt)
            keys = self.keys_follow(stmt)
            if keys is not None:
                has_copy = True  # checked against the database's state: not cached
                out += keys
                if any(isinstance(a, (exp.AlterSortKey, exp.AlterDistStyle)) for a in stmt.args.get("actions") or []):
                    continue  # physical layout only: recorded, nothing for DuckDB to do
            if isinstance(stmt, exp.Copy):
                out.append(self.copy(stmt))
                has_copy = True
                continue
            typed = self.typed_columns(stmt)
            if typed is not None:
                has_copy = True  # depends on the database's state: not cached
                if typed == "skip":
                    continue
                out += typed
                continue
            if _reads_pg_depend(stmt):
                has_copy = True  # answered from the database's state: not cached
                out.append(self.view_dependencies_query())
                continue
            self.refuse_drop_with_dependents(stmt)
            if isinstance(stmt, exp.Create) and stmt.args.get("kind") == "VIEW":
                has_copy = True  # records the view's binding: not cached
                view = stmt.this.this if isinstance(stmt.this, exp.Schema) else stmt.this
                if stmt.args.get("no_schema_binding"):
                    stmt.set("no_schema_binding", None)
                    out.append(f"INSERT INTO verify_late_binding VALUES ({_lit(view.db)}, {_lit(view.name)})")
            stmt = stmt.transform(_duckdb_types).transform(_text_comparisons)
            if isinstance(stmt, (exp.Insert, exp.Update)):
                stmt = self.fit_lengths(stmt)
            if isinstance(stmt, exp.Create) and stmt.args.get("properties"):
                props = [p for p in stmt.args["properties"].expressions
                         if not isinstance(p, (exp.DistKeyProperty, exp.SortKeyProperty, exp.DistStyleProperty))]
                stmt.set("properties", exp.Properties(expressions=props) if props else None)
            out.append(stmt.sql("duckdb", unsupported_level=ErrorLevel.RAISE))
        if not has_copy:
            self.cache[sql] = out
            if dml_only and shared is not None:  # a function of the SQL and the catalog's columns only (fit_lengths): any Verifier may reuse it
                if len(_SHARED) > _SHARED_LIMIT:
                    _SHARED.clear()
                _SHARED[shared] = out
        return out

    def catalog(self) -> str:
        """A digest of every column's name, type and comment (the Redshift type fit_lengths reads): a DML
        statement transpiles the same wherever the digest is the same."""
        return self.con.execute(
            "SELECT md5(COALESCE(string_agg(concat_ws(chr(31), database_name, schema_name, table_name, column_name, "
            "data_type, COALESCE(comment, '')), chr(30) ORDER BY database_name, schema_name, table_name, column_index), "
            "'')) FROM duckdb_columns()").fetchone()[0]

    def view_dependencies(self) -> list[tuple[str, str, str | None, str, str]]:
        """(schema, table, column or None for all of them, view schema, view name): what each view reads,
        as Redshift records it for a view bound to its tables; a late-binding view (WITH NO SCHEMA
        BINDING) has no dependency (Redshift Database Developer Guide, r_CREATE_VIEW)."""
        late = set(self.con.execute("SELECT schema_name, view_name FROM verify_late_binding").fetchall())
        views = self.con.execute("SELECT schema_name, view_name, sql FROM duckdb_views() "
                                 "WHERE NOT internal AND NOT temporary").fetchall()
        return [(ts, tn, col, schema, name) for schema, name, sql in views if (schema, name) not in late
                for ts, tn, col in _view_references(sql)]

    def view_dependencies_query(self) -> str:
        """The job's dependency query (pg_catalog.pg_depend, as r_DROP_TABLE's find_depend reads it),
        answered from view_dependencies: (schema, table, column, view schema, view name)."""
        rows = [tuple(_lit(v) if v is not None else "CAST(NULL AS VARCHAR)" for v in row)
                for row in self.view_dependencies()]
        if not rows:
            return ("SELECT * FROM (VALUES ('', '', CAST(NULL AS VARCHAR), '', '')) "
                    "AS d(schemaname, name, colname, refbyschemaname, refbyname) WHERE false")
        values = ", ".join("(" + ", ".join(r) + ")" for r in rows)
        return f"SELECT DISTINCT * FROM (VALUES {values}) AS d(schemaname, name, colname, refbyschemaname, refbyname)"

    def refuse_drop_with_dependents(self, stmt) -> None:
        """DROP TABLE and DROP COLUMN default to RESTRICT: a view bound to the table, or one that reads
        the column, makes them fail (Redshift Database Developer Guide, r_DROP_TABLE: "cannot drop table
        feedback because other objects depend on it"; r_ALTER_TABLE, DROP COLUMN RESTRICT: "If a defined
        view references the column that is being dropped"). DuckDB keeps no such dependency."""
        from sqlglot import exp

        dropped = []  # (schema, table, column or None)
        if isinstance(stmt, exp.Drop) and (stmt.args.get("kind") or "").upper() == "TABLE" and not stmt.args.get("cascade"):
            dropped = [(t.db.lower(), t.name.lower(), None) for t in stmt.args.get("tables") or [stmt.this] if t]
        elif isinstance(stmt, exp.Alter):
            for action in stmt.args.get("actions") or []:
                if isinstance(action, exp.Drop) and (action.args.get("kind") or "").upper() == "COLUMN" \
                        and not action.args.get("cascade"):
                    dropped += [(stmt.this.db.lower(), stmt.this.name.lower(), c.name.lower())
                                for c in action.args.get("tables") or []]
        if not dropped:
            return
        for ts, tn, col, vs, vn in self.view_dependencies():
            for schema, table, column in dropped:
                if (ts.lower(), tn.lower()) == (schema, table) and (column is None or col is None or col.lower() == column):
                    what = f"table {schema}.{table}" if column is None else f"column {column} of {schema}.{table}"
                    raise ToolError(f"cannot drop {what} because other objects depend on it (view {vs}.{vn})")

    def typed_columns(self, stmt):
        """For a statement that gives columns types: the DuckDB statements that also record each
        column's Redshift type (as its comment); "skip" for an ALTER COLUMN TYPE (checked, then only
        recorded); None for any other statement."""
        from sqlglot import exp
        from sqlglot.errors import ErrorLevel

        from dwctl.warehouse.load_job import normal_type

        def comments(table, defs):
            name = table.sql("duckdb")
            return [f"COMMENT ON COLUMN {name}.{_q(d.this.name)} IS {_lit(normal_type(d.args['kind'].sql('redshift')))}"
                    for d in defs if isinstance(d, exp.ColumnDef) and d.args.get("kind") is not None]

        def duck(node):
            return node.transform(_duckdb_types).sql("duckdb", unsupported_level=ErrorLevel.RAISE)

        if isinstance(stmt, exp.Create) and isinstance(stmt.this, exp.Schema) and stmt.kind == "TABLE":
            table = stmt.this.this
            if stmt.args.get("exists") and self.columns_of(table.db, table.name):
                return []  # CREATE TABLE IF NOT EXISTS of a table that exists: nothing happens
            props = stmt.args.get("properties")
            if props:
                kept = [p for p in props.expressions
                        if not isinstance(p, (exp.DistKeyProperty, exp.SortKeyProperty, exp.DistStyleProperty))]
                stmt.set("properties", exp.Properties(expressions=kept) if kept else None)
            return [duck(stmt)] + comments(table, stmt.this.expressions)
        if isinstance(stmt, exp.Alter) and stmt.args.get("actions"):
            table = stmt.this
            for action in stmt.args["actions"]:
                if isinstance(action, exp.AlterColumn) and action.args.get("dtype") is not None:
                    self.check_alter_type(table, action.this.name, normal_type(action.args["dtype"].sql("redshift")))
                    name = table.sql("duckdb")
                    self.con.execute(f"COMMENT ON COLUMN {name}.{_q(action.this.name)} IS "
                                     f"{_lit(normal_type(action.args['dtype'].sql('redshift')))}")
                    return "skip"
            if any(isinstance(a, exp.ColumnDef) for a in stmt.args["actions"]):
                return [duck(stmt)] + comments(table, stmt.args["actions"])
        return None

    def keys_follow(self, stmt) -> list[str] | None:
        """What a statement does to verify_keys (before it runs); None when it touches no keys. A DROP
        COLUMN of a recorded key is refused here, as Redshift refuses it."""
        from sqlglot import exp

        def where(table) -> str:
            return f"schema_name = {_lit(table.db)} AND table_name = {_lit(table.name)}"

        def rows(table, kind: str, columns) -> list[str]:
            return [f"INSERT INTO verify_keys VALUES ({_lit(table.db)}, {_lit(table.name)}, {_lit(kind)}, {_lit(c.name)})"
                    for c in columns]

        if isinstance(stmt, exp.Drop) and str(stmt.args.get("kind", "")).upper() == "TABLE":
            return [f"DELETE FROM verify_keys WHERE {where(t)}" for t in stmt.args.get("tables") or [] if t is not None]
        if isinstance(stmt, exp.Create) and isinstance(stmt.this, exp.Schema) and stmt.kind == "TABLE":
            table = stmt.this.this
            if stmt.args.get("exists") and self.columns_of(table.db, table.name):
                return []
            out = [f"DELETE FROM verify_keys WHERE {where(table)}"]
            types = {d.this.name.lower(): d.args["kind"].sql("redshift").upper() for d in stmt.this.expressions
                     if isinstance(d, exp.ColumnDef) and d.args.get("kind") is not None}
            for prop in (stmt.args.get("properties").expressions if stmt.args.get("properties") else []):
                if isinstance(prop, exp.DistKeyProperty):
                    out += rows(table, "dist", [prop.this])
                    _no_super_key(table, [prop.this], types)
                elif isinstance(prop, exp.SortKeyProperty):
                    out += rows(table, "sort", prop.this if isinstance(prop.this, list) else [prop.this])
                    _no_super_key(table, prop.this if isinstance(prop.this, list) else [prop.this], types)
            return out
        if not isinstance(stmt, exp.Alter):
            return None
        table, out, keyed = stmt.this, [], False
        for action in stmt.args.get("actions") or []:
            if _is_auto(action):
                keyed = True  # AUTO "preserves the existing sort key" / a large table's DISTKEY (r_ALTER_TABLE)
                continue
            if isinstance(action, exp.AlterSortKey):
                out.append(f"DELETE FROM verify_keys WHERE {where(table)} AND kind = 'sort'")
                out += rows(table, "sort", action.expressions or [])
            elif isinstance(action, exp.AlterDistStyle):
                out.append(f"DELETE FROM verify_keys WHERE {where(table)} AND kind = 'dist'")
                if isinstance(action.this, exp.Column):
                    out += rows(table, "dist", [action.this])
            elif isinstance(action, exp.Drop) and str(action.args.get("kind", "")).upper() == "COLUMN":
                for column in action.args.get("tables") or []:
                    key = self.con.execute(f"SELECT kind FROM verify_keys WHERE {where(table)} AND "
                                           "lower(column_name) = lower(?)", [column.name]).fetchone()
                    if key is not None:
                        raise ToolError(f"ALTER TABLE {table.db}.{table.name} DROP COLUMN {column.name}: the "
                                        f"{'distribution' if key[0] == 'dist' else 'sort'} key; Redshift refuses it")
            elif isinstance(action, exp.RenameColumn):
                out.append(f"UPDATE verify_keys SET column_name = {_lit(action.args['to'].name)} WHERE {where(table)} "
                           f"AND lower(column_name) = lower({_lit(action.this.name)})")
        return out if out or keyed else None

    def fit_lengths(self, stmt):
        """An INSERT or UPDATE whose every value for a VARCHAR(n) or CHAR(n) column of its target goes
        through rs_varchar, which does what Redshift does (Database Developer Guide, r_Character_types):
        "Both CHAR and VARCHAR data types store strings up to n bytes in length. An attempt to store a
        longer string into a column of these types results in an error", unless the extra characters
        are all spaces, which are cut. DuckDB's VARCHAR has no length; the column's Redshift type is
        its comment (typed_columns)."""
        from sqlglot import exp

        target = stmt.this
        table = target.this if isinstance(target, exp.Schema) else target
        if not isinstance(table, exp.Table):
            return stmt
        limits = {}
        for name, kind in self.con.execute("SELECT column_name, comment FROM duckdb_columns() WHERE schema_name = ? "
                                           "AND table_name = ?", [table.db, table.name]).fetchall():
            if kind and (length := _byte_length(kind)) and not kind.upper().startswith("VARBYTE"):
                spelled = "character varying" if kind.upper().startswith("VARCHAR") else "character"
                limits[name.lower()] = (length, f"{spelled}({length})")

        def fit(value, column: str):
            length, spelled = limits[column.lower()]
            return exp.Anonymous(this="rs_varchar", expressions=[
                exp.cast(value, exp.DataType.build("VARCHAR")), exp.Literal.number(length), exp.Literal.string(spelled)])

        if isinstance(stmt, exp.Update):
            for assignment in stmt.expressions:
                if isinstance(assignment, exp.EQ) and assignment.this.name.lower() in limits:
                    assignment.set("expression", fit(assignment.expression, assignment.this.name))
            return stmt
        columns = [c.name for c in target.expressions] if isinstance(target, exp.Schema) else []
        if not columns or not any(c.lower() in limits for c in columns) or stmt.expression is None:
            return stmt  # every INSERT the job and the rendered SQL run names its columns
        names = [f"dwctl_value_{i}" for i in range(len(columns))]
        inserted = exp.Subquery(this=stmt.expression, alias=exp.TableAlias(
            this=exp.to_identifier("dwctl_insert"), columns=[exp.to_identifier(n) for n in names]))
        stmt.set("expression", exp.select(*[fit(exp.column(n), c) if c.lower() in limits else exp.column(n)
                                            for n, c in zip(names, columns)]).from_(inserted))
        return stmt

    def check_alter_type(self, table, column: str, new: str) -> None:
        """Redshift's rules for ALTER COLUMN TYPE (Database Developer Guide, r_ALTER_TABLE): it
        "changes the size of a column defined as a VARCHAR data type"; not on a column with
        UNIQUE, PRIMARY KEY or FOREIGN KEY; not "within a transaction block (BEGIN ... END)"."""
        from dwctl.warehouse.load_job import column_change

        where = f"{table.db}.{table.name}.{column}"
        if self.in_transaction:
            raise ToolError(f"ALTER COLUMN {where} TYPE inside a transaction block: Redshift refuses it")
        row = self.con.execute("SELECT comment FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
                               "AND lower(column_name) = lower(?)", [table.db, table.name, column]).fetchone()
        if row is None:
            raise ToolError(f"ALTER COLUMN {where}: no such column")
        default = self.con.execute("SELECT column_default FROM duckdb_columns() WHERE schema_name = ? AND "
                                   "table_name = ? AND lower(column_name) = lower(?)",
                                   [table.db, table.name, column]).fetchone()
        if default is not None and default[0] is not None:
            raise ToolError(f"ALTER COLUMN {where} TYPE: the column has a default; Redshift refuses it "
                            "(\"You can't alter columns with default values\")")
        if column_change(row[0] or "", new) != "in_place":
            raise ToolError(f"ALTER COLUMN {where} TYPE {new}: the column is {row[0]}; Redshift changes a type "
                            "in place only to make a VARCHAR longer")
        keys = self.con.execute("SELECT constraint_column_names FROM duckdb_constraints() WHERE schema_name = ? "
                                "AND table_name = ? AND constraint_type IN ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY')",
                                [table.db, table.name]).fetchall()
        if any(column.lower() in [c.lower() for c in names] for (names,) in keys):
            raise ToolError(f"ALTER COLUMN {where} TYPE: a key column; Redshift refuses it")

    def copy(self, stmt) -> str:
        from sqlglot import exp

        target = stmt.this
        columns = [c.name for c in target.expressions] if isinstance(target, exp.Schema) else None
        table = target.this if isinstance(target, exp.Schema) else target
        params = {p.this.name.upper(): p for p in stmt.args.get("params") or []}
        source = Path(stmt.args["files"][0].name)
        fmt = params["FORMAT"].expression.name.upper() if "FORMAT" in params else "TEXT"
        name = table.sql("duckdb")
        table_columns = self.columns_of(table.db, table.name)
        columns = columns or table_columns
        select = ", ".join(_q(c) for c in columns)
        if fmt == "PARQUET" and "MANIFEST" in params:
            entries = json.loads(source.read_text(encoding="utf-8"))["entries"]
            files = [str(self.landing.resolve_url(e["url"])) for e in entries]
            declared = self.declared_for(table.db, table.name)
            types = self.redshift_types(table.db, table.name) or [d[:2] for d in declared]
            file_names = {d[0].lower(): d[2] for d in declared}
            expected = [file_names.get(c.lower(), c) for c in table_columns]  # names DMS lands, in COPY's order
            # a column the source renamed (renamed_from) has its old name in a file landed before the rename
            old_names = {file_names.get(d[0].lower(), d[0]).lower(): d[3] for d in declared if len(d) > 3 and d[3]}
            found = []
            for path in files:
                found.append(self.check_layout(path, expected, name, old_names))
                self.check_types(path, types, name)
            listing = "[" + ", ".join(_lit(p) for p in files) + "]"
            # by position, as COPY: the file's names (checked above) into the table's columns
            read = ", ".join(_q(f) for f in expected) if not isinstance(target, exp.Schema) else select
            if not isinstance(target, exp.Schema) and any(f != expected for f in found):  # old names: by position
                each = " UNION ALL ".join("SELECT " + ", ".join(f"{_q(f)} AS {_q(e)}" for f, e in zip(names, expected))
                                          + f" FROM read_parquet({_lit(path)})" for path, names in zip(files, found))
                return f"INSERT INTO {name} ({select}) SELECT {read} FROM ({each})"
            return f"INSERT INTO {name} ({select}) SELECT {read} FROM read_parquet({listing}, union_by_name = true)"
        if fmt == "CSV" and "MANIFEST" not in params:
            spec = ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in columns)
            return (f"INSERT INTO {name} ({select}) SELECT {select} FROM read_csv({_lit(str(source))}, "
                    f"header = false, columns = {{{spec}}})")
        raise ToolError(f"COPY into {name}: format {fmt} is not one the verifier can stand in for")

    def declared_for(self, schema: str, table: str) -> list[tuple]:
        """The rendered DDL's (column, type, landed name) of a staging table; for the job's staging
        table of another file layout (<target><layout_suffix><tag>), those of its target."""
        from dwctl.spec.landed_layout import WORK_MARK

        found = self.declared.get((schema, table))
        if found is None and WORK_MARK + "_l" in table:
            found = self.declared.get((schema, table[:table.rfind(WORK_MARK + "_l")]))
        return found or []

    def redshift_types(self, schema: str, table: str) -> list[tuple[str, str]]:
        """(column, Redshift type) of a table, from the comments its CREATE and ALTERs left."""
        rows = self.con.execute("SELECT column_name, comment FROM duckdb_columns() WHERE schema_name = ? AND "
                                "table_name = ? ORDER BY column_index", [schema, table]).fetchall()
        return [(c, t) for c, t in rows] if rows and all(t for _, t in rows) else []

    def columns_of(self, schema: str, table: str) -> list[str]:
        rows = self.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position", [schema, table]).fetchall()
        return [r[0] for r in rows]

    def check_layout(self, path: str, columns: list[str], name: str, old_names: dict | None = None) -> list[str]:
        """The file holds the columns DMS lands for the table (after its rename and remove-column
        rules), in order: COPY would load a file of as many columns by position, whatever its names.
        old_names: {landed name in lower case: the name before the source renamed it}, which a file
        landed before the rename carries in its place. Returns the file's column names."""
        found = [r[0] for r in self.con.execute(f"DESCRIBE SELECT * FROM read_parquet({_lit(path)})").fetchall()]
        old_names = old_names or {}
        if len(found) != len(columns) or any(f.lower() not in (c.lower(), str(old_names.get(c.lower(), "")).lower())
                                             for f, c in zip(found, columns)):
            raise ToolError(f"{path}: columns {found} do not match {name} {columns} (the names DMS lands): "
                            f"Redshift COPY maps Parquet columns by position")
        return found


    def check_types(self, path: str, declared: list[tuple[str, str]], name: str) -> None:
        """What Redshift COPY refuses and DuckDB would load: a Parquet type the column's type does
        not accept, or text longer in bytes than its VARCHAR/CHAR (Redshift counts bytes)."""
        import pyarrow.parquet as pq

        arrow = pq.read_schema(path)
        limited = []  # (column, Redshift type, byte limit, the longest value's size in SQL)
        for (column, redshift), field in zip(declared, arrow):
            if not parquet_type_fits(redshift, field.type):
                raise ToolError(f"{path}: column {column!r} is Parquet {field.type}, which Redshift COPY does not "
                                f"load into {redshift} ({name})")
            if length := _byte_length(redshift):
                size = "octet_length" if redshift.upper().startswith("VARBYTE") else "strlen"
                limited.append((column, redshift, length, f"MAX({size}({_q(field.name)}))"))
        if not limited:
            return
        # every column's longest value in one read of the file
        longest = self.con.execute(f"SELECT {', '.join(m for *_, m in limited)} FROM read_parquet({_lit(path)})").fetchone()
        for (column, redshift, length, _), size in zip(limited, longest):
            if size is not None and size > length:
                # with Redshift's own words for it (load_job.TOO_LONG), which the job recognises
                raise ToolError(f"{path}: column {column!r} holds a value of {size} bytes, longer than its "
                                f"{redshift} ({name}): Redshift COPY fails on it: The length of the data column "
                                f"{column} is longer than the length defined in the table. Table: {length}, "
                                f"Data: {size}")


# What COPY loads from each Parquet type, per the Redshift Database Developer Guide (COPY from columnar
# data formats, which reads Parquet through Redshift Spectrum, and Spectrum's Parquet type mapping):
# integers into integer columns at least as wide, floats into REAL/DOUBLE PRECISION, DECIMAL into a
# DECIMAL of the same scale and no less precision, strings into VARCHAR/CHAR, and so on. Anything
# else (a DOUBLE into a DECIMAL, a string into a BOOLEAN) is an error in Redshift, so here too.
_INT_BITS = {"SMALLINT": 16, "INTEGER": 32, "BIGINT": 64}


def parquet_type_fits(redshift: str, arrow_type) -> bool:
    import pyarrow as pa

    t = redshift.upper().strip()
    if t.startswith(("VARCHAR", "CHAR")):
        return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    if t in _INT_BITS:
        if pa.types.is_signed_integer(arrow_type):
            return arrow_type.bit_width <= _INT_BITS[t]
        return pa.types.is_unsigned_integer(arrow_type) and arrow_type.bit_width < _INT_BITS[t]
    if t == "BOOLEAN":
        return pa.types.is_boolean(arrow_type)
    if t == "REAL":
        return pa.types.is_float32(arrow_type)
    if t == "DOUBLE PRECISION":
        return pa.types.is_float32(arrow_type) or pa.types.is_float64(arrow_type)
    if m := re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", t):
        return pa.types.is_decimal(arrow_type) and arrow_type.scale == int(m[2]) and arrow_type.precision <= int(m[1])
    if t == "DATE":
        return pa.types.is_date32(arrow_type)
    if t == "TIMESTAMP":
        return pa.types.is_timestamp(arrow_type) and arrow_type.tz is None
    if t == "TIMESTAMPTZ":
        return pa.types.is_timestamp(arrow_type)
    if t.startswith("VARBYTE"):
        return pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)
    return False


def _is_auto(action) -> bool:
    """ALTER SORTKEY AUTO or ALTER DISTSTYLE AUTO: Redshift keeps the key the table has (r_ALTER_TABLE: "When
    you alter a sort key to AUTO, Amazon Redshift preserves the existing sort key of the table"; "A large
    table with DISTSTYLE KEY is converted to AUTO(KEY) and the DISTKEY is preserved"; a small one's becomes
    AUTO(ALL), but the verifier keeps it, the stricter of the two)."""
    from sqlglot import exp

    return isinstance(action, (exp.AlterSortKey, exp.AlterDistStyle)) and isinstance(action.this, exp.Var) \
        and action.this.name.upper() == "AUTO"


def _byte_length(redshift: str) -> int | None:
    """The byte limit of a VARCHAR(n), CHAR(n) or VARBYTE(n) column (Redshift counts bytes)."""

    m = re.fullmatch(r"(?:VARCHAR|CHAR|VARBYTE)\((\d+)\)", redshift.upper().strip())
    return int(m[1]) if m else None


# Redshift's SVV_COLUMNS (r_SVV_COLUMNS) as DuckDB can give it: the Redshift type of each column
# is its comment (see Transpiler.typed_columns), reported as SVV_COLUMNS reports it.
SVV_COLUMNS = """
CREATE OR REPLACE TEMP VIEW svv_columns AS
SELECT schema_name AS table_schema, table_name, column_name, column_index AS ordinal_position,
  CASE WHEN is_nullable THEN 'YES' ELSE 'NO' END AS is_nullable,
  CASE base WHEN 'VARCHAR' THEN 'character varying' WHEN 'CHAR' THEN 'character' WHEN 'DECIMAL' THEN 'numeric'
    WHEN 'DOUBLE PRECISION' THEN 'double precision' WHEN 'TIMESTAMP' THEN 'timestamp without time zone'
    WHEN 'TIMESTAMPTZ' THEN 'timestamp with time zone' ELSE lower(base) END AS data_type,
  CASE WHEN base IN ('VARCHAR', 'CHAR', 'VARBYTE') THEN TRY_CAST(arg1 AS INTEGER) END AS character_maximum_length,
  CASE WHEN base = 'DECIMAL' THEN TRY_CAST(arg1 AS INTEGER) END AS numeric_precision,
  CASE WHEN base = 'DECIMAL' THEN TRY_CAST(arg2 AS INTEGER) END AS numeric_scale
FROM (SELECT *, regexp_extract(comment, '^([A-Z ]+)', 1) AS base, regexp_extract(comment, '\\((\\d+)', 1) AS arg1,
        regexp_extract(comment, ',(\\d+)\\)', 1) AS arg2
      FROM duckdb_columns() WHERE comment IS NOT NULL)
"""


# What Redshift does that DuckDB does not, as macros the transpiled statements call.
# rs_varchar(value, n, type): storing text in a VARCHAR(n) or CHAR(n) (Transpiler.fit_lengths). The
# error's message carries the value's size, so DuckDB cannot fold it into a constant and raise it
# for every row.
# rs_text(x): a value as Redshift compares it (_text_comparisons). typeof is known when DuckDB binds
# the statement, so the CASE folds away: x itself for other types (a join on them stays a hash join
# on the columns), RTRIM(x) for text.
REDSHIFT_MACROS = """
CREATE OR REPLACE TEMP MACRO rs_varchar(v, n, t) AS CASE
  WHEN v IS NULL OR strlen(v) <= n THEN v
  WHEN strlen(rtrim(v, ' ')) <= n THEN rtrim(v, ' ') || repeat(' ', CAST(n - strlen(rtrim(v, ' ')) AS BIGINT))
  ELSE error('value too long for type ' || t || ' (' || strlen(v) || ' bytes)') END;
CREATE OR REPLACE TEMP MACRO rs_text(x) AS
  CASE WHEN typeof(x) = 'VARCHAR' THEN cast_to_type(rtrim(CAST(x AS VARCHAR), ' '), x) ELSE x END;
"""


PRIVILEGES = """
CREATE TABLE IF NOT EXISTS svv_relation_privileges (namespace_name VARCHAR, relation_name VARCHAR,
  privilege_type VARCHAR, identity_name VARCHAR, identity_type VARCHAR, admin_option BOOLEAN);
CREATE TABLE IF NOT EXISTS svv_column_privileges (namespace_name VARCHAR, relation_name VARCHAR,
  column_name VARCHAR, privilege_type VARCHAR, identity_name VARCHAR, identity_type VARCHAR);
CREATE TABLE IF NOT EXISTS verify_keys (schema_name VARCHAR, table_name VARCHAR, kind VARCHAR, column_name VARCHAR);
CREATE TABLE IF NOT EXISTS verify_late_binding (schema_name VARCHAR, view_name VARCHAR);
"""
# Redshift's SVV_REDSHIFT_COLUMNS (r_SVV_REDSHIFT_COLUMNS) for the key columns verify_keys records: sortkey
# the column's place in the sort key (in the order the key was given), distkey true for the distribution
# key. Only key columns have rows here (the job asks for no other).
SVV_REDSHIFT_COLUMNS = """
CREATE OR REPLACE TEMP VIEW svv_redshift_columns AS
SELECT current_database() AS database_name, schema_name, table_name, column_name,
  CAST(CASE WHEN kind = 'sort' THEN row_number() OVER (PARTITION BY schema_name, table_name, kind ORDER BY rowid)
       ELSE 0 END AS INTEGER) AS sortkey,
  kind = 'dist' AS distkey
FROM verify_keys
"""
_GRANT = (r'^GRANT (?P<privilege>[A-Z ]+?)(?: \((?P<column>"(?:[^"]|"")*")\))? ON TABLE (?P<schema>"(?:[^"]|"")*")\.'
          r'(?P<table>"(?:[^"]|"")*") TO (?:(?P<kind>ROLE|GROUP) )?(?P<name>"(?:[^"]|"")*"|PUBLIC)'
          r'(?P<option> WITH GRANT OPTION)?$')


def _unquote(text: str) -> str:
    return text[1:-1].replace('""', '"') if text.startswith('"') else text


# What GRANT takes on a table (Redshift Database Developer Guide, r_GRANT: { SELECT | INSERT | UPDATE | DELETE |
# DROP | REFERENCES | ALTER | TRUNCATE }, "Amazon Redshift doesn't support the RULE and TRIGGER permissions")
# and on its columns ({ SELECT | UPDATE } ( column_name ...)); anything else Redshift refuses.
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "DROP", "REFERENCES", "ALTER", "TRUNCATE")
COLUMN_PRIVILEGES = ("SELECT", "UPDATE")


def _grant_row(sql: str) -> str:
    """A GRANT as the job writes it (load_job.grant_statements) -> the row Redshift's views would show."""

    m = re.match(_GRANT, sql.strip())
    if m is None:
        raise ToolError(f"GRANT the verifier cannot stand in for: {sql}")
    allowed = COLUMN_PRIVILEGES if m["column"] else TABLE_PRIVILEGES
    if m["privilege"] not in allowed:
        raise ToolError(f"{sql}: Redshift grants {m['privilege']} on no {'column' if m['column'] else 'table'} "
                        f"(r_GRANT: {', '.join(allowed)})")
    name = _unquote(m["name"])
    kind = "public" if m["name"] == "PUBLIC" else (m["kind"] or "user").lower()
    where = [_lit(_unquote(m["schema"])), _lit(_unquote(m["table"]))]
    if m["column"]:
        return (f"INSERT INTO svv_column_privileges VALUES ({where[0]}, {where[1]}, {_lit(_unquote(m['column']))}, "
                f"{_lit(m['privilege'])}, {_lit(name)}, {_lit(kind)})")
    return (f"INSERT INTO svv_relation_privileges VALUES ({where[0]}, {where[1]}, {_lit(m['privilege'])}, "
            f"{_lit(name)}, {_lit(kind)}, {'TRUE' if m['option'] else 'FALSE'})")


def _no_super_key(table, columns, types: dict[str, str]) -> None:
    """"You can't define SUPER columns as either a distribution or sort key" (Redshift Database
    Developer Guide, limitations-super): CREATE TABLE fails there, so here too."""
    for column in columns:
        if types.get(column.name.lower()) == "SUPER":
            raise ToolError(f"CREATE TABLE {table.db}.{table.name}: the SUPER column {column.name} as a distribution "
                            "or sort key; Redshift refuses it (limitations-super)")


def _privileges_follow(stmt) -> list[str]:
    """What a statement does to the grants on what it drops or renames (before the statement runs)."""
    from sqlglot import exp

    def where(table) -> str:
        return f"namespace_name = {_lit(table.db)} AND relation_name = {_lit(table.name)}"

    if isinstance(stmt, exp.Drop) and str(stmt.args.get("kind", "")).upper() == "TABLE":
        return [f"DELETE FROM svv_{kind}_privileges WHERE {where(table)}"
                for table in stmt.args.get("tables") or [stmt.this] if table is not None
                for kind in ("relation", "column")]
    out = []
    if isinstance(stmt, exp.Alter):
        for action in stmt.args.get("actions") or []:
            if isinstance(action, exp.Drop) and str(action.args.get("kind", "")).upper() == "COLUMN":
                out += [f"DELETE FROM svv_column_privileges WHERE {where(stmt.this)} AND "
                        f"lower(column_name) = lower({_lit(column.name)})" for column in action.args.get("tables") or []]
            elif isinstance(action, exp.RenameColumn):
                out.append(f"UPDATE svv_column_privileges SET column_name = {_lit(action.args['to'].name)} WHERE "
                           f"{where(stmt.this)} AND lower(column_name) = lower({_lit(action.this.name)})")
    return out


def _reads_pg_depend(stmt) -> bool:
    from sqlglot import exp

    return any(t.name.lower() == "pg_depend" for t in stmt.find_all(exp.Table))


def _view_references(sql: str) -> set[tuple[str, str, str | None]]:
    """(schema, table, column) a view's SELECT reads; column None: the whole table (SELECT *, or a
    column the view names without saying which of its tables it comes from)."""
    import sqlglot
    from sqlglot import exp

    query = sqlglot.parse_one(sql, read="duckdb")
    query = query.expression if isinstance(query, exp.Create) else query
    ctes = {c.alias_or_name.lower() for c in query.find_all(exp.CTE)}
    tables = {}
    for t in query.find_all(exp.Table):
        if t.name.lower() not in ctes:
            tables[(t.alias_or_name or t.name).lower()] = (t.db.lower(), t.name.lower())
    found = set()
    if any(isinstance(s, exp.Star) for s in query.find_all(exp.Star)):
        found |= {(db, name, None) for db, name in tables.values()}
    for column in query.find_all(exp.Column):
        if isinstance(column.this, exp.Star):
            continue
        owner = tables.get(column.table.lower()) if column.table else (next(iter(tables.values())) if len(tables) == 1 else None)
        if owner:
            found.add((owner[0], owner[1], column.name.lower()))
        else:
            found |= {(db, name, None) for db, name in tables.values()}
    return found | {(db, name, None) for db, name in tables.values() if not any(f[:2] == (db, name) for f in found)}


def _duckdb_types(node):
    from sqlglot import exp

    if isinstance(node, exp.ParseJSON):
        dedup = exp.func("COALESCE", exp.Anonymous(this="getvariable", expressions=[exp.Literal.string(DEDUP)]),
                         exp.false())
        return exp.ParseJSON(this=exp.Anonymous(this="rs_json_parse", expressions=[node.this, dedup]))
    if isinstance(node, exp.DataType):
        if node.this == exp.DataType.Type.SUPER:
            return exp.DataType.build("JSON")
        if node.this in (exp.DataType.Type.VARBINARY, exp.DataType.Type.BINARY):
            return exp.DataType.build("BLOB")
    return node


# SET json_parse_dedup_attributes: a session setting (super-configurations). A Data API batch, and a single
# statement, is a session of its own (no SessionKeepAliveSeconds): DuckDBWarehouse resets it for each.
DEDUP = "rs_json_parse_dedup_attributes"


def _session_setting(stmt) -> str:
    """The SET statements the job's SQL runs, as a DuckDB variable; any other SET is an error."""
    from sqlglot import exp

    [item] = stmt.expressions
    assignment = item.this
    if isinstance(assignment, exp.EQ) and assignment.this.name.lower() == "json_parse_dedup_attributes":
        value = assignment.expression.name.lower()
        if value in ("on", "true", "off", "false"):
            return f"SET VARIABLE {DEDUP} = {'TRUE' if value in ('on', 'true') else 'FALSE'}"
    raise ToolError(f"SET the verifier cannot stand in for: {stmt.sql('redshift')}")


def _json_parse(text: str | None, dedup: bool) -> str | None:
    """What JSON_PARSE does with an object that repeats an attribute name: "The same attribute name cannot
    appear in the same object, but can appear in a nested object. The json_parse_dedup_attributes
    configuration option allows JSON_PARSE to keep only the last occurrence of duplicate attributes instead
    of returning an error" (super-configurations). Anything else is left to DuckDB's json() to validate."""
    import json
    from decimal import Decimal

    if text is None:
        return None
    repeated: list[str] = []

    def pairs(items):
        found = {}
        for key, value in items:
            if key in found:
                repeated.append(key)
            found[key] = value  # the last occurrence's value
        return found

    try:
        document = json.loads(text, object_pairs_hook=pairs, parse_float=Decimal, parse_int=int)
    except ValueError:
        return text  # not JSON: json() refuses it with DuckDB's message
    if not repeated:
        return text
    if not dedup:
        raise ValueError(f"JSON_PARSE: duplicate attribute {repeated[0]!r} in an object (Redshift refuses it "
                         "unless json_parse_dedup_attributes is on: super-configurations)")

    def dump(value) -> str:
        if isinstance(value, dict):
            return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + dump(v) for k, v in value.items()) + "}"
        if isinstance(value, list):
            return "[" + ",".join(dump(v) for v in value) + "]"
        if isinstance(value, Decimal):
            return str(value)
        return json.dumps(value, ensure_ascii=False)

    return dump(document)


def _register_functions(con) -> None:
    """The Python functions the transpiled statements call, once per connection."""
    import duckdb

    try:
        con.create_function("rs_json_parse", _json_parse, ["VARCHAR", "BOOLEAN"], "VARCHAR")
    except (duckdb.NotImplementedException, duckdb.CatalogException) as exc:  # a run before this one made it
        if "already" not in str(exc):
            raise


def _text_comparisons(node):
    """Comparisons and groupings as Redshift makes them of text (the module docstring: rs_text)."""
    from sqlglot import exp

    def text(value):
        if isinstance(value, (exp.Null, exp.Placeholder, exp.Parameter, exp.Boolean)) or \
                (isinstance(value, exp.Literal) and not value.is_string):
            return value
        return exp.Anonymous(this="rs_text", expressions=[value])

    comparisons = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
    if isinstance(node, comparisons) and not isinstance(node.parent, (exp.Update, exp.SetItem)):
        return node.__class__(this=text(node.this), expression=text(node.expression))
    if isinstance(node, exp.In) and node.expressions and not node.args.get("query"):
        return exp.In(this=text(node.this), expressions=[text(e) for e in node.expressions], is_global=None)
    if isinstance(node, exp.Window) and node.args.get("partition_by"):
        node.set("partition_by", [text(e) for e in node.args["partition_by"]])
    if isinstance(node, exp.Count) and isinstance(node.this, exp.Distinct):
        node.this.set("expressions", [text(e) for e in node.this.expressions])
    if isinstance(node, exp.Select) and isinstance(node.args.get("distinct"), exp.Distinct) and \
            not node.args["distinct"].args.get("on") and not any(isinstance(e, exp.Star) for e in node.expressions):
        node.args["distinct"].set("on", exp.Tuple(expressions=[text(e.unalias().copy()) for e in node.expressions]))
    return node


def _q(name: str) -> str:
    from dwctl.render.text import sql_ident

    return sql_ident(name)


def _lit(text: str) -> str:
    """A DuckDB string literal: quotes doubled. (Not render.sql_string: DuckDB keeps backslashes as they are.)"""
    return "'" + text.replace("'", "''") + "'"


# --- the run ----------------------------------------------------------------------------------
class VerifyStorage:
    """The job's storage: the landed files from the folder, manifests written to a work folder."""

    def __init__(self, landing: LocalLanding, workdir: Path):
        self.landing, self.workdir = landing, workdir

    def list(self, prefix: str):
        return self.landing.list(prefix)

    def tail(self, key: str, size: int) -> bytes:
        """The file's last `size` bytes, as S3 GetObject with Range bytes=-size gives them."""
        with open(self.landing.path(key), "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read()

    def put(self, key: str, body: str, content_type: str) -> str:
        path = self.workdir / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
        return str(path)


class DuckDBWarehouse:
    """The job's warehouse interface on DuckDB: statements transpiled, a batch in one transaction.

    The job merges tables concurrently (load_job.run, --concurrency): each thread gets a connection of
    its own to the one database (DuckDB's cursor()), and its transactions follow Redshift's rules for
    concurrent ones (dwctl/warehouse/concurrency.py): LOCK and writes wait for the table's lock, and a
    commit that Redshift would abort as not serializable fails with Redshift's ERROR 1023."""

    def __init__(self, con, transpiler, transactions=None):
        """transpiler: a Transpiler on `con` (one thread), or a function making one for a connection."""
        from dwctl.warehouse.concurrency import Transactions

        self.base, self.transpiler_for = con, transpiler
        self.transactions = transactions or Transactions()
        self.local = threading.local()
        self.setup = threading.Lock()
        self.owner = threading.get_ident()
        self.fixed = transpiler if isinstance(transpiler, Transpiler) else None  # one thread, on `con`

    def sleep(self, seconds: float) -> None:
        """The job's pause before it retries an aborted transaction: a token one here."""
        import time

        time.sleep(min(seconds, 0.01))

    @property
    def con(self):
        if self.fixed is not None:
            return self.base
        if getattr(self.local, "con", None) is None:
            with self.setup:  # DuckDB catalog changes (the verifier's own views) one at a time
                owner = self.owner == threading.get_ident()  # the caller's thread keeps the caller's connection
                self.local.con = self.base if owner else self.base.cursor()
                self.local.con.execute("SET TimeZone = 'UTC'")
                self.local.transpile = self.transpiler_for(self.local.con)
        return self.local.con

    @property
    def transpile(self):
        if self.fixed is not None:
            return self.fixed
        self.con  # noqa: B018 (creates the thread's connection and transpiler)
        return self.local.transpile

    def statements(self, sql: str, params: dict) -> list:
        rows: list = []
        for statement in self.transpile(sql):
            used = {k: v for k, v in params.items() if f"${k}" in statement}
            rows = self.con.execute(statement, used or None).fetchall()
        return rows

    def session(self) -> None:
        """A new Data API session: session settings (SET) back to Redshift's defaults."""
        self.con.execute(f"RESET VARIABLE {DEDUP}")

    def query(self, sql: str, **params) -> list[list]:
        from dwctl.warehouse.load_job import JobError

        self.session()
        try:
            return [list(r) for r in self.statements(sql, params)]
        except Exception as exc:  # duckdb.Error: the SQL or the data is wrong; say which
            raise JobError(f"failed in DuckDB: {exc}\n  statement: {sql[:600]}") from None

    def execute(self, sql: str, **params) -> None:
        """One statement in a transaction of its own (the Data API's ExecuteStatement), not a block."""
        self.transaction([(sql, params)], "statement", block=False)

    def batch(self, statements: list[str], name: str) -> None:
        """One transaction, as a Data API batch: all statements or none, and no more of them than the
        Data API takes in one batch (load_job.check_batch)."""
        from dwctl.warehouse.load_job import check_batch

        check_batch(statements, name)
        self.transaction([(s, {}) for s in statements], name)

    def transaction(self, statements: list[tuple[str, dict]], name: str, block: bool = True) -> None:
        from dwctl.warehouse.concurrency import SerializationAbort, Transaction, locked_tables, tables_touched
        from dwctl.warehouse.load_job import JobError

        con, txn, began = self.con, Transaction(), False
        self.session()
        self.transpile.in_transaction = block  # BatchExecuteStatement: one transaction block
        try:
            for statement, params in statements:
                try:
                    locked = locked_tables(statement)
                    if locked is not None:
                        self.transactions.lock(txn, locked)
                        continue
                    if not began:  # the snapshot: the first statement after any LOCK (c_serial_isolation)
                        con.execute("BEGIN TRANSACTION")
                        self.transactions.snapshot(txn)
                        began = True
                    reads, writes = tables_touched(statement)
                    self.transactions.lock(txn, sorted(writes))
                    txn.reads |= reads
                    txn.writes |= writes
                    self.statements(statement, params)
                except Exception as exc:  # duckdb.Error, a Redshift check the verifier adds (ToolError), an abort
                    _rollback(con)
                    raise JobError(f"{name}: failed: {_as_redshift(exc)}\n  statement: {statement[:600]}") from None
            if began:
                try:
                    self.transactions.commit(txn, lambda: con.execute("COMMIT"))
                except Exception as exc:
                    _rollback(con)
                    raise JobError(f"{name}: failed: {_as_redshift(exc)}") from None
        finally:
            self.transpile.in_transaction = False
            self.transactions.release(txn)


def _as_redshift(exc: Exception) -> str:
    """DuckDB's own write-write conflict between concurrent transactions is one Redshift reports as
    ERROR 1023 (a transaction that wrote a table another changed since its snapshot)."""
    text = str(exc)
    if "Conflict" in text and "TransactionContext" in text:
        return f"ERROR: 1023 DETAIL: Serializable isolation violation ({text})"
    return text


class Verifier:
    """One DuckDB database playing the warehouse; `run` is one scheduled run of the load job."""

    def __init__(self, spec, con, workdir: Path, spec_name: str = "<spec>", files: dict[str, str] | None = None):
        """files: the spec's rendered tree, when the caller has rendered it already."""
        from dwctl.render.engine import render
        from dwctl.warehouse import load_job

        self.spec, self.con, self.workdir = spec, con, workdir
        con.execute("SET TimeZone = 'UTC'")  # TIMESTAMPTZ shown in UTC, as Redshift shows it
        self.files = dict(files) if files is not None else render(spec, spec_name)
        self.job = load_job
        self.config = load_job.Config.from_json(self.files[JOB_CONFIG])
        self.runs = 0
        self.concurrency = load_job.DEFAULT_CONCURRENCY
        self.transpiled: dict[str, list[str]] = {}
        self.log: list[str] = []

    def run(self, data_dir: Path, retry_quarantined: bool = False, statistics=None) -> dict[str, int]:
        """One run of the load job on the folder; returns table -> files merged. Quarantined files
        make it raise ToolError after every other table is loaded, as the job fails in AWS.
        statistics: DMS's table statistics (DescribeTableStatistics responses, as `aws dms
        describe-table-statistics` prints them, or the job's own function reading them), which the job
        reads in AWS; None: reloads are found by their files' names only."""
        from dwctl.spec.naming import target_name

        spec, job = self.spec, self.job
        landing = LocalLanding.at(data_dir, spec.landing.prefix, {target_name(t.schema_) for t in spec.tables})
        self.runs += 1
        workdir = self.workdir / f"run{self.runs:05d}"
        storage = VerifyStorage(landing, workdir)
        declared = self.declared()
        warehouse = DuckDBWarehouse(self.con, lambda con: Transpiler(con, landing, self.transpiled, declared))
        # At the job's own concurrency: concurrent batches follow Redshift's rules (DuckDBWarehouse).
        args = {"landing_bucket": VERIFY_BUCKET, "manifest_prefix": "_dwctl_manifests", "copy_role_arn": VERIFY_ROLE,
                "JOB_RUN_ID": f"verify{self.runs:05d}", "concurrency": str(self.concurrency),
                "retry_quarantined": "true" if retry_quarantined else "false"}
        discovery = job.ListingDiscovery(storage, warehouse, self.config)
        try:
            if statistics is not None and not callable(statistics):
                pages = statistics
                statistics = lambda: job.table_load_starts(pages, self.config)  # noqa: E731
            return job.run(args, storage, warehouse, self.config, discovery, log=self.log.append, statistics=statistics)
        except job.JobError as exc:
            raise ToolError(str(exc)) from None

    def declared(self) -> dict[tuple[str, str], list[tuple]]:
        """The staging tables' columns and Redshift types, as the rendered DDL declares them, with
        each column's name in the landed files and, for a column the source renamed, its old name."""
        from dwctl.render.engine import table_view
        from dwctl.spec.landed_layout import LOAD_SUFFIX

        out = {}
        for table in self.spec.tables:
            renamed = {c.name: c.renamed_from for c in table.columns if c.renamed_from}
            for unit in table_view(self.spec, table).units:  # a partitioned table's partitions
                columns = [(c.name, c.staging_type, c.parquet_name, renamed.get(c.name)) for c in unit.landed]
                for name in (unit.name, unit.name + LOAD_SUFFIX):
                    out[(self.spec.warehouse.staging_schema, name)] = columns
        return out

    def quarantined(self) -> list[tuple]:
        """(table, s3_key, reason) of every quarantined file."""
        staging = _q(self.spec.warehouse.staging_schema)
        from dwctl.spec.landed_layout import QUARANTINE_TABLE

        return self.con.execute(f'SELECT "table_name", "s3_key", "reason" FROM {staging}.{_q(QUARANTINE_TABLE)} '
                                'ORDER BY 1, 2').fetchall()

    def queries(self) -> dict[str, str]:
        """Analytics table name -> a SELECT of its rows in a stable order: every table of the spec, each
        followed by its history table (history: true), whose versions are ordered by key and validity."""
        schema = _q(self.spec.warehouse.analytics_schema)
        found = {}
        for table in self.spec.tables:
            order = ", ".join(_q(k) for k in table.primary_key)
            found[table.name] = f"SELECT * FROM {schema}.{_q(table.name)} ORDER BY {order}"
            if table.history:
                name = table.name + HISTORY_SUFFIX
                found[name] = f'SELECT * FROM {schema}.{_q(name)} ORDER BY {order}, "dwctl_version"'
        return found

    def fetch(self, name: str) -> tuple[list[str], list[tuple]]:
        """Column names and rows of one analytics table (a name of `queries`)."""
        cur = self.con.execute(self.queries()[name])
        return [d[0] for d in cur.description], cur.fetchall()

    def analytics(self, table) -> tuple[list[str], list[tuple]]:
        """Column names and rows of one analytics table, ordered by primary key."""
        return self.fetch(table.name)

    def history(self, table) -> tuple[list[str], list[tuple]]:
        """Column names and rows of a table's history (history: true), ordered by key and validity."""
        return self.fetch(table.name + HISTORY_SUFFIX)

    def export(self, out_dir: Path, fmt: str) -> list[Path]:
        """Write every analytics table, history tables included, as <name>.<fmt>."""
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name, query in self.queries().items():
            path = out_dir / f"{name}.{fmt}"
            option = "FORMAT csv, HEADER" if fmt == "csv" else "FORMAT parquet"
            self.con.execute(f"COPY ({query}) TO {_lit(str(path))} ({option})")
            written.append(path)
        return written


def _rollback(con) -> None:
    """Abandon a half-run merge file (DuckDB keeps a failed transaction open until told)."""
    try:
        con.execute("ROLLBACK")
    except Exception:  # no transaction was open
        pass
