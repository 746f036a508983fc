"""The load job's per-spec data: iac/glue_scripts/load_job_config.json.

The job itself (dwctl/warehouse/load_job.py) is the same Python for every spec; this document
carries what varies: each table's landing prefix and merge SQL, the create and load SQL (the
very text of the rendered sql/ files, one string per line so a diff shows changed lines), and
the job's bookkeeping queries on the load log and the quarantine. `format` versions the
contract between the two files.

Compact (format 7): tables of one shape have merge SQL that differs only in the table's name, so
the document holds each distinct merge SQL once, with the table's name cut out (`merge_templates`),
and each table the index of its template; the job's expanded_config puts the name back, giving the
very document format 6 spelled out (at 1,000 tables of one shape: 32 MB -> a few MB). And the
document is written by json's C encoder with a line per item, commas leading (text(): indent= would
select the pure-Python encoder, seconds at 1,000 tables).
"""

from __future__ import annotations

import json

from dwctl.render.text import sql_ident, sql_string
from dwctl.spec import landed_layout as layout
from dwctl.spec.model import HISTORY_SUFFIX, Spec

FORMAT = 7  # dwctl.warehouse.load_job.CONFIG_FORMAT reads this
# "The maximum query statement size is 100 KB" (Amazon Redshift Management Guide, data-api.html,
# "Considerations when calling the Amazon Redshift Data API").
MAX_STATEMENT_BYTES = 100_000
PATH = "iac/glue_scripts/load_job_config.json"
# What the migrations compare the warehouse with, alone (templates/iac/loader_job.tf.j2, loader_columns):
# Terraform keeps it in its state, so a plan knows the columns the deployed job brought the warehouse to.
COLUMNS_PATH = "iac/glue_scripts/warehouse_columns.json"


