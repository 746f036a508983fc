{% set staging = spec.warehouse.staging_schema | ident %}
{% set log = staging ~ "." ~ (layout.LOAD_LOG_TABLE | ident) %}
{% set load_like = "'%/" ~ layout.FULL_LOAD_PREFIX ~ "%'" %}
{% set create_sql = sql["sql/01_create_tables.sql"] %}
{% set load_sql = sql["sql/02_load_staging.sql"] %}
{% set watermark_sql %}
SELECT MAX("s3_key") FROM {{ log }} WHERE "table_name" = :table_name AND "s3_key" NOT LIKE {{ load_like }}
{% endset %}
{% set loaded_sql %}
SELECT "s3_key" FROM {{ log }} WHERE "table_name" = :table_name AND ("s3_key" >= :since OR "s3_key" LIKE {{ load_like }})
{% endset %}
"""Load new landed DMS files into Redshift staging and merge them, table by table (AWS Glue Python shell).

Per table: find the files not loaded yet (the load log gives the last CDC file merged, and S3
is listed from a little before it, so a file that lands late is still found), write a COPY
manifest and a file list to S3, then run that table's part of 02_load_staging.sql and its
03_merge_<table>.sql as ONE Redshift Data API batch. A batch is one transaction, so the
merge file's own BEGIN/COMMIT are left out; a retry after any failure is safe. Every statement
is waited for and a failure stops the job with Redshift's error message.

The SQL below is the SQL `dwctl render` wrote to sql/, and the planning functions are the ones
`dwctl sql verify` runs locally against DuckDB: this file is what the verifier proves.
Arguments (Glue job parameters): --landing_bucket --manifest_prefix --workgroup --database
--secret_arn --copy_role_arn, optional --tables a,b and --lookback_minutes N.
"""

import csv
import io
import json
import re
import sys
import time
from datetime import datetime, timedelta

PLACEHOLDER = re.compile(r"'\$\{([a-z0-9_:]+)\}'")
CDC_NAME = re.compile(r"^(\d{8}-\d{6})\d*\.parquet$")  # DMS CDC file: yyyyMMdd-HHmmss + fraction digits
FULL_LOAD_PREFIX = {{ layout.FULL_LOAD_PREFIX | tojson }}
LOOKBACK_MINUTES = 60  # a CDC file may land this much later than the newest file merged
MAX_BATCH = 40  # statements per BatchExecuteStatement
REQUIRED = ("landing_bucket", "manifest_prefix", "workgroup", "database", "secret_arn", "copy_role_arn")

TABLES = {
{% for table in tables %}
    {{ table.name | tojson }}: {{ (table.s3_prefix ~ "/") | tojson }},
{% endfor %}
}
# The SQL files, line by line (so adding a table to the spec only adds lines here too).
CREATE_SQL = {{ create_sql | py_lines }}
LOAD_SQL = {{ load_sql | py_lines }}
MERGE_SQL = {
{% for table in tables %}
{% set merge_sql = sql["sql/03_merge_" ~ table.name ~ ".sql"] %}
    {{ table.name | tojson }}: {{ merge_sql | py_lines("    ") }},
{% endfor %}
}
WATERMARK_SQL = {{ watermark_sql.strip() | tojson }}
LOADED_SQL = {{ loaded_sql.strip() | tojson }}


class JobError(Exception):
    """A failure the job reports as is: the run fails and Glue retries it."""


# --- SQL text ------------------------------------------------------------------------------
def split_statements(sql):
    """Statements of a rendered file: whole-line comments dropped, split at a `;` ending a line."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    parts = re.split(r";[ \t]*(?:\n|$)", "\n".join(lines))
    return [part.strip() for part in parts if part.strip()]


def load_statements(load_sql, table):
    """The statements of 02_load_staging.sql that load `table` (they name its placeholders)."""
    mine = ("'${manifest:%s}'" % table, "'${files:%s}'" % table)
    return [s for s in split_statements(load_sql) if any(m in s for m in mine)]


def quote_literal(value):
    """A SQL string literal, as the render's sqlstr filter writes it."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


