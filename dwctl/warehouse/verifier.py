"""Run the rendered warehouse SQL on local DMS files in DuckDB, to prove the merge gives the source's state.

Nothing here re-implements the load or the merge. The spec is rendered in memory; the files
to load are chosen, and the COPY manifests written, by the functions of the load job
(dwctl/warehouse/load_job.py, shipped as iac/glue_scripts/load_job.py) reading the rendered
iac/glue_scripts/load_job_config.json; the statements executed are those of
sql/01, sql/02 and sql/03_merge_<table>.sql, transpiled Redshift -> DuckDB by sqlglot with these
documented rewrites, each the smallest DuckDB can run:

  COPY ... FORMAT PARQUET MANIFEST  -> INSERT INTO t (all columns) SELECT the same names FROM
                                       read_parquet(the manifest's files), after checking each
                                       file's columns are the table's, in order (Redshift maps
                                       Parquet columns by position)
  COPY ... (cols) FORMAT CSV        -> INSERT INTO t (cols) SELECT FROM read_csv(the file)
  SUPER                             -> JSON (JSON_PARSE becomes json(), which also validates)
  VARBYTE(n)                        -> BLOB
  DISTKEY / SORTKEY / DISTSTYLE     -> dropped (physical layout only)

Anything else sqlglot cannot express in DuckDB is an error, never silently dropped.
"""

from __future__ import annotations

import json
import os
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

    def list(self, prefix: str, start_after: str) -> list[tuple[str, int]]:
        """(key, size) under prefix, after start_after, in key order: what S3 ListObjectsV2 returns."""
        folder = self.path(prefix)
        if not folder.is_dir():
            return []
        found = []
        for dirpath, _, names in os.walk(folder):
            for name in names:
                full = Path(dirpath) / name
                key = self.key_prefix + full.relative_to(self.root).as_posix()
                if key > start_after:
                    found.append((key, full.stat().st_size))
        return sorted(found)

    def resolve_url(self, url: str) -> Path:
        head = f"s3://{VERIFY_BUCKET}/"
        if not url.startswith(head):
            raise ToolError(f"{url}: manifest entry outside the verifier's bucket")
        return self.path(url[len(head):])


# --- Redshift -> DuckDB -----------------------------------------------------------------------
class Transpiler:
    """Turns one Redshift statement into DuckDB statements (see the module docstring for the rewrites)."""

    def __init__(self, con, landing: LocalLanding, cache: dict[str, list[str]] | None = None):
        self.con, self.landing = con, landing
        self.cache = {} if cache is None else cache  # statements without COPY transpile the same every run

    def __call__(self, sql: str) -> list[str]:
        import sqlglot
        from sqlglot import exp
        from sqlglot.errors import ErrorLevel

        if sql in self.cache:
            return self.cache[sql]
        out, has_copy = [], False
        for stmt in sqlglot.parse(sql, read="redshift"):
            if stmt is None:
                continue
            if isinstance(stmt, exp.Copy):
                out.append(self.copy(stmt))
                has_copy = True
                continue
            stmt = stmt.transform(_duckdb_types)
            if isinstance(stmt, exp.Create) and stmt.args.get("properties"):
                props = [p for p in stmt.args["properties"].expressions
                         if not isinstance(p, (exp.DistKeyProperty, exp.SortKeyProperty, exp.DistStyleProperty))]
                stmt.set("properties", exp.Properties(expressions=props) if props else None)
            out.append(stmt.sql("duckdb", unsupported_level=ErrorLevel.RAISE))
        if not has_copy:
            self.cache[sql] = out
        return out

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
            for path in files:
                self.check_layout(path, table_columns, name)
            listing = "[" + ", ".join(_lit(p) for p in files) + "]"
            return f"INSERT INTO {name} ({select}) SELECT {select} FROM read_parquet({listing}, union_by_name = true)"
        if fmt == "CSV" and "MANIFEST" not in params:
            spec = ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in columns)
            return (f"INSERT INTO {name} ({select}) SELECT {select} FROM read_csv({_lit(str(source))}, "
                    f"header = false, columns = {{{spec}}})")
        raise ToolError(f"COPY into {name}: format {fmt} is not one the verifier can stand in for")

    def columns_of(self, schema: str, table: str) -> list[str]:
        rows = self.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position", [schema, table]).fetchall()
        return [r[0] for r in rows]

    def check_layout(self, path: str, columns: list[str], name: str) -> None:
        found = [r[0] for r in self.con.execute(f"DESCRIBE SELECT * FROM read_parquet({_lit(path)})").fetchall()]
        if [c.lower() for c in found] != [c.lower() for c in columns]:
            raise ToolError(f"{path}: columns {found} do not match {name} {columns}: "
                            f"Redshift COPY maps Parquet columns by position")