def queries(spec: Spec) -> dict[str, str]:
    """The job's own statements (Data API named parameters :name)."""
    staging = sql_ident(spec.warehouse.staging_schema)
    log = f"{staging}.{sql_ident(layout.LOAD_LOG_TABLE)}"
    quarantine = f"{staging}.{sql_ident(layout.QUARANTINE_TABLE)}"
    ddl = f"{staging}.{sql_ident(layout.DDL_TABLE)}"
    fresh = f"{staging}.{sql_ident(layout.FRESHNESS_TABLE)}"
    generations = f"{staging}.{sql_ident(layout.GENERATIONS_TABLE)}"
    deleted = f"{staging}.{sql_ident(layout.DELETED_TABLE)}"
    latest = f'(SELECT "table_name", MAX("generation") AS "generation" FROM {generations} GROUP BY "table_name") AS "g"'
    # when each quarantined file's key was last merged (in any version)
    merged_again = (f'(SELECT "l"."table_name", "l"."s3_key", MAX("l"."loaded_at") AS "loaded_at" FROM {log} AS "l" '
                    f'JOIN {quarantine} AS "o" ON "o"."table_name" = "l"."table_name" AND "o"."s3_key" = "l"."s3_key" '
                    f'GROUP BY "l"."table_name", "l"."s3_key") AS "m"')
    schemas = f"{sql_string(spec.warehouse.staging_schema)}, {sql_string(spec.warehouse.analytics_schema)}"
    # A full-load file: .../LOAD*, .../<segment or partition>/LOAD* or .../SEGMENTn_LOAD*
    # (dwctl.warehouse.load_job.full_load_stream); CDC files are named by time.
    prefix = layout.FULL_LOAD_PREFIX
    is_load = f"(\"s3_key\" LIKE '%/{prefix}%' OR \"s3_key\" LIKE '%/SEGMENT%{prefix}%')"
    return {
        "known_files": f'SELECT "s3_key", "etag" FROM {log} WHERE "table_name" = :table_name '
                       f'UNION ALL SELECT "s3_key", "etag" FROM {quarantine} WHERE "table_name" = :table_name',
        # newest LOAD key, CDC files merged, LOAD files quarantined, 1 when a CDC file was merged
        # with or after the newest LOAD file (the latest full load is complete: load_job.is_reload),
        # and when the latest full load here began (compared with DMS's: load_job.TableLoad.merge)
        "load_history": f'SELECT MAX(CASE WHEN {is_load} THEN "s3_key" END), '
                        f'COUNT(CASE WHEN NOT {is_load} THEN 1 END), '
                        f'(SELECT COUNT(*) FROM {quarantine} WHERE "table_name" = :table_name AND {is_load}), '
                        f'CASE WHEN MAX(CASE WHEN NOT {is_load} THEN "loaded_at" END) '
                        f'>= MAX(CASE WHEN {is_load} THEN "loaded_at" END) THEN 1 ELSE 0 END, '
                        f'(SELECT MAX("started_at") FROM {generations} WHERE "table_name" = :table_name) '
                        f'FROM {log} WHERE "table_name" = :table_name',
        "merged_load_files": f'SELECT "s3_key", "etag" FROM {log} WHERE "table_name" = :table_name AND {is_load}',
        "quarantine": f'INSERT INTO {quarantine} ("table_name", "s3_key", "etag", "size", "reason", "quarantined_at") '
                      f'SELECT :table_name, :s3_key, :etag, CAST(:size AS BIGINT), :reason, GETDATE() '
                      f'WHERE NOT EXISTS (SELECT 1 FROM {quarantine} WHERE "table_name" = :table_name '
                      f'AND "s3_key" = :s3_key AND "etag" = :etag)',
        "quarantined": f'SELECT "table_name", "s3_key", "etag", "size" FROM {quarantine} '
                       f'ORDER BY "table_name", "s3_key", "quarantined_at", "etag"',
        "release_quarantine": f'DELETE FROM {quarantine} WHERE "table_name" = :table_name',
        "quarantine_list": f'SELECT "table_name", "s3_key", "etag", "quarantined_at", "reason" FROM {quarantine} '
                           f'ORDER BY "table_name", "s3_key", "etag"',
        "skip_quarantined": [
            f'INSERT INTO {log} ("table_name", "s3_key", "etag", "loaded_at") SELECT "table_name", "s3_key", "etag", '
            f"GETDATE() FROM {quarantine} WHERE \"s3_key\" = '${{s3_key}}'",
            f"DELETE FROM {quarantine} WHERE \"s3_key\" = '${{s3_key}}'"],
        "ddl_applied": f'SELECT "ddl_hash" FROM {ddl}',
        # What keeps tables from being complete (load_job.Stops): each quarantined file (key, the start of
        # its reason, 1 when it is superseded: deleted from the bucket with a full load merged since, or
        # its key merged since in another version), and per table the merged files deleted with no full
        # load merged since (their count and first key).
        "stops": f'SELECT \'quarantine\', "q"."table_name", "q"."s3_key", SUBSTRING("q"."reason", 1, 300), '
                 f'CASE WHEN "d"."generation" < COALESCE("g"."generation", 0) OR "m"."loaded_at" > "q"."quarantined_at" '
                 f'THEN 1 ELSE 0 END '
                 f'FROM {quarantine} AS "q" LEFT JOIN (SELECT "table_name", "s3_key", MIN("generation") AS "generation" '
                 f'FROM {deleted} GROUP BY "table_name", "s3_key") AS "d" ON "d"."table_name" = "q"."table_name" '
                 f'AND "d"."s3_key" = "q"."s3_key" LEFT JOIN {latest} ON "g"."table_name" = "q"."table_name" '
                 f'LEFT JOIN {merged_again} ON "m"."table_name" = "q"."table_name" AND "m"."s3_key" = "q"."s3_key" '
                 f'UNION ALL SELECT \'deleted\', "d"."table_name", MIN("d"."s3_key"), CAST(COUNT(*) AS VARCHAR(20)), 0 '
                 f'FROM {deleted} AS "d" LEFT JOIN {latest} ON "g"."table_name" = "d"."table_name" '
                 f'WHERE "d"."generation" >= COALESCE("g"."generation", 0) GROUP BY "d"."table_name" '
                 f'ORDER BY 2, 1, 3',
        "release_superseded": f'DELETE FROM {quarantine} WHERE "table_name" = :table_name AND ("s3_key" IN '
                              f'(SELECT "s3_key" FROM {deleted} WHERE "table_name" = :table_name AND "generation" < '
                              f'(SELECT COALESCE(MAX("generation"), 0) FROM {generations} WHERE "table_name" = :table_name)) '
                              f'OR "s3_key" IN (SELECT "l"."s3_key" FROM {log} AS "l" JOIN {quarantine} AS "o" '
                              f'ON "o"."table_name" = "l"."table_name" AND "o"."s3_key" = "l"."s3_key" '
                              f'WHERE "l"."table_name" = :table_name AND "l"."loaded_at" > "o"."quarantined_at"))',
        "deleted_files": f'SELECT DISTINCT "s3_key" FROM {deleted} WHERE "table_name" = :table_name',
        "generation_now": f'SELECT COALESCE(MAX("generation"), 0) FROM {generations} WHERE "table_name" = :table_name',
        # + rows (table_name, s3_key, generation, GETDATE()), written by the job (load_job.record_deleted)
        "record_deleted": f'INSERT INTO {deleted} ("table_name", "s3_key", "generation", "seen_at") VALUES ',
        # The bookkeeping tables shared by every table's merge batch, locked first in each (load_job.TableLoad.merge).
        "lock_bookkeeping": "LOCK " + ", ".join(f"{staging}.{sql_ident(name)}" for name in (
            layout.LOAD_LOG_TABLE, layout.STAGED_FILES_TABLE, layout.GENERATIONS_TABLE, layout.FRESHNESS_TABLE)),
        # The warehouse's columns, which the job compares with warehouse_tables (Redshift Database
        # Developer Guide, r_SVV_COLUMNS: local and external tables' columns with their types).
        "columns": 'SELECT "table_schema", "table_name", "column_name", "data_type", "character_maximum_length", '
                   '"numeric_precision", "numeric_scale", "is_nullable" FROM "svv_columns" '
                   f'WHERE "table_schema" IN ({schemas}) ORDER BY "table_schema", "table_name", "ordinal_position"',
        # Views bound to the warehouse's tables, with the column each reads (Redshift Database Developer
        # Guide, r_DROP_TABLE, "Viewing the dependencies for a table": its find_depend query, here with the
        # column a dependency names, refobjsubid, and limited to dwctl's two schemas). A migration that
        # drops a table or a column such a view reads would fail (RESTRICT): load_job.views_in_the_way.
        "view_dependents": 'SELECT DISTINCT n_p.nspname AS schemaname, c_p.relname AS name, a.attname AS colname, '
                           'n_c.nspname AS refbyschemaname, c_c.relname AS refbyname '
                           'FROM pg_catalog.pg_class c_p JOIN pg_catalog.pg_depend d_p ON c_p.relfilenode = d_p.refobjid '
                           'JOIN pg_catalog.pg_depend d_c ON d_p.objid = d_c.objid '
                           'JOIN pg_catalog.pg_class c_c ON d_c.refobjid = c_c.relfilenode '
                           'LEFT OUTER JOIN pg_catalog.pg_namespace n_p ON c_p.relnamespace = n_p.oid '
                           'LEFT OUTER JOIN pg_catalog.pg_namespace n_c ON c_c.relnamespace = n_c.oid '
                           'LEFT OUTER JOIN pg_catalog.pg_attribute a ON a.attrelid = c_p.oid AND a.attnum = d_p.refobjsubid '
                           f"WHERE d_c.deptype = 'i'::\"char\" AND c_c.relkind = 'v'::\"char\" AND c_c.oid <> c_p.oid "
                           f'AND n_p.nspname IN ({schemas}) ORDER BY 1, 2, 4, 5',
        # The tables' sort and distribution key columns, which a migration must move off a column before it
        # drops it (load_job.read_keys; Redshift Database Developer Guide, r_SVV_REDSHIFT_COLUMNS: sortkey the
        # column's place in the sort key, 0 outside it; distkey true for the distribution key)
        "keys": 'SELECT "schema_name", "table_name", "column_name", "sortkey", "distkey" FROM "svv_redshift_columns" '
                f'WHERE "database_name" = CURRENT_DATABASE() AND "schema_name" IN ({schemas}) '
                'AND ("sortkey" <> 0 OR "distkey") ORDER BY "schema_name", "table_name", "column_name"',
        # Grants to give back when a migration drops a table or a column and makes it again (Redshift
        # Database Developer Guide, r_SVV_RELATION_PRIVILEGES, r_SVV_COLUMN_PRIVILEGES).
        "relation_privileges": 'SELECT "privilege_type", "identity_name", "identity_type", "admin_option" '
                               'FROM "svv_relation_privileges" WHERE "namespace_name" = :schema AND '
                               '"relation_name" = :table ORDER BY "identity_type", "identity_name", "privilege_type"',
        "column_privileges": 'SELECT "column_name", "privilege_type", "identity_name", "identity_type" '
                             'FROM "svv_column_privileges" WHERE "namespace_name" = :schema AND '
                             '"relation_name" = :table ORDER BY "column_name", "identity_type", "identity_name", '
                             '"privilege_type"',
        # Per table (or partition), the commit time of the newest change merged (load_job.publish_freshness;
        # dwctl status); then every older row goes (each batch adds one).
        "freshness": f'SELECT "table_name", MAX("newest_change_at") FROM {fresh} GROUP BY "table_name" ORDER BY "table_name"',
        # (Redshift's DELETE takes table names in USING, "a subquery in the WHERE clause instead": r_DELETE)
        "prune_freshness": f'DELETE FROM {fresh} WHERE EXISTS (SELECT 1 FROM {fresh} AS "n" WHERE "n"."table_name" = '
                           f'{fresh}."table_name" AND "n"."newest_change_at" > {fresh}."newest_change_at")',
        "record_ddl": [f"DELETE FROM {ddl}", f"INSERT INTO {ddl} (\"ddl_hash\", \"applied_at\") VALUES ('${{ddl_hash}}', GETDATE())"],
    }


