"""Load new landed DMS files into Redshift staging and merge them, table by table (AWS Glue Python shell).

Per run: find the landed objects not merged yet (discovery), then per table write COPY
manifests of its full-load and CDC files and a file list to S3, and run that table's part of
02_load_staging.sql and its 03_merge_<table>.sql as ONE Redshift Data API batch (one
transaction, so the merge file's own BEGIN/COMMIT are left out). The merge is idempotent and
order-independent (every key is a last-writer-wins register keyed by the change's version),
so a file found twice, late, or by two overlapping runs changes nothing the second time:
discovery may be at-least-once.

Discovery (`--discovery`):
- `queue` (the default in AWS): the landing bucket sends every object-created event to
  EventBridge; a rule puts those under the landing prefix on an SQS queue, which the job drains.
  An object rewritten under the same key (a DMS reload) is a new event with a new ETag. A
  message is deleted once its file is merged or quarantined, so a failed run leaves it for the next.
- `listing`: list every object under each table's prefix and take those whose (key, ETag) is in
  neither the load log nor the quarantine. Complete whatever the queue missed (for example a
  job stopped longer than the queue keeps messages), at one List call per 1,000 objects.

A batch that fails is retried file by file; a file that fails alone is quarantined with
Redshift's reason, every other file and table goes on, and the run ends with an error (so the
job's failure alarm fires). `--retry_quarantined true` offers quarantined files again.

This module is plain Python, the same for every spec: `dwctl render` copies it to
iac/glue_scripts/load_job.py, and what varies per spec (the tables, their landing prefixes and
the rendered sql/ files) comes as data, in the JSON document `dwctl render` writes beside it
(iac/glue_scripts/load_job_config.json; see dwctl/render/job_config.py) and Terraform uploads.
`dwctl sql verify` runs this module's `run` locally, with DuckDB as the warehouse and a folder
as the bucket: this file is what the verifier proves. It runs on Glue's Python 3.9 and needs only
the standard library and boto3.

Arguments (Glue job parameters): --landing_bucket --config_key --manifest_prefix --workgroup
--database --copy_role_arn; optional --queue_url (needed by queue discovery),
--discovery queue|listing, --visibility_timeout SECONDS, --concurrency N, --tables a,b,
--retry_quarantined true, --secret_arn (run as that secret's user instead of the job's own).

The job signs in as its own database user, not the admin: with no secret, the Data API takes
temporary credentials for the job's IAM role from the workgroup (redshift-serverless:GetCredentials),
as the database user "IAMR:<role name>", which Terraform created with rights on the staging and
analytics schemas only (loader_job.tf).
"""

import csv
import hashlib
import io
import json
import re
import sys
import time
from urllib.parse import unquote_plus

PLACEHOLDER = re.compile(r"'\$\{([a-z0-9_:]+)\}'")
MAX_BATCH = 40  # statements per BatchExecuteStatement
REQUIRED = ("landing_bucket", "config_key", "manifest_prefix", "workgroup", "database", "copy_role_arn")
CONFIG_FORMAT = 2  # the version of the config document this module reads (dwctl/render/job_config.py writes it)
REASON_LIMIT = 4000  # characters of Redshift's error kept with a quarantined file (the column holds 4096)
REASON_SHOWN = 600  # characters of it in the run's error


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
        self.queries = document["queries"]
        self.ddl_hash = hashlib.sha256(self.create_sql.encode("utf-8")).hexdigest()  # what apply_ddl records

    @classmethod
    def from_json(cls, text):
        return cls(json.loads(text))

    def table_of(self, key):
        """The spec table whose landing prefix holds `key` (a file directly in it), or None."""
        folder = key.rsplit("/", 1)[0] + "/"
        for name, prefix in self.tables.items():
            if folder == prefix:
                return name
        return None


class Landed:
    """One landed object version: S3 key, size in bytes and ETag (which changes when it is rewritten)."""

    __slots__ = ("key", "size", "etag", "receipt")

    def __init__(self, key, size, etag, receipt=None):
        self.key, self.size, self.etag, self.receipt = key, int(size), etag.strip('"'), receipt

    def __repr__(self):
        return "Landed(%r, %r, %r)" % (self.key, self.size, self.etag)

    def identity(self):
        return (self.key, self.etag)


