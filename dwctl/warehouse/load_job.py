"""Load new landed DMS files into Redshift staging and merge them, table by table (AWS Glue Python shell).

Per table: find the files not loaded yet (the load log gives the last CDC file merged, and S3
is listed from a little before it, so a file that lands late is still found), write a COPY
manifest and a file list to S3, then run that table's part of 02_load_staging.sql and its
03_merge_<table>.sql as ONE Redshift Data API batch. A batch is one transaction, so the
merge file's own BEGIN/COMMIT are left out; a retry after any failure is safe. Every statement
is waited for and a failure stops the job with Redshift's error message.

This module is plain Python, the same for every spec: `dwctl render` copies it to
iac/glue_scripts/load_job.py, and what varies per spec (the tables, their landing prefixes and
the rendered sql/ files) comes as data, in the JSON document `dwctl render` writes beside it
(iac/glue_scripts/load_job_config.json; see dwctl/render/job_config.py) and Terraform uploads.
`dwctl sql verify` imports this module and runs its planning functions locally against
DuckDB: this file is what the verifier proves. It runs on Glue's Python 3.9 and needs only
the standard library and boto3.

Arguments (Glue job parameters): --landing_bucket --config_key --manifest_prefix --workgroup
--database --secret_arn --copy_role_arn, optional --tables a,b and --lookback_minutes N.
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
LOOKBACK_MINUTES = 60  # a CDC file may land this much later than the newest file merged
MAX_BATCH = 40  # statements per BatchExecuteStatement
REQUIRED = ("landing_bucket", "config_key", "manifest_prefix", "workgroup", "database", "secret_arn", "copy_role_arn")
CONFIG_FORMAT = 1  # the version of the config document this module reads (dwctl/render/job_config.py writes it)


class JobError(Exception):
    """A failure the job reports as is: the run fails and Glue retries it."""


class Config:
    """What `dwctl render` fixed for this spec: tables, their landing prefixes and the SQL to run."""

    def __init__(self, document):
        if document.get("format") != CONFIG_FORMAT:
            raise JobError("load job config has format %r; this job reads format %d (render and upload again)"
                           % (document.get("format"), CONFIG_FORMAT))
        self.full_load_prefix = document["full_load_prefix"]
        self.tables = {name: table["prefix"] for name, table in document["tables"].items()}
        self.create_sql = "\n".join(document["create_sql"])
        self.load_sql = "\n".join(document["load_sql"])
        self.merge_sql = {name: "\n".join(table["merge_sql"]) for name, table in document["tables"].items()}
        self.watermark_sql = document["watermark_sql"]
        self.loaded_sql = document["loaded_sql"]

    @classmethod
    def from_json(cls, text):
        return cls(json.loads(text))


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
def is_full_load(key, full_load_prefix):
    return key.rsplit("/", 1)[-1].startswith(full_load_prefix)


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


def plan_files(listed, loaded, full_load_prefix):
    """New Parquet objects, full-load files first, then CDC files in name (= time) order.

    listed: (key, size) pairs under one table prefix; loaded: keys in the load log.
    """
    new = {key: size for key, size in listed if key.endswith(".parquet") and key not in loaded}
    return sorted(new.items(), key=lambda item: (not is_full_load(item[0], full_load_prefix), item[0]))


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


def load_table(s3, warehouse, config, args, table, run_id):
    """Load and merge one table's new files; returns how many files were merged."""
    prefix = config.tables[table]
    watermark = warehouse.query(config.watermark_sql, table_name=table)[0][0]
    since = lookback_key(prefix, watermark, int(args.get("lookback_minutes", LOOKBACK_MINUTES)))
    loaded = {row[0] for row in warehouse.query(config.loaded_sql, table_name=table, since=since)}
    files = plan_files(list_objects(s3, args["landing_bucket"], prefix, since), loaded, config.full_load_prefix)
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
    statements = load_statements(config.load_sql, table) + without_transaction(split_statements(config.merge_sql[table]))
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


def read_config(s3, args):
    """The config document `dwctl render` wrote and Terraform uploaded beside the script."""
    body = s3.get_object(Bucket=args["landing_bucket"], Key=args["config_key"])["Body"].read()
    return Config.from_json(body.decode("utf-8"))


def run(args, s3, warehouse, config, log=print):
    chosen = [t for t in args.get("tables", "").split(",") if t] or list(config.tables)
    unknown = sorted(set(chosen) - set(config.tables))
    if unknown:
        raise JobError("unknown tables: " + ", ".join(unknown))
    run_id = re.sub(r"[^A-Za-z0-9_-]", "_", args.get("JOB_RUN_ID") or time.strftime("%Y%m%dT%H%M%S"))
    create = split_statements(config.create_sql)
    for start in range(0, len(create), MAX_BATCH):
        warehouse.batch(create[start:start + MAX_BATCH], "dwctl-create-tables")
    total = 0
    for table in chosen:
        count = load_table(s3, warehouse, config, args, table, run_id)
        log("%s: %d new file(s) merged" % (table, count))
        total += count
    return total


def main(argv=None):
    import boto3

    args = parse_args(sys.argv[1:] if argv is None else argv)
    warehouse = Warehouse(boto3.client("redshift-data"), args["workgroup"], args["database"], args["secret_arn"])
    s3 = boto3.client("s3")
    run(args, s3, warehouse, read_config(s3, args))


if __name__ == "__main__":
    main()