def substitute(sql, values):
    """Replace each '${name}' placeholder literal with a quoted value; a missing value is an error."""
    def replace(match):
        if match.group(1) not in values:
            raise JobError("no value for SQL placeholder " + match.group(0))
        return quote_literal(values[match.group(1)])
    return PLACEHOLDER.sub(replace, sql)


def without_transaction(statements):
    """A Data API batch already is one transaction: drop BEGIN / COMMIT / END."""
    return [s for s in statements if s.strip().upper() not in ("BEGIN", "COMMIT", "END", "END TRANSACTION")]


# --- which files to load -------------------------------------------------------------------
def is_full_load(key):
    return key.rsplit("/", 1)[-1].startswith(FULL_LOAD_PREFIX)


def lookback_key(prefix, watermark, minutes=LOOKBACK_MINUTES):
    """Where to start listing: `minutes` before the newest CDC file merged, or the whole prefix."""
    if not watermark:
        return prefix
    folder, name = watermark.rsplit("/", 1)
    match = CDC_NAME.match(name)
    if not match:
        return prefix
    start = datetime.strptime(match.group(1), "%Y%m%d-%H%M%S") - timedelta(minutes=minutes)
    return max(prefix, folder + "/" + start.strftime("%Y%m%d-%H%M%S"))


def plan_files(listed, loaded):
    """New Parquet objects, full-load files first, then CDC files in name (= time) order.

    listed: (key, size) pairs under one table prefix; loaded: keys in the load log.
    """
    new = {key: size for key, size in listed if key.endswith(".parquet") and key not in loaded}
    return sorted(new.items(), key=lambda item: (not is_full_load(item[0]), item[0]))


def manifest_document(bucket, files):
    """A COPY manifest; Parquet needs each entry's content_length."""
    return json.dumps({"entries": [
        {"url": "s3://%s/%s" % (bucket, key), "mandatory": True, "meta": {"content_length": size}}
        for key, size in files]}, indent=1, sort_keys=True)


def files_csv(table, files):
    """The (table_name, s3_key) rows the merge moves to the load log."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for key, _ in files:
        writer.writerow([table, key])
    return out.getvalue()


# --- AWS -----------------------------------------------------------------------------------
def list_objects(s3, bucket, prefix, start_after):
    """(key, size) of every object under prefix after start_after."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, StartAfter=start_after)
    return [(o["Key"], o["Size"]) for page in pages for o in page.get("Contents", [])]


class Warehouse:
    """The Redshift Data API, one statement or batch at a time, waiting for each."""

    def __init__(self, client, workgroup, database, secret_arn, sleep=time.sleep, timeout=3600):
        self.client, self.sleep, self.timeout = client, sleep, timeout
        self.target = {"WorkgroupName": workgroup, "Database": database, "SecretArn": secret_arn}

    def query(self, sql, **params):
        """Rows of a SELECT, as lists of strings (None for NULL)."""
        args = dict(self.target, Sql=sql)
        if params:
            args["Parameters"] = [{"name": k, "value": str(v)} for k, v in sorted(params.items())]
        statement_id = self.client.execute_statement(**args)["Id"]
        self.wait(statement_id, sql)
        rows, token = [], None
        while True:
            page = self.client.get_statement_result(Id=statement_id, **({"NextToken": token} if token else {}))
            rows += [[None if f.get("isNull") else next(iter(f.values())) for f in r] for r in page["Records"]]
            token = page.get("NextToken")
            if not token:
                return rows

    def batch(self, statements, name):
        """Run statements as one transaction (all or nothing)."""
        if len(statements) > MAX_BATCH:
            raise JobError("%s: %d statements, the Data API takes %d per batch" % (name, len(statements), MAX_BATCH))
        statement_id = self.client.batch_execute_statement(Sqls=statements, StatementName=name, **self.target)["Id"]
        self.wait(statement_id, name)

    def wait(self, statement_id, what):
        delay, waited = 0.25, 0.0
        while True:
            desc = self.client.describe_statement(Id=statement_id)
            status = desc["Status"]
            if status == "FINISHED":
                return desc
            if status in ("FAILED", "ABORTED"):
                failed = [s for s in desc.get("SubStatements", []) if s.get("Status") in ("FAILED", "ABORTED")]
                detail = "".join("\n  in: %s" % s.get("QueryString", "")[:500] for s in failed)
                raise JobError("%s: %s: %s%s" % (what[:200], status, desc.get("Error") or "no error text", detail))
            if waited > self.timeout:
                raise JobError("%s: still %s after %ss" % (what[:200], status, self.timeout))
            self.sleep(delay)
            waited += delay
            delay = min(delay * 2, 5.0)