# --- SQL text ------------------------------------------------------------------------------
def split_statements(sql):
    """Statements of a rendered file: whole-line comments dropped, split at a `;` ending a line."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    parts = re.split(r";[ \t]*(?:\n|$)", "\n".join(lines))
    return [part.strip() for part in parts if part.strip()]


def load_statements(load_sql, table, kinds=("load", "cdc")):
    """The statements of 02_load_staging.sql that load `table`: the COPY of each kind of file
    asked for (full-load, CDC), then the file list's."""
    mine = ["'${manifest:%s:%s}'" % (table, kind) for kind in kinds] + ["'${files:%s}'" % table]
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


# --- which files, and how ------------------------------------------------------------------
def is_full_load(key, full_load_prefix):
    return key.rsplit("/", 1)[-1].startswith(full_load_prefix)


def parquet_only(objects):
    """Landed Parquet objects, one per (key, ETag), in key order."""
    unique = {o.identity(): o for o in objects if o.key.endswith(".parquet")}
    return sorted(unique.values(), key=lambda o: (o.key, o.etag))


def split_kinds(objects, full_load_prefix):
    """(full-load files, CDC files) of a batch."""
    load = [o for o in objects if is_full_load(o.key, full_load_prefix)]
    return load, [o for o in objects if not is_full_load(o.key, full_load_prefix)]


def is_reload(load_files, newest_loaded_load_key, cdc_files_merged=0, load_files_quarantined=0):
    """A reload rewrites LOAD files: a LOAD file at or before the newest LOAD key merged (the same
    key with a new ETag, or numbering starting again). LOAD files after CDC files, with no LOAD file
    merged or quarantined, are a reload too: DMS lands a table's full load before its cached
    changes, so the first load was empty (it wrote no file). The merge still requires the files to
    come after everything the latest full load transferred before it starts a new one."""
    if not newest_loaded_load_key:
        return int(cdc_files_merged or 0) > 0 and int(load_files_quarantined or 0) == 0
    return any(o.key <= newest_loaded_load_key for o in load_files)


def manifest_document(bucket, files):
    """A COPY manifest; Parquet needs each entry's content_length."""
    return json.dumps({"entries": [
        {"url": "s3://%s/%s" % (bucket, o.key), "mandatory": True, "meta": {"content_length": o.size}}
        for o in files]}, indent=1, sort_keys=True)


def files_csv(table, files):
    """The (table_name, s3_key, etag) rows the merge moves to the load log."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for o in files:
        writer.writerow([table, o.key, o.etag])
    return out.getvalue()


# --- discovery -----------------------------------------------------------------------------
class ListingDiscovery:
    """Every object under each table's prefix whose version is neither merged nor quarantined."""

    def __init__(self, storage, warehouse, config):
        self.storage, self.warehouse, self.config = storage, warehouse, config
        self.deleted = {}  # table -> keys merged before and gone from the bucket now

    def new_objects(self, tables):
        found = {}
        for table in sorted(tables):
            listed = parquet_only(self.storage.list(self.config.tables[table]))
            known = {(r[0], r[1]) for r in self.warehouse.query(self.config.queries["known_files"], table_name=table)}
            present = {o.key for o in listed}
            gone = sorted({key for key, _ in known} - present)
            if gone:
                self.deleted[table] = gone
            fresh = [o for o in listed if o.identity() not in known]
            if fresh:
                found[table] = fresh
        return found

    def done(self, objects):
        """Nothing to acknowledge: the load log and the quarantine are the record."""


def message_kind(message):
    """The EventBridge detail-type of an SQS message body ("Object Created", "Object Deleted")."""
    try:
        return json.loads(message["Body"]).get("detail-type")
    except (ValueError, AttributeError):
        return None