def record_freshness(spec: Spec, table) -> str:
    """The statement the job adds to a table's batch after its COPYs (load_job.TableLoad.merge): the
    newest commit timestamp staged (TimestampColumnName: a CDC row's commit time, a full-load row's
    transfer time, AWS DMS User Guide, CHAP_Target.S3), kept as the table's freshness in the same
    transaction as the merge."""
    staging = sql_ident(spec.warehouse.staging_schema)
    at = sql_ident(layout.TIMESTAMP_COLUMN)
    staged = " UNION ALL ".join(f'SELECT {at} AS "at" FROM {staging}.{sql_ident(name)}'
                                for name in (table.name, table.name + layout.LOAD_SUFFIX))
    return (f'INSERT INTO {staging}.{sql_ident(layout.FRESHNESS_TABLE)} ("table_name", "newest_change_at", "recorded_at") '
            f'SELECT {sql_string(table.name)}, "newest", GETDATE() FROM (SELECT MAX("at") AS "newest" FROM ({staged}) '
            'AS "staged") AS "batch" WHERE "newest" IS NOT NULL')


def check_statement_sizes(spec: Spec, sql: dict[str, str], units) -> None:
    """Every statement the job sends must fit the Data API: say which table is too wide, at render time."""
    from dwctl.errors import SpecError

    problems = []
    index = {t.name: i for i, t in enumerate(spec.tables)}
    for table in units:
        i = index[table.analytics_name]
        path = f"sql/03_merge_{table.name}.sql"
        # statements end with ";" at a line's end (comment lines count too: an upper bound)
        longest = max(len(s.encode("utf-8")) for s in sql[path].split(";\n"))
        if longest > MAX_STATEMENT_BYTES:
            problems.append(f"tables[{i}]: {path} has a statement of {longest:,} bytes; the Redshift Data API "
                            f"takes at most {MAX_STATEMENT_BYTES:,} bytes per statement: split the table's "
                            "columns, or shorten their names")
    if problems:
        raise SpecError(problems)