def load_table(s3, warehouse, args, table, run_id):
    """Load and merge one table's new files; returns how many files were merged."""
    prefix = TABLES[table]
    watermark = warehouse.query(WATERMARK_SQL, table_name=table)[0][0]
    since = lookback_key(prefix, watermark, int(args.get("lookback_minutes", LOOKBACK_MINUTES)))
    loaded = {row[0] for row in warehouse.query(LOADED_SQL, table_name=table, since=since)}
    files = plan_files(list_objects(s3, args["landing_bucket"], prefix, since), loaded)
    if not files:
        return 0
    base = "%s/%s/%s" % (args["manifest_prefix"].strip("/"), table, run_id)
    s3.put_object(Bucket=args["landing_bucket"], Key=base + ".manifest",
                  Body=manifest_document(args["landing_bucket"], files).encode(), ContentType="application/json")
    s3.put_object(Bucket=args["landing_bucket"], Key=base + ".files.csv",
                  Body=files_csv(table, files).encode(), ContentType="text/csv")
    values = {"iam_role": args["copy_role_arn"],
              "manifest:" + table: "s3://%s/%s.manifest" % (args["landing_bucket"], base),
              "files:" + table: "s3://%s/%s.files.csv" % (args["landing_bucket"], base)}
    statements = load_statements(LOAD_SQL, table) + without_transaction(split_statements(MERGE_SQL[table]))
    warehouse.batch([substitute(s, values) for s in statements], "dwctl-load-" + table)
    return len(files)


def parse_args(argv):
    """`--name value` pairs (Glue adds its own, which are ignored); the required ones must be there."""
    args, i = {}, 0
    while i < len(argv):
        if argv[i].startswith("--") and i + 1 < len(argv):
            args[argv[i][2:].replace("-", "_")] = argv[i + 1]
            i += 2
        else:
            i += 1
    missing = [name for name in REQUIRED if not args.get(name)]
    if missing:
        raise JobError("missing job arguments: " + ", ".join("--" + m for m in missing))
    return args


def run(args, s3, warehouse, log=print):
    chosen = [t for t in args.get("tables", "").split(",") if t] or list(TABLES)
    unknown = sorted(set(chosen) - set(TABLES))
    if unknown:
        raise JobError("unknown tables: " + ", ".join(unknown))
    run_id = re.sub(r"[^A-Za-z0-9_-]", "_", args.get("JOB_RUN_ID") or time.strftime("%Y%m%dT%H%M%S"))
    create = split_statements(CREATE_SQL)
    for start in range(0, len(create), MAX_BATCH):
        warehouse.batch(create[start:start + MAX_BATCH], "dwctl-create-tables")
    total = 0
    for table in chosen:
        count = load_table(s3, warehouse, args, table, run_id)
        log("%s: %d new file(s) merged" % (table, count))
        total += count
    return total


def main(argv=None):
    import boto3

    args = parse_args(sys.argv[1:] if argv is None else argv)
    warehouse = Warehouse(boto3.client("redshift-data"), args["workgroup"], args["database"], args["secret_arn"])
    run(args, boto3.client("s3"), warehouse)


if __name__ == "__main__":
    main()