class QueueDiscovery:
    """S3 object-created events (via EventBridge) from an SQS queue, at least once.

    Event shape: detail.object.key / size / etag, detail.bucket.name (Amazon S3 User Guide,
    ev-events.html, "Using EventBridge"); keys in EventBridge events are URL-encoded like those
    of S3 event notifications, so they are decoded. Messages of tables not in this run, and of
    files that fail, stay on the queue and come back after the visibility timeout.
    """

    def __init__(self, sqs, queue_url, config, visibility_timeout=3900, max_messages=100000):
        self.sqs, self.queue_url, self.config, self.max_messages = sqs, queue_url, config, max_messages
        self.visibility_timeout = int(visibility_timeout)  # longer than a run: a message is not seen twice in one
        self.unrelated = []
        self.deleted = {}  # table -> keys DMS deleted (an "Object Deleted" event by DeleteObject)

    def receive(self):
        messages = []
        while len(messages) < self.max_messages:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                           VisibilityTimeout=self.visibility_timeout).get("Messages", [])
            if not got:
                return messages
            messages += got
        return messages

    def new_objects(self, tables):
        found = {}
        for message in self.receive():
            try:
                detail = json.loads(message["Body"])["detail"]
                obj = detail["object"]
                landed = Landed(unquote_plus(obj["key"]), obj.get("size", 0), obj.get("etag", ""), message["ReceiptHandle"])
            except (ValueError, KeyError, TypeError):
                self.unrelated.append(message["ReceiptHandle"])
                continue
            table = self.config.table_of(landed.key)
            if message_kind(message) == "Object Deleted":
                if table is not None and detail.get("reason") == "DeleteObject":  # not a lifecycle expiry
                    self.deleted.setdefault(table, []).append(landed.key)
                self.unrelated.append(landed.receipt)
            elif table is None or not landed.key.endswith(".parquet"):
                self.unrelated.append(landed.receipt)  # manifests, other folders: nothing to load
            elif table in tables:
                found.setdefault(table, []).append(landed)
        self.delete(self.unrelated)
        self.unrelated = []
        return {table: sorted(objs, key=lambda o: (o.key, o.etag)) for table, objs in found.items()}

    def done(self, objects):
        self.delete([o.receipt for o in objects if o.receipt])

    def delete(self, receipts):
        for start in range(0, len(receipts), 10):
            chunk = receipts[start:start + 10]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)])


# --- AWS -----------------------------------------------------------------------------------
class S3Storage:
    """The landing bucket: list a prefix, write a manifest."""

    def __init__(self, s3, bucket):
        self.s3, self.bucket = s3, bucket

    def list(self, prefix):
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [Landed(o["Key"], o["Size"], o["ETag"]) for page in pages for o in page.get("Contents", [])]

    def put(self, key, body, content_type):
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode("utf-8"), ContentType=content_type)
        return "s3://%s/%s" % (self.bucket, key)


class Warehouse:
    """The Redshift Data API, one statement or batch at a time, waiting for each.

    Without `secret_arn` the Data API signs in with temporary credentials of the caller's IAM
    identity: for a serverless workgroup, WorkgroupName and Database only, the database user being
    derived from the identity ("IAMR:<role>" for a role) and the caller needing
    redshift-serverless:GetCredentials
    (https://docs.aws.amazon.com/redshift/latest/mgmt/data-api-access.html, "Temporary credentials";
    https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_GetCredentials.html).
    With a secret (`dwctl sql quarantine --secret-arn`, run by a person) it signs in as the secret's user.
    """

    def __init__(self, client, workgroup, database, secret_arn=None, sleep=time.sleep, timeout=3600):
        self.client, self.sleep, self.timeout = client, sleep, timeout
        self.target = {"WorkgroupName": workgroup, "Database": database}
        if secret_arn:
            self.target["SecretArn"] = secret_arn

    def start(self, sql, params):
        """ExecuteStatement with named parameters; returns the statement id once it has finished."""
        args = dict(self.target, Sql=sql)
        if params:
            args["Parameters"] = [{"name": k, "value": str(v)} for k, v in sorted(params.items())]
        statement_id = self.client.execute_statement(**args)["Id"]
        self.wait(statement_id, sql)
        return statement_id

    def query(self, sql, **params):
        """Rows of a SELECT, as lists of strings (None for NULL)."""
        statement_id = self.start(sql, params)
        rows, token = [], None
        while True:
            page = self.client.get_statement_result(Id=statement_id, **({"NextToken": token} if token else {}))
            rows += [[None if f.get("isNull") else next(iter(f.values())) for f in r] for r in page["Records"]]
            token = page.get("NextToken")
            if not token:
                return rows

    def execute(self, sql, **params):
        """Run one statement that returns no rows."""
        self.start(sql, params)

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
                # A batch left running would commit after this run gave up on it: cancel it, so a
                # retry starts from a known state (and overlapping runs converge anyway).
                self.client.cancel_statement(Id=statement_id)
                raise JobError("%s: still %s after %ss; cancelled" % (what[:200], status, self.timeout))
            self.sleep(delay)
            waited += delay
            delay = min(delay * 2, 5.0)