def warehouse_tables(spec: Spec, table, column_defaults: dict[str, str], analytics_too: bool = True) -> list[dict]:
    """The warehouse tables of one unit (TableView: a spec table or a partition) with the columns
    01_create_tables.sql gives them: what the load job's migrations compare the warehouse with.
    `empty`: a staging or work table, empty between merges (created again when it differs); `fixed`:
    key, dist and sort columns, whose type Redshift does not change in place; column_defaults
    (defaults()) go with the analytics tables, which only one unit of a table lists (analytics_too),
    so a migration runs once."""
    staging, analytics = spec.warehouse.staging_schema, spec.warehouse.analytics_schema
    version = ("dwctl_version", f"VARCHAR({table.version_length})", False)
    landed = [(c.name, c.staging_type, True) for c in table.landed]
    keys = [(c.name, c.staging_type, False) for c in table.landed_keys]
    columns = [(c.name, c.redshift_type, c.nullable) for c in table.columns]
    fixed = sorted(set(table.primary_key) | set(table.sort_keys) | ({table.dist_key} if table.dist_key else set()))
    parts = [(staging, table.name, landed, True), (staging, table.name + layout.LOAD_SUFFIX, landed, True),
             (staging, table.name + layout.KEYS_SUFFIX, keys + [version, ("dwctl_deleted", "BOOLEAN", False)], False),
             (staging, table.name + layout.WORK_SUFFIX, landed + [version, ("dwctl_rank", "BIGINT", False),
                                                           ("dwctl_copy", "BIGINT", False),
                                                           ("dwctl_apply", "BOOLEAN", False)], True),
             *([(analytics, table.analytics_name, columns, False)] if analytics_too else [])]
    if spec.table(table.analytics_name).history:
        parts += [(staging, table.name + layout.DELETES_SUFFIX, keys + [version, ("dwctl_commit_ts", "VARCHAR(26)", False)], False)]
        parts += [(analytics, table.analytics_name + HISTORY_SUFFIX, columns + [
            ("valid_from", "TIMESTAMP", False), ("valid_to", "TIMESTAMP", True), ("is_current", "BOOLEAN", False),
            ("dwctl_op", "CHAR(1)", False), version], False)] if analytics_too else []
    renames = renamed_from(spec, table)
    return [{"schema": schema, "name": name, "columns": [list(c) for c in cols], "empty": empty, "fixed": fixed,
             "aside_suffix": layout.WORK_MARK + "_aside",
             **({"defaults": column_defaults} if column_defaults and schema == analytics else {}),
             **_renamed_in(cols, renames, empty)}
            for schema, name, cols, empty in parts]