def _duckdb_types(node):
    from sqlglot import exp

    if isinstance(node, exp.DataType):
        if node.this == exp.DataType.Type.SUPER:
            return exp.DataType.build("JSON")
        if node.this in (exp.DataType.Type.VARBINARY, exp.DataType.Type.BINARY):
            return exp.DataType.build("BLOB")
    return node


def _q(name: str) -> str:
    from dwctl.render.text import sql_ident

    return sql_ident(name)


def _lit(text: str) -> str:
    """A DuckDB string literal: quotes doubled. (Not render.sql_string: DuckDB keeps backslashes as they are.)"""
    return "'" + text.replace("'", "''") + "'"


# --- the run ----------------------------------------------------------------------------------
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
        self.transpiled: dict[str, list[str]] = {}

    def execute(self, path: str, sql: str, transpile: Transpiler, params: dict | None = None) -> list:
        rows: list = []
        for statement in transpile(sql):
            used = {k: v for k, v in (params or {}).items() if f"${k}" in statement}
            try:
                rows = self.con.execute(statement, used or None).fetchall()
            except Exception as exc:  # duckdb.Error: the SQL or the data is wrong; say which
                _rollback(self.con)
                raise ToolError(f"{path}: failed in DuckDB: {exc}\n  statement: {statement[:600]}") from None
        return rows

    def run(self, data_dir: Path) -> dict[str, int]:
        """Load and merge every file not loaded before; returns table -> files merged."""
        spec = self.spec
        landing = LocalLanding.at(data_dir, spec.landing.prefix, {t.schema_ for t in spec.tables})
        transpile = Transpiler(self.con, landing, self.transpiled)
        job, config = self.job, self.config
        for statement in job.split_statements(self.files["sql/01_create_tables.sql"]):
            self.execute("sql/01_create_tables.sql", statement, transpile)
        self.runs += 1
        merged = {}
        for table in spec.tables:
            prefix = config.tables[table.name]
            watermark = self.execute(JOB_SCRIPT, config.watermark_sql, transpile, {"table_name": table.name})[0][0]
            since = job.lookback_key(prefix, watermark)
            loaded = {r[0] for r in self.execute(JOB_SCRIPT, config.loaded_sql, transpile,
                                                 {"table_name": table.name, "since": since})}
            files = job.plan_files(landing.list(prefix, since), loaded, config.full_load_prefix)
            merged[table.name] = len(files)
            if not files:
                continue
            base = self.workdir / f"run{self.runs:05d}-{table.name}"
            manifest, listing = base.with_suffix(".manifest"), base.with_suffix(".files.csv")
            manifest.write_text(job.manifest_document(VERIFY_BUCKET, files), encoding="utf-8")
            listing.write_text(job.files_csv(table.name, files), encoding="utf-8")
            values = {"iam_role": VERIFY_ROLE, f"manifest:{table.name}": str(manifest),
                      f"files:{table.name}": str(listing)}
            for statement in job.load_statements(self.files["sql/02_load_staging.sql"], table.name):
                self.execute("sql/02_load_staging.sql", job.substitute(statement, values), transpile)
            merge = f"sql/03_merge_{table.name}.sql"
            for statement in job.split_statements(self.files[merge]):
                self.execute(merge, statement, transpile)
        return merged

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
                found[name] = f'SELECT * FROM {schema}.{_q(name)} ORDER BY {order}, "valid_from", "valid_to" NULLS LAST'
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