# --- one table -----------------------------------------------------------------------------
class TableLoad:
    """Merge one table's batch of new files; on failure, find and quarantine the files at fault."""

    def __init__(self, storage, warehouse, config, args, table, run_id, log=print):
        self.storage, self.warehouse, self.config, self.args = storage, warehouse, config, args
        self.table, self.run_id, self.log = table, run_id, log
        self.quarantined = []
        self.batches = 0

    def merge(self, files):
        """Merge files in one transaction; raises JobError with Redshift's message."""
        load, cdc = split_kinds(files, self.config.full_load_prefix)
        reload = False
        if load:
            newest, cdc_merged, load_quarantined = self.warehouse.query(
                self.config.queries["load_history"], table_name=self.table)[0]
            reload = is_reload(load, newest, cdc_merged, load_quarantined)
        self.batches += 1
        base = "%s/%s/%s-%d" % (self.args["manifest_prefix"].strip("/"), self.table, self.run_id, self.batches)
        values = {"iam_role": self.args["copy_role_arn"], "reload:" + self.table: "true" if reload else "false"}
        kinds = []
        for kind, chosen in (("load", load), ("cdc", cdc)):
            if chosen:
                kinds.append(kind)
                values["manifest:%s:%s" % (self.table, kind)] = self.storage.put(
                    "%s.%s.manifest" % (base, kind), manifest_document(self.args["landing_bucket"], chosen),
                    "application/json")
        values["files:" + self.table] = self.storage.put(base + ".files.csv", files_csv(self.table, files), "text/csv")
        statements = load_statements(self.config.load_sql, self.table, kinds) + \
            without_transaction(split_statements(self.config.merge_sql[self.table]))
        self.warehouse.batch([substitute(s, values) for s in statements], "dwctl-load-" + self.table)

    def run(self, files):
        """Merge all files, or as many as load; returns the files merged or quarantined (done with)."""
        try:
            self.merge(files)
            return list(files)
        except JobError as exc:
            if len(files) == 1:
                self.quarantine(files[0], str(exc))
                return list(files)
            self.log("%s: a batch of %d files failed, retrying file by file: %s" % (self.table, len(files), exc))
        done = []
        for landed in files:  # in key order: full-load files, then CDC files in time order
            done += self.run([landed])
        return done

    def quarantine(self, landed, reason):
        self.log("%s: quarantined %s: %s" % (self.table, landed.key, reason))
        self.warehouse.execute(self.config.queries["quarantine"], table_name=self.table, s3_key=landed.key,
                             etag=landed.etag, size=landed.size, reason=reason[:REASON_LIMIT])
        self.quarantined.append((landed, reason))


def quarantined_files(warehouse, config, tables):
    """Quarantined files of the tables asked for, to offer again (`--retry_quarantined true`)."""
    found = {}
    for table, key, etag, size in warehouse.query(config.queries["quarantined"]):
        if table in tables:
            found.setdefault(table, []).append(Landed(key, size, etag))
    for table in found:
        warehouse.execute(config.queries["release_quarantine"], table_name=table)
    return found


# --- the run -------------------------------------------------------------------------------
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
    if args.get("discovery", "queue") not in ("queue", "listing"):
        raise JobError("--discovery must be queue or listing, not %r" % args["discovery"])
    return args


