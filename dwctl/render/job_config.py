"""The load job's per-spec data: iac/glue_scripts/load_job_config.json.

The job itself (dwctl/warehouse/load_job.py) is the same Python for every spec; this document
carries what varies: each table's landing prefix and merge SQL, the create and load SQL (the
very text of the rendered sql/ files, one string per line so a diff shows changed lines), and
the job's bookkeeping queries on the load log and the quarantine. `format` versions the
contract between the two files.
"""

from __future__ import annotations

import json

from dwctl.render.text import sql_ident
from dwctl.spec import landed_layout as layout
from dwctl.spec.model import Spec

FORMAT = 2  # dwctl.warehouse.load_job.CONFIG_FORMAT reads this
# "The maximum query statement size is 100 KB" (Amazon Redshift Management Guide, data-api.html,
# "Considerations when calling the Amazon Redshift Data API").
MAX_STATEMENT_BYTES = 100_000
PATH = "iac/glue_scripts/load_job_config.json"


def queries(spec: Spec) -> dict[str, str]:
    """The job's own statements (Data API named parameters :name)."""
    staging = sql_ident(spec.warehouse.staging_schema)
    log = f"{staging}.{sql_ident(layout.LOAD_LOG_TABLE)}"
    quarantine = f"{staging}.{sql_ident(layout.QUARANTINE_TABLE)}"
    ddl = f"{staging}.{sql_ident(layout.DDL_TABLE)}"
    load_like = f"'%/{layout.FULL_LOAD_PREFIX}%'"
    return {
        "known_files": f'SELECT "s3_key", "etag" FROM {log} WHERE "table_name" = :table_name '
                       f'UNION ALL SELECT "s3_key", "etag" FROM {quarantine} WHERE "table_name" = :table_name',
        "load_history": f'SELECT MAX(CASE WHEN "s3_key" LIKE {load_like} THEN "s3_key" END), '
                        f'COUNT(CASE WHEN "s3_key" NOT LIKE {load_like} THEN 1 END), '
                        f'(SELECT COUNT(*) FROM {quarantine} WHERE "table_name" = :table_name AND "s3_key" LIKE {load_like}) '
                        f'FROM {log} WHERE "table_name" = :table_name',
        "quarantine": f'INSERT INTO {quarantine} ("table_name", "s3_key", "etag", "size", "reason", "quarantined_at") '
                      f'SELECT :table_name, :s3_key, :etag, CAST(:size AS BIGINT), :reason, GETDATE() '
                      f'WHERE NOT EXISTS (SELECT 1 FROM {quarantine} WHERE "table_name" = :table_name '
                      f'AND "s3_key" = :s3_key AND "etag" = :etag)',
        "quarantined": f'SELECT "table_name", "s3_key", "etag", "size" FROM {quarantine} '
                       f'ORDER BY "table_name", "s3_key", "etag"',
        "release_quarantine": f'DELETE FROM {quarantine} WHERE "table_name" = :table_name',
        "quarantine_list": f'SELECT "table_name", "s3_key", "etag", "quarantined_at", "reason" FROM {quarantine} '
                           f'ORDER BY "table_name", "s3_key", "etag"',
        "skip_quarantined": [
            f'INSERT INTO {log} ("table_name", "s3_key", "etag", "loaded_at") SELECT "table_name", "s3_key", "etag", '
            f"GETDATE() FROM {quarantine} WHERE \"s3_key\" = '${{s3_key}}'",
            f"DELETE FROM {quarantine} WHERE \"s3_key\" = '${{s3_key}}'"],
        "ddl_applied": f'SELECT "ddl_hash" FROM {ddl}',
        "record_ddl": [f"DELETE FROM {ddl}", f"INSERT INTO {ddl} (\"ddl_hash\", \"applied_at\") VALUES ('${{ddl_hash}}', GETDATE())"],
    }


def check_statement_sizes(spec: Spec, sql: dict[str, str]) -> None:
    """Every statement the job sends must fit the Data API: say which table is too wide, at render time."""
    from dwctl.errors import SpecError

    problems = []
    for i, table in enumerate(spec.tables):
        path = f"sql/03_merge_{table.name}.sql"
        # statements end with ";" at a line's end (comment lines count too: an upper bound)
        longest = max(len(s.encode("utf-8")) for s in sql[path].split(";\n"))
        if longest > MAX_STATEMENT_BYTES:
            problems.append(f"tables[{i}]: {path} has a statement of {longest:,} bytes; the Redshift Data API "
                            f"takes at most {MAX_STATEMENT_BYTES:,} bytes per statement: split the table's "
                            "columns, or shorten their names")
    if problems:
        raise SpecError(problems)


def document(spec: Spec, sql: dict[str, str], tables, note: str) -> str:
    """The config JSON; `sql` holds the rendered sql/ bodies (without headers), `tables` the table views."""
    check_statement_sizes(spec, sql)
    doc = {
        "//": note,
        "format": FORMAT,
        "full_load_prefix": layout.FULL_LOAD_PREFIX,
        "create_sql": sql["sql/01_create_tables.sql"].split("\n"),
        "load_sql": sql["sql/02_load_staging.sql"].split("\n"),
        "tables": {t.name: {"prefix": t.s3_prefix + "/",
                            "merge_sql": sql[f"sql/03_merge_{t.name}.sql"].split("\n")} for t in tables},
        "queries": queries(spec),
    }
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