def renamed_from(spec: Spec, table) -> dict[str, str]:
    """{column: its old name} of the unit's columns the source renamed (`renamed_from:`): the job renames
    them in the warehouse (load_job.plan_renames) and reads files landed under the old name by the new one."""
    return {c.name: c.renamed_from for c in spec.table(table.analytics_name).columns
            if c.renamed_from is not None and not c.exclude}


def _renamed_in(columns, renames: dict[str, str], empty: bool) -> dict:
    """The part's renames (only a table that keeps rows has columns to rename)."""
    mine = {n: renames[n] for n, _, _ in columns if n in renames}
    return {"renamed": mine} if mine and not empty else {}


def defaults(spec: Spec, table) -> dict[str, str]:
    """{column: SQL literal of its analytics type} of the table's columns with a `default:`."""
    from dwctl.spec.column_default import sql_literal

    given = {c.name: c.default for c in spec.table(table.analytics_name).columns if c.default is not None and not c.exclude}
    return {c.name: sql_literal(given[c.name], c.redshift_type) for c in table.columns if c.name in given}


def _table_entry(spec: Spec, sql: dict[str, str], t) -> dict:
    """One unit's part of the config: a spec table, or a partition with the table it merges into
    (`target`; the first partition's entry lists the analytics tables)."""
    found = defaults(spec, t)
    owner = not t.target or spec.table(t.target).part_names[0] == t.name
    folder = t.s3_prefix.rstrip("/").split("/")
    return {"prefix": t.s3_prefix + "/",
            **({"target": t.target} if t.target else {}),
            # the names DMS's table statistics may give the table: the source's, or the landed folder's
            "dms_names": [[t.schema, t.source_name or t.name], folder[-2:]],
            "landed": [[c.name, c.staging_type] + ([c.parquet_name] if c.parquet_name != c.name else [])
                       for c in t.landed],
            "warehouse_tables": warehouse_tables(spec, t, found, owner),
            **({"defaults": found} if found else {}),
            "record_freshness": record_freshness(spec, t),
            **({"renamed_from": renames} if (renames := renamed_from(spec, t)) else {})}