def apply_ddl(warehouse, config):
    """Create what the spec needs, only when the spec's DDL changed since it was last applied: a run
    whose DDL is current costs one query (the DDL records its hash in the warehouse)."""
    try:
        applied = warehouse.query(config.queries["ddl_applied"])
    except JobError:  # no bookkeeping table yet: a new warehouse
        applied = []
    if applied and applied[0][0] == config.ddl_hash:
        return False
    create = split_statements(config.create_sql)
    for start in range(0, len(create), MAX_BATCH):
        warehouse.batch(create[start:start + MAX_BATCH], "dwctl-create-tables")
    warehouse.batch([substitute(s, {"ddl_hash": config.ddl_hash}) for s in config.queries["record_ddl"]],
                    "dwctl-record-ddl")
    return True


def run(args, storage, warehouse, config, discovery, log=print):
    """One scheduled run; returns {table: files merged}. Tables load concurrently (--concurrency,
    default 8; each table's batch is its own transaction). Raises JobError after the last table
    when any file was quarantined or a merged file was deleted from the bucket, so the run fails
    and its alarm fires, with every other table loaded."""
    chosen = [t for t in args.get("tables", "").split(",") if t] or list(config.tables)
    unknown = sorted(set(chosen) - set(config.tables))
    if unknown:
        raise JobError("unknown tables: " + ", ".join(unknown))
    run_id = re.sub(r"[^A-Za-z0-9_-]", "_", args.get("JOB_RUN_ID") or time.strftime("%Y%m%dT%H%M%S"))
    apply_ddl(warehouse, config)
    offered = discovery.new_objects(set(chosen))
    if args.get("retry_quarantined") == "true":
        for table, files in quarantined_files(warehouse, config, set(chosen)).items():
            offered[table] = parquet_only(offered.get(table, []) + files)

    def load(table):
        loader = TableLoad(storage, warehouse, config, args, table, run_id, log)
        discovery.done(loader.run(offered[table]))
        return table, loader

    merged = {table: 0 for table in chosen}
    problems = []
    busy = [t for t in chosen if offered.get(t)]
    workers = max(1, min(int(args.get("concurrency", 8)), len(busy) or 1))
    if workers == 1:
        results = [load(t) for t in busy]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(load, busy))
    for table, loader in results:
        merged[table] = len(offered[table]) - len(loader.quarantined)
        problems += ["%s: %s quarantined: %s" % (table, o.key, reason[:REASON_SHOWN]) for o, reason in loader.quarantined]
        log("%s: %d new file(s) merged" % (table, merged[table]))
    for table, keys in sorted(discovery.deleted.items()):
        if table in merged:
            problems.append("%s: %d merged file(s) were deleted from the bucket (first: %s). DMS deletes a table's "
                            "files when the source table is truncated (HandleSourceTableTruncated): the warehouse "
                            "still holds the rows; reload the table in DMS, which replaces them" % (table, len(keys), keys[0]))
    if problems:
        raise JobError("%d problem(s); the other files and tables were loaded:\n  %s"
                       % (len(problems), "\n  ".join(problems)))
    return merged


def read_config(s3, args):
    """The config document `dwctl render` wrote and Terraform uploaded beside the script."""
    body = s3.get_object(Bucket=args["landing_bucket"], Key=args["config_key"])["Body"].read()
    return Config.from_json(body.decode("utf-8"))


def main(argv=None):
    import boto3

    args = parse_args(sys.argv[1:] if argv is None else argv)
    s3 = boto3.client("s3")
    config = read_config(s3, args)
    warehouse = Warehouse(boto3.client("redshift-data"), args["workgroup"], args["database"], args.get("secret_arn"))
    storage = S3Storage(s3, args["landing_bucket"])
    if args.get("discovery", "queue") == "queue":
        if not args.get("queue_url"):
            raise JobError("--discovery queue needs --queue_url")
        discovery = QueueDiscovery(boto3.client("sqs"), args["queue_url"], config, args.get("visibility_timeout", 3900))
    else:
        discovery = ListingDiscovery(storage, warehouse, config)
    run(args, storage, warehouse, config, discovery)


if __name__ == "__main__":
    main()