def merge_templates(sql: dict[str, str], units) -> tuple[list[list], dict[str, int]]:
    """(templates, {unit: its template's index}): each distinct merge SQL once, with the unit's name cut
    out: a template is the SQL's lines, each a string or, where the name occurs, the pieces between its
    occurrences (load_job.expanded_config joins them with the name). Exact for any text: name.join(
    line.split(name)) is the line. Two units share a template when their SQL split at their names is
    the same; as names are identifiers (no newline), splitting line by line cuts at the same places."""
    templates: list[list] = []
    seen: dict[tuple[str, ...], int] = {}
    index: dict[str, int] = {}
    for t in units:
        text = sql[f"sql/03_merge_{t.name}.sql"]
        shape = tuple(text.split(t.name))
        if shape not in seen:
            seen[shape] = len(templates)
            templates.append([line.split(t.name) if t.name in line else line for line in text.split("\n")])
        index[t.name] = seen[shape]
    return templates, index


def record_keys(doc: dict) -> None:
    """Each warehouse table's sort and dist key as its CREATE TABLE renders them (read by the job's own
    parser), so that `dwctl plan` knows the keys the last apply gave a table, as the job reads them from
    the warehouse (SVV_REDSHIFT_COLUMNS), when a migration has to move a key off a column."""
    from dwctl.render.migration_plan import _job

    job = _job()
    create = "\n".join(doc["create_sql"])
    for table in doc["tables"].values():
        for part in table["warehouse_tables"]:
            _, sort, dist = job["table_keys"](job["create_statement"](create, part["schema"], part["name"]))
            part["keys"] = [sort, dist]


def documents(spec: Spec, sql: dict[str, str], units, note: str) -> tuple[str, str]:
    """(the config JSON, the warehouse columns JSON); `sql` holds the rendered sql/ bodies (without
    headers), `units` the views that load on their own (engine.units). The columns document holds
    each unit's warehouse_tables in the config's own shape ({"tables": {name: {"warehouse_tables":
    [...]}}}), so one reader takes either file."""
    check_statement_sizes(spec, sql, units)
    doc = {
        "//": note,
        "format": FORMAT,
        "full_load_prefix": layout.FULL_LOAD_PREFIX,
        "staging_schema": spec.warehouse.staging_schema,
        "load_suffix": layout.LOAD_SUFFIX,
        "layout_suffix": layout.WORK_MARK + "_l",  # + a unique tag: a staging table for files of another layout
        "prestage_suffix": layout.PRESTAGE_SUFFIX,
        "generations_table": f"{sql_ident(spec.warehouse.staging_schema)}.{sql_ident(layout.GENERATIONS_TABLE)}",
        "create_sql": sql["sql/01_create_tables.sql"].split("\n"),
        "load_sql": sql["sql/02_load_staging.sql"].split("\n"),
        "analytics_schema": spec.warehouse.analytics_schema,
        "tables": {t.name: _table_entry(spec, sql, t) for t in units},
        "queries": queries(spec),
        # Spec tables with a freshness alarm of their own: the pipeline's freshness metric leaves them out.
        "freshness_own_alarm": sorted(t.name for t in spec.tables if t.freshness_minutes is not None),
    }
    record_keys(doc)
    columns = {"//": note, "tables": {name: {"warehouse_tables": table["warehouse_tables"]}
                                      for name, table in doc["tables"].items()}}
    templates, index = merge_templates(sql, units)
    for name, table in doc["tables"].items():
        table["merge_template"] = index[name]
    doc["merge_templates"] = templates
    return text(doc), text(columns)


def text(doc: dict, sort_keys: bool = False) -> str:
    """JSON with a line per item, commas leading, each top-level container's brackets on lines of their
    own: adding a table (at the end of the spec) only adds lines, as indent= did. Written by json's C
    encoder (indent= selects the pure-Python one: seconds at 1,000 tables); a newline in a string is
    written \\n, so every line break is a separator."""
    def value(v) -> str:
        encoded = json.dumps(v, ensure_ascii=False, separators=("\n,", ": "), sort_keys=sort_keys)
        return f"{encoded[0]}\n{encoded[1:-1]}\n{encoded[-1]}" if isinstance(v, (dict, list)) and v else encoded
    return "{\n" + "\n,".join(f"{json.dumps(k, ensure_ascii=False)}: {value(v)}" for k, v in (sorted(doc.items()) if sort_keys else doc.items())) + "\n}\n"
