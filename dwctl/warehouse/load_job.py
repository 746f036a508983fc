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

Schema changes: when the spec's DDL changed, the job first migrates the warehouse's tables to it
(migrate: SVV_COLUMNS against the spec, one transaction per table). Each landed file's columns
come from its Parquet footer: a file of another layout loads through a staging table of its own,
and a file with a column the spec lacks is held (quarantined with the reason) until a run in
which its table's columns changed, which offers the table's held and quarantined files again.

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
--database --copy_role_arn; optional --kms_key_arn (the key manifests are written with; the
stack passes it, the landing bucket refuses uploads without it), --queue_url (needed by queue discovery),
--discovery queue|listing, --visibility_timeout SECONDS, --concurrency N, --tables a,b,
--retry_quarantined true, --secret_arn (run as that secret's user instead of the job's own),
--botocore_data_prefix KEY (where the shipped botocore models are: see data_api_client),
--metric_namespace NS (publish each table's freshness there every run: publish_freshness),
--dms_task_arns ARN,ARN (the replication tasks whose table statistics tell when each table's full
load began: table_load_starts).

The job signs in as its own database user, not the admin: with no secret, the Data API takes
temporary credentials for the job's IAM role from the workgroup (redshift-serverless:GetCredentials),
as the database user "IAMR:<role name>", which Terraform created with rights on the staging and
analytics schemas only (loader_job.tf).
"""

import csv
import functools
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
CONFIG_FORMAT = 7  # the version of the config document this module reads (dwctl/render/job_config.py writes it)
# Bytes of Redshift's error kept with a quarantined file: its column is VARCHAR(4096) (sql/01), and "CHAR
# and VARCHAR data types store strings up to n bytes in length. An attempt to store a longer string into a
# column of these types results in an error" (Redshift Database Developer Guide, r_Character_types).
REASON_LIMIT = 4096
REASON_SHOWN = 600  # characters of it in the run's error
WAITING = "waiting:"  # the reason of a file kept back behind a quarantined full-load file (TableLoad.wait)
KIND_COLUMN = "dwctl_kind"  # the pre-stage table's column telling load, cdc and restage rows apart
# Statements (a table's batch, a query) at the warehouse at once (--concurrency; InFlight). Far below the
# Data API's "maximum number of active queries (STARTED and SUBMITTED queries) per Amazon Redshift cluster
# is 200" (Redshift Management Guide, data-api.html, "Considerations when calling the Amazon Redshift Data
# API"). Every table's batch begins with LOCK on the shared bookkeeping tables, so Redshift runs the merges
# one after another whatever this is: more statements at once only hide the Data API's round trips
# (bench/bench_loader.py: 16 is what keeps 2,000 tables' round trips within 10 minutes).
DEFAULT_CONCURRENCY = 16
# Tables prepared at once per statement slot: a table's S3 calls (its files' footers, its manifests) need
# no slot, so while `concurrency` tables run SQL, as many others read and write S3 (S3 User Guide,
# optimizing-performance.html: "at least 3,500 PUT/COPY/POST/DELETE or 5,500 GET/HEAD requests per second
# per partitioned Amazon S3 prefix", far above this job's rate).
TABLES_PER_SLOT = 2
RECEIVERS = 8  # SQS receivers draining the queue at once (QueueDiscovery)
SQS_BATCH = 10  # messages per ReceiveMessage and per DeleteMessageBatch, the most SQS takes (QueueDiscovery)
# Redshift aborts one of two concurrent transactions that are not serializable: "ERROR: 1023 DETAIL:
# Serializable isolation violation on table" (Redshift Database Developer Guide, c_serial_isolation,
# "Troubleshooting serializable isolation errors": "Retry the canceled transaction"); a deadlock aborts
# one of them too (r_LOCK). Neither says anything about the files: the batch runs again.
SERIALIZATION_ABORTS = ("1023", "serializable isolation violation", "deadlock detected")
ABORT_RETRIES = 6


class JobError(Exception):
    """A failure the job reports as is: the run fails and Glue retries it."""


def check_batch(statements, name):
    """The Data API runs at most MAX_BATCH statements in one BatchExecuteStatement (Redshift Data API
    reference, BatchExecuteStatement, Sqls: "Array Members: Minimum number of 1 item. Maximum number of
    40 items"; the botocore model's SqlList max 40); the verifier refuses what the Data API would."""
    if len(statements) > MAX_BATCH:
        raise JobError("%s: %d statements, the Data API takes %d per batch" % (name, len(statements), MAX_BATCH))


def expanded_config(document):
    """The config document with each table's merge_sql spelled out, line by line, as the job reads it.
    The render writes each distinct merge SQL once (merge_templates), with the table's name cut out of
    it (a template's line: a string, or the pieces between the name's occurrences), and each table the
    index of its template (dwctl/render/job_config.py). A document without templates is returned as is
    (already expanded: scratch_document's)."""
    if document.get("format") != CONFIG_FORMAT:
        raise JobError("load job config has format %r; this job reads format %d (render and upload again)"
                       % (document.get("format"), CONFIG_FORMAT))
    if "merge_templates" not in document:
        return document
    templates = document["merge_templates"]
    tables = {}
    for name, table in document["tables"].items():
        table = dict(table)
        template = templates[table.pop("merge_template")]
        table["merge_sql"] = [line if isinstance(line, str) else name.join(line) for line in template]
        tables[name] = table
    return dict(((k, v) for k, v in document.items() if k != "merge_templates"), tables=tables)


def expanded_canary(document):
    """The canary document with each unit file's base64 in its place: the render writes each distinct
    file once (`parquet`) and the steps name theirs by index (dwctl/render/canary.py)."""
    pool = document["parquet"]
    units = {name: [dict(step, files={f: pool[i] for f, i in step["files"].items()}) for step in steps]
             for name, steps in document["units"].items()}
    return dict(document, units=units)


class Config:
    """What `dwctl render` fixed for this spec: tables, their landing prefixes and the SQL to run."""

    def __init__(self, document):
        document = expanded_config(document)
        self.full_load_prefix = document["full_load_prefix"]
        self.tables = {name: table["prefix"] for name, table in document["tables"].items()}
        self.create_sql = "\n".join(document["create_sql"])
        self.load_sql = "\n".join(document["load_sql"])
        self.merge_sql = {name: "\n".join(table["merge_sql"]) for name, table in document["tables"].items()}
        self.queries = document["queries"]
        self.staging_schema = document["staging_schema"]
        # landed: [name, staging type] or [name, staging type, name in the file] when DMS could not rename it
        self.landed = {name: [tuple(c[:2]) for c in table["landed"]] for name, table in document["tables"].items()}
        self.file_names = {name: {c[0]: c[2] for c in table["landed"] if len(c) > 2}
                           for name, table in document["tables"].items()}
        self.parts = {name: table["warehouse_tables"] for name, table in document["tables"].items()}
        # A partition of a Postgres table is a table of its own here (its folder, load log, staging
        # and key versions) whose rows merge into its spec table's analytics table, `target`.
        self.target = {name: table.get("target", name) for name, table in document["tables"].items()}
        self.analytics_schema = document["analytics_schema"]
        # defaults: {column: SQL literal} of columns whose source DEFAULT the spec carries (a file
        # written before the source added the column loads it instead of NULL)
        self.defaults = {name: dict(table.get("defaults") or {}) for name, table in document["tables"].items()}
        # renamed: {old name in lower case: new name} of columns the source renamed (the spec's renamed_from):
        # a file landed before the rename carries the old name (renamed_columns)
        self.renamed = {name: {old.lower(): new for new, old in (table.get("renamed_from") or {}).items()}
                        for name, table in document["tables"].items()}
        self.load_suffix, self.layout_suffix = document["load_suffix"], document["layout_suffix"]
        self.prestage_suffix = document["prestage_suffix"]
        self.generations_table = document["generations_table"]  # quoted schema.table, as the merge SQL spells it
        # dms_names: the [schema, table] names DMS may report the table under in its table statistics
        # (DescribeTableStatistics): the source's, and the landed folder's (see table_load_starts)
        self.dms_names = {name: [tuple(n) for n in table.get("dms_names", [])] for name, table in document["tables"].items()}
        self.ddl_hash = hashlib.sha256(self.create_sql.encode("utf-8")).hexdigest()  # what apply_ddl records
        # freshness (publish_freshness): each table's statement keeping its newest merged change, and the
        # spec tables with an alarm of their own (left out of the pipeline's figure)
        self.record_freshness = {name: table.get("record_freshness") for name, table in document["tables"].items()}
        self.freshness_own_alarm = set(document.get("freshness_own_alarm", ()))

    @classmethod
    def from_json(cls, text):
        return cls(json.loads(text))

    def units(self, names):
        """The config's tables for names of tables or of spec tables (a partitioned one: its partitions)."""
        return [t for t in self.tables if t in names or self.target[t] in names]

    def siblings(self, names):
        """Every table merging into the analytics table of any of these: what one migration affects."""
        return set(self.units({self.target[t] for t in names}))

    def table_of(self, key):
        """The spec table whose landing prefix holds `key` (a file directly in it, or a full-load file
        in a segment or partition folder of it: see full_load_stream), or None."""
        folder = key.rsplit("/", 1)[0] + "/"
        parent = folder.rstrip("/").rsplit("/", 1)[0] + "/"
        for name, prefix in self.tables.items():
            if folder == prefix or (parent == prefix and is_full_load(key, self.full_load_prefix)):
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


def load_statements(load_sql, table, kinds=("load", "cdc"), files=True):
    """The statements of 02_load_staging.sql that load `table`: the COPY of each kind of file
    asked for (full-load, CDC), then the file list's (unless files is False)."""
    mine = ["'${manifest:%s:%s}'" % (table, kind) for kind in kinds] + (["'${files:%s}'" % table] if files else [])
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
# A parallel full load (a table-settings rule's parallel-load) lands a table's full load as several
# streams of LOAD files, each numbered from 1 in hexadecimal (AWS DMS User Guide, CHAP_Target.S3,
# "Parallel load of partitioned sources when using Amazon S3 as a target"):
# - partitions-auto / partitions-list, and ranges with segment-names (which dwctl renders, see
#   dms.tf): schema/table/<partition or segment name>/LOADnnnnnnnn, "named incrementally starting
#   from LOAD00000001" in each folder;
# - ranges without segment-names (and engines without partitions): schema/table/SEGMENTn_LOADnnnnnnnn,
#   e.g. SEGMENT3_LOAD0000000A.
# CDC files stay at schema/table/<timestamp>. A stream is the key without its number: file numbers
# are compared only within a stream (another segment's numbering says nothing about this one's).
def full_load_stream(key, full_load_prefix):
    """(stream, number) of a full-load file's key, or None for another file (a CDC file)."""
    folder, _, name = key.rpartition("/")
    match = re.match(r"^((?:SEGMENT[0-9]+_)?)%s([0-9A-Fa-f]+)\.[^/]*$" % re.escape(full_load_prefix), name)
    if not match:
        return None
    return folder + "/" + match.group(1), int(match.group(2), 16)


def is_full_load(key, full_load_prefix):
    return full_load_stream(key, full_load_prefix) is not None


def parquet_only(objects):
    """Landed Parquet objects, one per (key, ETag), in key order."""
    unique = {o.identity(): o for o in objects if o.key.endswith(".parquet")}
    return sorted(unique.values(), key=lambda o: (o.key, o.etag))


def split_kinds(objects, full_load_prefix):
    """(full-load files, CDC files) of a batch."""
    load = [o for o in objects if is_full_load(o.key, full_load_prefix)]
    return load, [o for o in objects if not is_full_load(o.key, full_load_prefix)]


def is_reload(load_files, merged_load_keys, cdc_files_merged=0, load_files_quarantined=0, load_complete=0,
              full_load_prefix="LOAD"):
    """A reload rewrites LOAD files: a LOAD file at or before the newest LOAD file merged in its own
    stream (the same key with a new ETag, or numbering starting again; see full_load_stream). A LOAD
    file of a stream with no file merged yet is a reload's once the latest full load is complete
    (load_complete: a CDC file was merged with or after the newest LOAD file; DMS lands a table's full
    load, every segment of it, before the changes it cached meanwhile, CHAP_Target.S3 and
    CHAP_Tasks.CustomizingTasks.TaskSettings.FullLoad): a segment or partition empty in that load. Before
    that, a new stream is more of the same full load. LOAD files after CDC files, with no LOAD file
    merged, are a reload too (the first load was empty). Not when a LOAD file is quarantined (it may
    be the one that makes the load complete). Before the load is complete, a reload's file in a new
    stream cannot be told from a late file of the latest load by names (DMS's table statistics tell it:
    TableLoad.merge, 03_merge step 1).
    The merge still requires the files to come after everything the latest full load transferred
    before it starts a new one."""
    newest = {}
    for key in merged_load_keys or ():
        found = full_load_stream(key, full_load_prefix)
        if found:
            newest[found[0]] = max(newest.get(found[0], 0), found[1])
    quiet = int(load_files_quarantined or 0) == 0
    if not newest:
        return int(cdc_files_merged or 0) > 0 and quiet
    for o in load_files:
        stream, number = full_load_stream(o.key, full_load_prefix)
        if stream in newest and number <= newest[stream]:
            return True
        if stream not in newest and int(load_complete or 0) and quiet:
            return True
    return False


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


# --- a landed file's columns ---------------------------------------------------------------
# After a source ALTER TABLE, DMS (HandleSourceTableAltered; "Add Column, Drop Column, Rename
# Column, and Change Column Data Type" are supported for S3 targets in CDC, AWS DMS User Guide,
# CHAP_Target.S3, Limitations) writes the table's new columns into the files that follow, and
# COPY from Parquet maps columns by position ("The number of columns in the target table and the
# number of columns in the data file must match", Redshift Database Developer Guide,
# copy-usage_notes-copy-from-columnar). Neither guide documents where a column added later sits,
# so the job reads each file's own column names from its Parquet footer: the file ends with the
# FileMetaData (Thrift compact protocol), its length (4 bytes, little-endian) and "PAR1"; field 2
# of FileMetaData is the schema, a depth-first list of SchemaElement whose first is the root
# (Apache Parquet format specification, parquet.thrift and "File Format"). MySQL: "Columns are
# always added to the end of the table" (CHAP_Source.MySQL); after a DROP COLUMN no guide says
# whether later files omit the column or carry it empty: either loads (a column a file lacks is
# NULL; one the spec no longer has, but the warehouse keeps, is left out).
PARQUET_MAGIC = b"PAR1"
FOOTER_READ = 65536  # bytes read from a file's end: the footer of a DMS file fits (else a second read)
PARQUET_INT64 = 2  # SchemaElement.type, parquet.thrift enum Type
PARQUET_INT32 = 1
# An integer's width in a Parquet file: its physical type is INT32 for 8, 16 and 32 bits (INT64 for 64), and
# the width is an annotation, the logical type INTEGER (IntType bitWidth, isSigned) or the older converted
# type INT_8 .. UINT_64 (Apache Parquet format, LogicalTypes.md, "Signed Integers" and "Unsigned Integers";
# parquet.thrift: SchemaElement field 6 converted_type, field 10 logicalType, LogicalType field 10 INTEGER).
# DMS lands its INT1 as INT8, INT2 as INT16 and INT4 as INT32 (AWS DMS User Guide, CHAP_Target.S3, "Target
# data types for S3 Parquet"); MySQL TINYINT is INT1, SMALLINT INT2 (CHAP_Source.MySQL), so a source column
# widened to INT keeps the physical INT32 and loses its 8 or 16 bit annotation.
CONVERTED_INTS = {11: (8, False), 12: (16, False), 13: (32, False), 14: (64, False),
                  15: (8, True), 16: (16, True), 17: (32, True), 18: (64, True)}


class _Thrift:
    """Just enough of the Thrift compact protocol to read a Parquet schema."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def byte(self):
        self.pos += 1
        return self.data[self.pos - 1]

    def varint(self):
        shift = value = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value

    def int(self):
        n = self.varint()
        return (n >> 1) ^ -(n & 1)  # zigzag

    def binary(self):
        n = self.varint()
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def fields(self):
        """(field id, type) of each field of a struct up to its stop; the caller reads or skips each value."""
        last = 0
        while True:
            head = self.byte()
            if head == 0:
                return
            last = last + (head >> 4) if head >> 4 else self.int()
            yield last, head & 0x0F

    def list_header(self):
        head = self.byte()
        size = head >> 4
        return (self.varint() if size == 15 else size), head & 0x0F

    def skip(self, kind, in_collection=False):
        if kind in (1, 2):  # bool: in a field header itself, a byte in a list or map
            self.pos += 1 if in_collection else 0
        elif kind == 3:
            self.pos += 1
        elif kind in (4, 5, 6):
            self.varint()
        elif kind == 7:
            self.pos += 8
        elif kind == 8:
            self.binary()
        elif kind in (9, 10):
            size, element = self.list_header()
            for _ in range(size):
                self.skip(element, True)
        elif kind == 11:
            size = self.varint()
            types = self.byte() if size else 0
            for _ in range(size):
                self.skip(types >> 4, True)
                self.skip(types & 0x0F, True)
        elif kind == 12:
            for _, field_kind in self.fields():
                self.skip(field_kind)
        else:
            raise ValueError("Thrift type %d" % kind)


def footer_size(tail):
    """Bytes at the end of a Parquet file that hold its footer, from at least its last 8 bytes."""
    if len(tail) < 12 or tail[-4:] != PARQUET_MAGIC:
        raise ValueError("not a Parquet file (no PAR1 at its end)")
    return int.from_bytes(tail[-8:-4], "little") + 8


def parquet_columns(tail):
    """[(name, physical type or None, precision or None, (bits, signed) of an integer or None)] of the
    top-level columns of a Parquet file, from bytes at its end that hold the whole footer (see footer_size)."""
    reader = _Thrift(tail[len(tail) - footer_size(tail):-8])
    for field, kind in reader.fields():
        if field != 2 or kind != 9:
            reader.skip(kind)
            continue
        size, _ = reader.list_header()
        elements = []
        for _ in range(size):
            element = {}
            for field_id, field_kind in reader.fields():
                if field_id == 4:
                    element["name"] = reader.binary().decode("utf-8")
                elif field_id in (1, 5, 6, 8) and field_kind == 5:
                    element[field_id] = reader.int()
                elif field_id == 10 and field_kind == 12:
                    element[10], element["logical"] = logical_int(reader), True
                else:
                    reader.skip(field_kind)
            elements.append(element)
        columns, i = [], 1
        for _ in range(elements[0].get(5, 0)):  # the root's children, each followed by its own subtree
            e = elements[i]
            width = e.get(10) or CONVERTED_INTS.get(e.get(6))
            if width is None and e.get(1) in (PARQUET_INT32, PARQUET_INT64) and e.get(6) is None \
                    and not e.get("logical"):
                width = (32 if e.get(1) == PARQUET_INT32 else 64, True)  # a plain int32 / int64
            columns.append((e["name"], e.get(1), e.get(8), width))
            pending = elements[i].get(5, 0)
            i += 1
            while pending:
                pending += elements[i].get(5, 0) - 1
                i += 1
        return columns
    raise ValueError("Parquet footer without a schema")


def logical_int(reader):
    """(bits, signed) of a LogicalType union that is an INTEGER (field 10: IntType, its bitWidth an i8 and
    isSigned a bool), None for another logical type; reads the whole union."""
    found = None
    for field_id, kind in reader.fields():
        if field_id != 10 or kind != 12:
            reader.skip(kind)
            continue
        bits, signed = None, True
        for inner, inner_kind in reader.fields():
            if inner == 1 and inner_kind == 3:
                bits = reader.byte()
            elif inner == 2 and inner_kind in (1, 2):
                signed = inner_kind == 1  # compact protocol: a bool field's value is its type, 1 true, 2 false
            else:
                reader.skip(inner_kind)
        found = (bits, signed) if bits else None
    return found


def read_columns(storage, landed):
    """A landed file's columns, from its footer (one ranged read, two for a large footer)."""
    try:
        tail = storage.tail(landed.key, FOOTER_READ)
        need = footer_size(tail)
        if need > len(tail):
            tail = storage.tail(landed.key, need)
        return parquet_columns(tail)
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise JobError("%s: cannot read its Parquet footer: %s" % (landed.key, exc)) from None


def file_layout(columns, landed, kept=None, file_names=None):
    """How a file with `columns` (parquet_columns) loads into a table whose landed layout is
    `landed` [(name, staging type)]: ("same", None) by a plain COPY; ("layout", names) through a
    staging table of the file's own layout; ("held", why) not until the spec knows its columns.
    kept: {column: type} of columns the warehouse keeps and the spec no longer has (dropped at the
    source): a file written before the drop still carries them, and loads without them.
    file_names: {column: its name in the file} where DMS kept the source's spelling (a column it
    casts, a LOB; see dms.tf): COPY maps by position, so only the names differ."""
    types = {(file_names or {}).get(name, name).lower(): (name, staging) for name, staging in landed}
    types.update({name.lower(): (name, t) for name, t in (kept or {}).items() if name.lower() not in types})
    unknown = [name for name, *_ in columns if name.lower() not in types]
    if unknown:
        return "held", "it carries column(s) %s that the spec does not have" % ", ".join(unknown)
    for name, physical, precision, *width in columns:
        staging = types[name.lower()][1].upper()
        decimal = re.match(r"DECIMAL\((\d+),", staging)
        if (physical == PARQUET_INT64 and staging in ("SMALLINT", "INTEGER")) or \
                (decimal and precision is not None and precision > int(decimal.group(1))) or \
                not int_fits(staging, width[0] if width else None):
            return "held", "its column %s is wider than the spec's %s" % (name, staging)
    names = [types[name.lower()][0] for name, *_ in columns]
    return ("same", None) if names == [name for name, _ in landed] else ("layout", names)


INT_BITS = {"SMALLINT": 16, "INTEGER": 32, "BIGINT": 64}


def int_fits(staging, width):
    """Whether COPY loads a Parquet integer of `width` ((bits, signed), see parquet_columns) into a staging
    integer column: a signed one no wider, an unsigned one narrower. COPY from Parquet reads the file
    through Redshift Spectrum (Redshift Database Developer Guide, copy-usage_notes-copy-from-columnar: "COPY
    from the Parquet and ORC file formats uses Redshift Spectrum"), where "the column type is embedded with
    the data" and the table's column type must match it (AWS Knowledge Center, redshift-spectrum-data-errors,
    "has an incompatible Parquet schema for column"): a SMALLINT column refuses a plain INT32, which is what
    DMS lands once the source widened a TINYINT or SMALLINT to INT (CONVERTED_INTS). True for anything else."""
    if staging not in INT_BITS or width is None or width[0] is None:
        return True
    bits, signed = width
    return bits <= INT_BITS[staging] if signed else bits < INT_BITS[staging]


def renamed_columns(columns, renamed, landed, file_names=None):
    """A file's columns (parquet_columns) with each column the source renamed since the file was written
    (renamed: {old name in lower case: new name}, the spec's renamed_from) under its new name, as the
    spec's landed layout spells it: COPY maps by position, so only the name changes. Not when the file
    carries the new name too, or the spec still has the old one."""
    if not renamed:
        return columns
    have = {c[0].lower() for c in columns}
    spec = {(file_names or {}).get(n, n).lower() for n, _ in landed} | {n.lower() for n, _ in landed}
    out = []
    for column in columns:
        new = renamed.get(column[0].lower())
        if new is not None and new.lower() not in have and column[0].lower() not in spec:
            column = ((file_names or {}).get(new, new),) + tuple(column[1:])
        out.append(column)
    return out


def quote_ident(name):
    """A double-quoted SQL identifier, as the render's ident filter writes it."""
    return '"' + str(name).replace('"', '""') + '"'


def layout_statements(schema, target, layout_table, names, landed, manifest, kept=None, defaults=None, kind=None):
    """Load files of another layout: COPY them into a staging table of their own column order
    (COPY from Parquet maps by position), then move the rows into `target` by name, NULL for a
    column the files lack (a column added to the spec later, or dropped at the source), or the
    column's default (`defaults`: {column: SQL literal}) when the source added it with one: the
    rows of a file written before that ALTER TABLE have the default at the source. kind: the
    rows go to a pre-stage table (TableLoad.prestage), tagged with the kind of file."""
    types = dict(kept or {})
    types.update(dict(landed))
    table = "%s.%s" % (quote_ident(schema), quote_ident(layout_table))
    have = set(names)
    defaults = defaults or {}

    def missing(name, staging):
        return "CAST(%s AS %s)" % (defaults[name], staging) if name in defaults else "NULL"

    return [
        "CREATE TABLE %s (%s)" % (table, ", ".join("%s %s" % (quote_ident(n), types[n]) for n in names)),
        "COPY %s\nFROM '${%s}'\nIAM_ROLE '${iam_role}'\nFORMAT AS PARQUET\nMANIFEST" % (table, manifest),
        "INSERT INTO %s.%s (%s) SELECT %s FROM %s" % (
            quote_ident(schema), quote_ident(target),
            ", ".join([quote_ident(n) for n, _ in landed] + ([quote_ident(KIND_COLUMN)] if kind else [])),
            ", ".join([quote_ident(n) if n in have else missing(n, t) for n, t in landed]
                      + ([quote_literal(kind)] if kind else [])), table),
        "DROP TABLE %s" % table,
    ]


# --- migrations: the warehouse's columns against the spec ------------------------------------
# What SVV_COLUMNS reports (data_type, character_maximum_length, numeric_precision, numeric_scale;
# Redshift Database Developer Guide, r_SVV_COLUMNS) spelled as the rendered DDL spells types.
CATALOG_TYPES = {"character varying": "VARCHAR", "character": "CHAR", "numeric": "DECIMAL", "integer": "INTEGER",
                 "bigint": "BIGINT", "smallint": "SMALLINT", "boolean": "BOOLEAN", "real": "REAL",
                 "double precision": "DOUBLE PRECISION", "date": "DATE", "timestamp without time zone": "TIMESTAMP",
                 "timestamp with time zone": "TIMESTAMPTZ", "time without time zone": "TIME",
                 "time with time zone": "TIMETZ", "super": "SUPER", "binary varying": "VARBYTE", "varbyte": "VARBYTE"}
TYPE_ALIASES = {"INT": "INTEGER", "INT4": "INTEGER", "INT8": "BIGINT", "INT2": "SMALLINT", "NUMERIC": "DECIMAL",
                "FLOAT8": "DOUBLE PRECISION", "FLOAT": "DOUBLE PRECISION", "FLOAT4": "REAL", "BOOL": "BOOLEAN",
                "CHARACTER VARYING": "VARCHAR", "CHARACTER": "CHAR", "BPCHAR": "CHAR", "NVARCHAR": "VARCHAR",
                "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP", "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ"}
INT_DIGITS = {"SMALLINT": 5, "INTEGER": 10, "BIGINT": 19}


def catalog_type(data_type, length, precision, scale):
    """A column's type from SVV_COLUMNS, in the DDL's spelling (VARCHAR(20), DECIMAL(12,2), BIGINT);
    None for a spelling this job does not know (such a column's type is left as it is)."""
    base = CATALOG_TYPES.get(str(data_type).lower())
    if base is None:
        return None
    if base in ("VARCHAR", "CHAR", "VARBYTE") and length not in (None, ""):
        return "%s(%d)" % (base, int(length))
    if base == "DECIMAL" and precision not in (None, ""):
        return "DECIMAL(%d,%d)" % (int(precision), int(scale or 0))
    return base


def normal_type(text):
    """A type as the DDL spells it, aliases resolved: 'numeric(12, 2)' -> 'DECIMAL(12,2)'."""
    t = re.sub(r"\s+", " ", str(text).upper().strip()).replace(", ", ",").replace(" (", "(")
    m = re.match(r"^([A-Z0-9 ]+?)(\(.*\))?$", t)
    base, args = (m.group(1), m.group(2) or "") if m else (t, "")
    return TYPE_ALIASES.get(base, base) + args


def _split_type(t):
    m = re.match(r"^([A-Z ]+[A-Z0-9]*)(?:\((\d+)(?:,(\d+))?\))?$", t)
    if not m:
        return t, ()
    return m.group(1), tuple(int(x) for x in m.group(2, 3) if x is not None)


def column_change(have, want):
    """What turning a warehouse column of type `have` into the spec's `want` takes in Redshift:
    "same"; "in_place" (ALTER COLUMN TYPE: "changes the size of a column defined as a VARCHAR data
    type", r_ALTER_TABLE, the only type change Redshift makes in place); "rebuild" (a widening that
    keeps every value: int to a wider int or decimal, decimal precision, CHAR length, REAL to
    DOUBLE PRECISION, VARBYTE length: a new column or table, filled with CAST); "narrow" (values
    could be lost); "incompatible" (another type altogether)."""
    have, want = normal_type(have), normal_type(want)
    if have == want:
        return "same"
    (hb, ha), (wb, wa) = _split_type(have), _split_type(want)
    if hb == wb == "VARCHAR" and ha and wa:
        return "in_place" if wa[0] > ha[0] else "narrow"
    if hb in ("CHAR", "VARCHAR") and wb in ("CHAR", "VARCHAR") and ha and wa:
        return "rebuild" if wa[0] >= ha[0] and not (hb == "VARCHAR" and wb == "CHAR") else "narrow"
    if hb == wb == "VARBYTE" and ha and wa:
        return "rebuild" if wa[0] > ha[0] else "narrow"
    if hb in INT_DIGITS and wb in INT_DIGITS:
        return "rebuild" if INT_DIGITS[wb] > INT_DIGITS[hb] else "narrow"
    if hb in INT_DIGITS and wb == "DECIMAL" and len(wa) == 2:
        return "rebuild" if wa[0] - wa[1] >= INT_DIGITS[hb] else "narrow"
    if hb == wb == "DECIMAL" and len(ha) == 2 and len(wa) == 2:
        return "rebuild" if wa[1] >= ha[1] and wa[0] - wa[1] >= ha[0] - ha[1] else "narrow"
    if (hb, wb) == ("REAL", "DOUBLE PRECISION"):
        return "rebuild"
    if (hb, wb) in (("DOUBLE PRECISION", "REAL"),) or (hb == "DECIMAL" and wb in INT_DIGITS):
        return "narrow"
    return "incompatible"


class Migration:
    """What one spec table's warehouse tables need: ALTER COLUMN TYPE statements, each on its own
    (Redshift Database Developer Guide, r_ALTER_TABLE, ALTER COLUMN TYPE: "You can't alter columns
    within a transaction block (BEGIN ... END)", nor "with UNIQUE, PRIMARY KEY, or FOREIGN KEY", nor
    "with compression encodings BYTEDICT, RUNLENGTH, TEXT255, or TEXT32K"), the statements of one
    transaction (ADD COLUMN: "You can add only one column in each ALTER TABLE statement"), what to
    run instead of each in-place change if Redshift refuses it, notes and problems (a change the job
    will not make)."""

    def __init__(self):
        self.in_place, self.batch, self.fallback, self.notes, self.problems = [], [], {}, [], []
        # grants to put back after the batch: (schema, table, None) for a table created anew (all its
        # grants), (schema, table, [columns]) for columns dropped and added again (their column grants)
        self.regrant = []
        self.cuts = []  # where the batch may be split between Data API batches (after each whole change)

    def add(self, statements):
        """One change, whose statements must run in one transaction (a column copied, a table rebuilt)."""
        self.batch += statements
        self.cuts.append(len(self.batch))

    def __bool__(self):
        return bool(self.in_place or self.batch)


def create_statement(create_sql, schema, name):
    """The rendered CREATE TABLE of schema.name in 01_create_tables.sql: the first statement with its
    head, from _creates' dict (plan_migrations and record_keys ask for every table part's)."""
    head = "CREATE TABLE IF NOT EXISTS %s.%s (" % (quote_ident(schema), quote_ident(name))
    statement = _creates(create_sql).get(head)
    if statement is None:
        raise JobError("no CREATE TABLE for %s.%s in the create SQL" % (schema, name))
    return statement


_CREATE_HEAD = re.compile(r'CREATE TABLE IF NOT EXISTS "(?:[^"]|"")*"\."(?:[^"]|"")*" \(')


@functools.lru_cache(maxsize=2)
def _creates(sql):
    """{CREATE TABLE head: the first statement with it} of one create SQL, kept: plan_migrations and the
    render look up every table's CREATE in it, and a scan of the statements per table made `dwctl render`
    quadratic (seconds at 1,000 tables)."""
    found = {}
    for statement in split_statements(sql):
        head = _CREATE_HEAD.match(statement)
        if head:
            found.setdefault(head.group(0), statement)
    return found


def rebuild_statements(part, create, have, keep):
    """A deep copy (Redshift Database Developer Guide, performing-a-deep-copy: a new table from the
    original DDL, filled with INSERT ... SELECT): copy the rows aside, create the table anew from the
    rendered DDL, add back columns the spec no longer has (nullable), and put the rows back with
    every column cast to its new type. One transaction; no ALTER COLUMN, RENAME or DROP COLUMN."""
    table = "%s.%s" % (quote_ident(part["schema"]), quote_ident(part["name"]))
    aside = "%s.%s" % (quote_ident(part["schema"]), quote_ident(part["name"] + part["aside_suffix"]))
    want = {n.lower(): (n, t) for n, t, _ in part["columns"]}
    common = [(n, want[n.lower()][1]) for n, _, _ in have if n.lower() in want]
    kept = [(n, t) for n, t, _ in have if n.lower() in keep]
    moved = common + kept
    return ["CREATE TABLE %s AS SELECT * FROM %s" % (aside, table), "DROP TABLE %s" % table, create] + \
        ["ALTER TABLE %s ADD COLUMN %s %s" % (table, quote_ident(n), t) for n, t in kept] + \
        ["INSERT INTO %s (%s) SELECT %s FROM %s" % (
            table, ", ".join(quote_ident(n) for n, _ in moved),
            ", ".join("CAST(%s AS %s)" % (quote_ident(n), t) for n, t in moved), aside),
         "DROP TABLE %s" % aside]


def table_keys(create):
    """(primary key, sort key, dist key) columns of a rendered CREATE TABLE, lower case."""
    def names(found):
        return [n.replace('""', '"').lower() for n in re.findall(r'"((?:[^"]|"")*)"', found.group(1))] if found else []
    dist = names(re.search(r"\bDISTKEY\s*\(([^)]*)\)", create))
    return (names(re.search(r"\bPRIMARY KEY \(([^)]*)\)", create)), names(re.search(r"\bSORTKEY\s*\(([^)]*)\)", create)),
            dist[0] if dist else None)


def key_statements(table, name, keys, want):
    """What lets column `name` be dropped, and what gives the table the rendered DDL's keys once it is
    back. keys: [sort key columns, dist key column] the table has now, updated to what these statements
    leave; want: (sort key columns, dist key column) of the DDL, empty / None for AUTO.
    Redshift Database Developer Guide, r_ALTER_TABLE: "You can't drop a column that is the distribution key
    (DISTKEY) or a sort key (SORTKEY) of the table"; ALTER [COMPOUND] SORTKEY (columns) "changes or adds the
    sort key", ALTER SORTKEY NONE "removes the sort key", while ALTER SORTKEY AUTO "preserves the existing
    sort key of the table" (so AUTO frees no column: NONE first, AUTO after); ALTER DISTSTYLE AUTO keeps a
    large table's DISTKEY ("converted to AUTO(KEY) and the DISTKEY is preserved": EVEN first, AUTO after);
    ALTER DISTKEY column. None of them is refused inside a transaction block."""
    before, after = [], []
    name = name.lower()
    want_sort, want_dist = list(want[0]), want[1]
    if name in keys[0]:
        if want_sort and name not in want_sort:  # the DDL's own key frees the column
            before.append("ALTER TABLE %s ALTER SORTKEY (%s)" % (table, ", ".join(quote_ident(n) for n in want_sort)))
        else:
            before.append("ALTER TABLE %s ALTER SORTKEY NONE" % table)
            after.append("ALTER TABLE %s ALTER SORTKEY %s" % (
                table, "(%s)" % ", ".join(quote_ident(n) for n in want_sort) if want_sort else "AUTO"))
        keys[0] = want_sort
    if keys[1] is not None and name == keys[1]:
        if want_dist is not None and want_dist != name:
            before.append("ALTER TABLE %s ALTER DISTKEY %s" % (table, quote_ident(want_dist)))
        else:
            before.append("ALTER TABLE %s ALTER DISTSTYLE EVEN" % table)
            after.append("ALTER TABLE %s ALTER %s" % (table, "DISTKEY %s" % quote_ident(want_dist) if want_dist
                                                       else "DISTSTYLE AUTO"))
        keys[1] = want_dist
    return before, after


def new_key_statements(table, name, want):
    """A column added that is in the DDL's sort key or its dist key is made so after the ADD: "You can't
    add a column that is the distribution key (DISTKEY) or a sort key (SORTKEY) of the table"
    (r_ALTER_TABLE)."""
    out = []
    if name.lower() in want[0]:
        out.append("ALTER TABLE %s ALTER SORTKEY (%s)" % (table, ", ".join(quote_ident(n) for n in want[0])))
    if want[1] is not None and name.lower() == want[1]:
        out.append("ALTER TABLE %s ALTER DISTKEY %s" % (table, quote_ident(want[1])))
    return out


def keys_changed(before, after, columns):
    """The note on a table whose keys a migration changes: 'sort key (placed_at) -> AUTO' and the like."""
    said = []
    if list(before[0]) != list(after[0]):
        said.append("sort key %s -> %s" % tuple("(%s)" % ", ".join(k) if k else "AUTO" for k in (before[0], after[0])))
    if before[1] != after[1]:
        said.append("distribution key %s -> %s" % (before[1] or "AUTO", after[1] or "AUTO"))
    return "%s, before column %s is dropped and added again (Redshift does not drop a column that is a key)" % (
        " and ".join(said), ", ".join(columns))


def add_column(table, name, column_type, default=None):
    """ALTER TABLE ... ADD COLUMN, with the column's DEFAULT when the spec gives one (r_ALTER_TABLE: "The
    data type of default_expr must match the data type of the column")."""
    return "ALTER TABLE %s ADD COLUMN %s %s%s" % (table, quote_ident(name), column_type,
                                                  "" if default is None else " DEFAULT %s" % default)


def copy_column_statements(part, name, new_type, default=None, keys=None, want=((), None)):
    """Change a column's type and keep the table (so its grants and the rows' order stay): add a
    column of the new type, fill it with CAST, drop the old one, rename the new one to its name.
    Redshift Database Developer Guide, r_ALTER_TABLE: ADD COLUMN ("You can add only one column in
    each ALTER TABLE statement"), DROP COLUMN, RENAME COLUMN; none of them is refused inside a
    transaction block (only ALTER COLUMN TYPE and external tables are), so the table changes in
    one transaction. "You can't drop a column that is the distribution key (DISTKEY) or a sort key
    (SORTKEY)": such a column stops being the key first, and the table gets the DDL's keys after
    (key_statements; keys: what the table has now, updated; want: the DDL's). Not for a primary key
    column: its constraint depends on it, and the new column, added nullable, could not carry the
    constraint again ("You can't add a primary-key constraint to a nullable column"): that table is
    rebuilt.
    The column moves to the end of the table: every statement dwctl writes names its columns
    (INSERT ... (columns), and COPY goes into staging tables, which are created from the DDL)."""
    table = "%s.%s" % (quote_ident(part["schema"]), quote_ident(part["name"]))
    aside = name + part["aside_suffix"]
    before, after = key_statements(table, name, [list(want[0]), want[1]] if keys is None else keys, want)
    return before + [
        add_column(table, aside, new_type, default),
        "UPDATE %s SET %s = CAST(%s AS %s)" % (table, quote_ident(aside), quote_ident(name), new_type),
        "ALTER TABLE %s DROP COLUMN %s" % (table, quote_ident(name)),
        "ALTER TABLE %s RENAME COLUMN %s TO %s" % (table, quote_ident(aside), quote_ident(name))] + after


def grant_statements(schema, table, relation_rows, column_rows, columns=None):
    """GRANTs that give back what SVV_RELATION_PRIVILEGES and SVV_COLUMN_PRIVILEGES showed for a
    table (Redshift Database Developer Guide, r_SVV_RELATION_PRIVILEGES, r_SVV_COLUMN_PRIVILEGES:
    privilege_type, identity_name, identity_type user | role | group; r_GRANT). columns: only the
    column grants of these columns (the table itself was kept), else every grant."""
    target = "%s.%s" % (quote_ident(schema), quote_ident(table))

    def grantee(name, kind):
        kind = str(kind).lower()
        if kind == "public" or (kind == "group" and str(name).lower() == "public"):
            return "PUBLIC"
        return {"role": "ROLE ", "group": "GROUP "}.get(kind, "") + quote_ident(name)

    out = []
    if columns is None:
        for privilege, name, kind, admin in relation_rows:
            option = " WITH GRANT OPTION" if str(admin).lower() in ("true", "t", "1") and str(kind).lower() == "user" else ""
            out.append("GRANT %s ON TABLE %s TO %s%s" % (privilege, target, grantee(name, kind), option))
    wanted = None if columns is None else {c.lower() for c in columns}
    for column, privilege, name, kind in column_rows:
        if wanted is None or str(column).lower() in wanted:
            out.append("GRANT %s (%s) ON TABLE %s TO %s" % (privilege, quote_ident(column), target, grantee(name, kind)))
    return out


def plan_renames(part, have, migration, label):
    """RENAME COLUMN for each column the source renamed (the spec's renamed_from, part["renamed"]: {new: old})
    whose old name the table still has and whose new name it lacks, first in the table's batch: the column
    keeps its values, its place in the table and its grants, where a drop and an add would leave the rows
    already there NULL in the new column. Redshift Database Developer Guide, r_ALTER_TABLE: "RENAME COLUMN
    column_name TO new_name: A clause that renames a column"; only ALTER COLUMN TYPE and external tables
    are refused inside a transaction block. Returns `have` as it is after the renames, and the new names
    (lower case). A column the part has by design (a history or bookkeeping column) is never renamed."""
    renamed = part.get("renamed") or {}
    names = {n.lower(): n for n, _, _ in have}
    wanted = {n.lower() for n, _, _ in part["columns"]}
    table = "%s.%s" % (quote_ident(part["schema"]), quote_ident(part["name"]))
    done, statements = {}, []
    for new, old in sorted(renamed.items()):
        if old.lower() not in names or old.lower() in wanted:
            continue  # renamed already (or a table created after the rename)
        if new.lower() in names:
            migration.problems.append(
                "%s: columns %s and %s (its renamed_from) are both in the warehouse, so the rename cannot carry "
                "the values over: the rows merged before the rename hold theirs in %s. Reload the table in DMS "
                "(the reload replaces every row), then take renamed_from out of the spec" % (label, new, old, old))
            continue
        statements.append("ALTER TABLE %s RENAME COLUMN %s TO %s" % (table, quote_ident(names[old.lower()]),
                                                                    quote_ident(new)))
        done[old.lower()] = new
        migration.notes.append("%s: column %s renamed to %s (RENAME COLUMN: its values carry over)"
                               % (label, names[old.lower()], new))
    if statements:
        migration.add(statements)
    return [(done.get(n.lower(), n), t, nullable) for n, t, nullable in have], {n.lower() for n in done.values()}


def plan_part(part, have, create, migration, keys=None):
    """Add what one warehouse table needs to `migration`. have: [(name, type, nullable)] now; keys:
    ([sort key columns], dist key column) the table has now (read_keys), None when unknown (then the
    DDL's are assumed). Empty tables (staging, work) are created again when they differ; the others
    keep their rows: a new column is added (nullable: the rows already there have no value), a VARCHAR
    grows in place, other widenings rebuild the table, a column the spec dropped stays (nullable), a
    narrowing is not made (the wider type stays). A column copied (dropped and added again) that is a
    key of the table stops being one first (key_statements), and the note says how the keys change."""
    label = "%s.%s" % (part["schema"], part["name"])
    want = [(n, normal_type(t), nullable) for n, t, nullable in part["columns"]]
    if part["empty"]:
        same = len(have) == len(want) and all(h.lower() == w.lower() and (ht is None or normal_type(ht) == wt)
                                              for (h, ht, _), (w, wt, _) in zip(have, want))
        if not same:
            migration.add(["DROP TABLE %s.%s" % (quote_ident(part["schema"]), quote_ident(part["name"])), create])
        return
    have, renamed = plan_renames(part, have, migration, label)
    now = {n.lower(): (n, t and normal_type(t), nullable) for n, t, nullable in have}
    table = "%s.%s" % (quote_ident(part["schema"]), quote_ident(part["name"]))
    fixed = {n.lower() for n in part["fixed"]}
    primary, sort, dist = table_keys(create)
    ddl_keys = (sort, dist)
    keys_now = [list(sort), dist] if keys is None else [[k.lower() for k in keys[0]], keys[1] and keys[1].lower()]
    defaults = {n.lower(): v for n, v in (part.get("defaults") or {}).items()}
    adds, alters, copies, rebuild = [], [], [], False
    for name, t, _ in want:
        default = defaults.get(name.lower())
        # ADD COLUMN ... DEFAULT: r_ALTER_TABLE promises the default for later INSERTs; the rows already
        # there get it too, by an UPDATE in the same transaction: they are the source's rows from before
        # its ALTER TABLE ... DEFAULT, which gave each of them the default (DMS sends no change for them).
        filled = [] if default is None else ["UPDATE %s SET %s = %s" % (table, quote_ident(name), default)]
        if name.lower() not in now and name.lower() in primary:
            rebuild = True  # ADD COLUMN cannot "modify ... PRIMARY KEY" (r_ALTER_TABLE)
            migration.notes.append("%s: column %s added (%s; a key column: the table is rebuilt)" % (label, name, t))
            continue
        if name.lower() not in now and name.lower() in fixed:
            # "You can't add a column that is the distribution key (DISTKEY) or a sort key (SORTKEY)": added
            # first, then made the key (r_ALTER_TABLE: ALTER SORTKEY, ALTER DISTKEY)
            adds.append([add_column(table, name, t, default)] + filled + new_key_statements(table, name, ddl_keys))
            migration.notes.append("%s: column %s added (%s; then made the table's sort or distribution key)"
                                   % (label, name, t))
            continue
        if name.lower() not in now:
            adds.append([add_column(table, name, t, default)] + filled)
            migration.notes.append("%s: column %s added (%s; %s in the rows already there)" % (
                label, name, t, "NULL" if default is None else "the source's default %s" % default))
            continue
        old = now[name.lower()][1]
        change = "same" if old is None else column_change(old, t)  # a type SVV_COLUMNS spells unknown to us
        if change == "in_place" and name.lower() not in primary and default is None and name.lower() not in renamed:
            # (a renamed column's new name exists only inside the batch: ALTER COLUMN TYPE runs before it)
            # not on "columns with UNIQUE, PRIMARY KEY, or FOREIGN KEY" (r_ALTER_TABLE); a sort or dist key may
            alters.append(("ALTER TABLE %s ALTER COLUMN %s TYPE %s" % (table, quote_ident(name), t),
                           (now[name.lower()][0], t)))
        elif change in ("in_place", "rebuild") and name.lower() not in primary:
            # ALTER COLUMN TYPE: "You can't alter columns with default values" (r_ALTER_TABLE)
            copies.append((now[name.lower()][0], t, default))
        elif change in ("in_place", "rebuild"):
            rebuild = True
        elif change == "narrow":
            migration.notes.append("%s: column %s stays %s (the spec's %s could lose values)" % (label, name, old, t))
        elif change == "incompatible":
            migration.problems.append("%s: column %s is %s in the warehouse, %s in the spec: dwctl changes a type "
                                      "only to a wider one of its kind; rebuild the table by hand" % (label, name, old, t))
        if change in ("in_place", "rebuild"):
            migration.notes.append("%s: column %s widened from %s to %s" % (label, name, old, t))
    spec_names = {n.lower() for n, _, _ in want}
    keep = {n for n in now if n not in spec_names}
    for name in sorted(keep):
        # A spec cannot tell a column dropped at the source from one the spec left out while the source has it:
        # DMS lands every column no remove-column rule drops, and the job holds files with a column the spec lacks
        migration.notes.append("%s: column %s is no longer in the spec; kept (nullable); if the source still has "
                               "it, exclude it instead (exclude: true), or the table's files are held"
                               % (label, now[name][0]))
        if not now[name][2] and now[name][1] is not None:  # a NOT NULL column the merge no longer fills
            if name in primary:
                rebuild = True
            else:  # Redshift has no ALTER COLUMN DROP NOT NULL: the column is copied into a nullable one
                copies.append((now[name][0], now[name][1], None))
        elif not now[name][2]:
            rebuild = True  # (a type this job cannot read: the rebuild refuses it below)
    narrowed = any(now[n.lower()][1] and column_change(now[n.lower()][1], t) in ("narrow", "incompatible")
                   for n, t, _ in want if n.lower() in now)
    unknown = [now[n][0] for n in keep if now[n][1] is None]
    if rebuild and unknown:
        migration.problems.append("%s: needs a rebuild, which would lose column(s) %s (a type this job cannot read "
                                  "from SVV_COLUMNS): rebuild the table by hand" % (label, ", ".join(sorted(unknown))))
        return
    if rebuild and narrowed:
        migration.problems.append("%s: needs a rebuild, which would narrow a column: make the spec's type at least "
                                  "as wide as the warehouse's" % label)
        return
    if rebuild:
        migration.add(rebuild_statements(part, create, have, keep))
        migration.regrant.append((part["schema"], part["name"], None))
        migration.notes.append("%s: rebuilt (a key column changes); its grants are given again" % label)
        return
    for change in adds:
        migration.add(change)
    added = {n.lower() for n, _, _ in want if n.lower() not in now}  # a key among them is made so (new_key_statements)
    keys_now[0] = list(sort) if added & set(sort) else keys_now[0]
    keys_now[1] = dist if dist in added else keys_now[1]
    keys_before, freed = (list(keys_now[0]), keys_now[1]), []
    for name, t, default in copies:
        if name.lower() in keys_now[0] or name.lower() == keys_now[1]:
            freed.append(name)
        migration.add(copy_column_statements(part, name, t, default, keys_now, ddl_keys))
    if copies:
        migration.regrant.append((part["schema"], part["name"], [n for n, _, _ in copies]))
    for statement, (name, t) in alters:
        migration.in_place.append(statement)
        # e.g. a compression encoding ALTER COLUMN TYPE refuses: the column is copied instead (after the
        # batch, from the keys the batch leaves)
        migration.fallback[statement] = (copy_column_statements(part, name, t, None, [list(keys_now[0]), keys_now[1]],
                                                                ddl_keys), (part["schema"], part["name"], [name]))
    if freed and (keys_now[0], keys_now[1]) != keys_before:
        migration.notes.append("%s: %s" % (label, keys_changed(keys_before, keys_now, freed)))


def read_catalog(warehouse, config):
    """{(schema, table): [(column, type, nullable)]} of the warehouse's staging and analytics schemas."""
    found = {}
    for schema, table, column, data_type, length, precision, scale, nullable in warehouse.query(
            config.queries["columns"]):
        found.setdefault((schema, table), []).append(
            (column, catalog_type(data_type, length, precision, scale), str(nullable).upper() == "YES"))
    return found


def read_keys(warehouse, config):
    """{(schema, table): ([sort key columns in order], dist key column)} of the warehouse's tables that
    have one (Redshift Database Developer Guide, r_SVV_REDSHIFT_COLUMNS: sortkey "the order of the column
    in the sort key" (negative in an interleaved one, 0 outside it), distkey "true if this column is the
    distribution key"; the job's user owns the tables, so it sees their rows); None when the config has no
    such query (rendered before it existed)."""
    if "keys" not in config.queries:
        return None
    found = {}
    for schema, table, column, sortkey, distkey in warehouse.query(config.queries["keys"]):
        sort, dist = found.setdefault((schema, table), ([], [None]))
        if sortkey not in (None, "", 0, "0"):
            sort.append((abs(int(sortkey)), column))
        if str(distkey).lower() in ("true", "t", "1"):
            dist[0] = column
    return {name: ([c for _, c in sorted(sort)], dist[0]) for name, (sort, dist) in found.items()}


def plan_migrations(config, found, keys=None):
    """{spec table: Migration} for the tables whose warehouse columns differ from the spec. keys: the
    tables' sort and dist keys now (read_keys; a table not in it has none), None when unknown."""
    plans = {}
    for table, parts in sorted(config.parts.items()):
        migration = Migration()
        for part in parts:
            have = found.get((part["schema"], part["name"]))
            if have is not None:  # a table the DDL just created is as the spec says
                plan_part(part, have, create_statement(config.create_sql, part["schema"], part["name"]), migration,
                          None if keys is None else keys.get((part["schema"], part["name"]), ([], None)))
        if migration or migration.notes or migration.problems:
            plans[table] = migration
    return plans


def grants_now(warehouse, config, schema, table, columns=None):
    """The GRANTs that give a table (or these columns of it) back what it is granted now. The job's
    user sees every grant only with ACCESS SYSTEM TABLE ("Regular users can only see identities to
    which they have access or for which they are the identities owner", r_SVV_RELATION_PRIVILEGES)."""
    if "relation_privileges" not in config.queries:
        return []
    relation = [] if columns is not None else warehouse.query(config.queries["relation_privileges"],
                                                              schema=schema, table=table)
    column = warehouse.query(config.queries["column_privileges"], schema=schema, table=table)
    return grant_statements(schema, table, relation, column, columns)


def transactions(units):
    """Pack whole changes into Data API batches of at most MAX_BATCH statements, each batch one
    transaction: a column copy is never split between its DROP COLUMN and its RENAME COLUMN (only a
    change longer than a batch is, e.g. a rebuild keeping many dropped columns)."""
    out = [[]]
    for unit in units:
        if len(out[-1]) + len(unit) > MAX_BATCH and out[-1]:
            out.append([])
        for start in range(0, len(unit), MAX_BATCH):
            if start:
                out.append([])
            out[-1] += unit[start:start + MAX_BATCH]
    return [batch for batch in out if batch]


_DROPS = re.compile(r'^(?:DROP TABLE ("(?:[^"]|"")*"\."(?:[^"]|"")*")|ALTER TABLE ("(?:[^"]|"")*"\."(?:[^"]|"")*") '
                    r'DROP COLUMN ("(?:[^"]|"")*"))$')


def dropped_by(statements):
    """(schema, table, column or None) each DROP TABLE / DROP COLUMN of a migration's statements drops."""
    def names(text):
        return [n.replace('""', '"').lower() for n in re.findall(r'"((?:[^"]|"")*)"', text)]
    found = []
    for statement in statements:
        m = _DROPS.match(statement)
        if m:
            schema, table = names(m.group(1) or m.group(2))
            found.append((schema, table, names(m.group(3))[0] if m.group(3) else None))
    return found


def views_in_the_way(dependents, statements):
    """The views a migration's DROP TABLE or DROP COLUMN would fail on. Both default to RESTRICT: a
    view bound to the table, or reading the column, makes them fail (Redshift Database Developer
    Guide, r_DROP_TABLE; r_ALTER_TABLE, DROP COLUMN: "If a defined view references the column that
    is being dropped"). dependents: rows of the view_dependents query."""
    blocking = set()
    for schema, table, column in dropped_by(statements):
        for ts, tn, col, vs, vn in dependents:
            if (ts.lower(), tn.lower()) == (schema, table) and (column is None or col is None or col.lower() == column):
                blocking.add(("%s.%s" % (vs, vn), table if column is None else "%s.%s" % (table, column)))
    return sorted(blocking)


def migrate(warehouse, config, log=print):
    """Apply what each table's warehouse tables lack, table by table (each its own transaction);
    returns ({table migrated}, [problems]). A table whose migration fails is a problem of its own:
    the other tables are migrated and loaded.

    A migration that would drop a table or a column a user's view is bound to is not started: it
    would fail on the view (RESTRICT), and dropping the user's view (CASCADE) would lose it. Views and
    data stay as they are, the table is not loaded, and the problem names the views and the fix:
    re-create them as late-binding views, WITH NO SCHEMA BINDING, which no DROP depends on
    (r_CREATE_VIEW), or drop them. The next run migrates."""
    changed, problems = set(), []
    dependents = []

    def check_views(statements):
        """Raise, naming the views and the fix, when a DROP in statements would fail on a view."""
        if not dropped_by(statements):
            return
        if not dependents:
            dependents.append(warehouse.query(config.queries["view_dependents"]))
        blocking = views_in_the_way(dependents[0], statements)
        if blocking:
            raise JobError("the migration drops and re-creates %s, and these views are bound to it: %s. Re-create "
                           "each view WITH NO SCHEMA BINDING (a late-binding view, which a DROP does not depend "
                           "on), or drop it; nothing was changed, and the next run migrates the table"
                           % (", ".join(sorted({what for _, what in blocking})),
                              ", ".join(sorted({view for view, _ in blocking}))))

    found = read_catalog(warehouse, config)
    plans = plan_migrations(config, found)
    if any(plans.values()):  # something changes: the keys the tables have decide how (a query only then)
        plans = plan_migrations(config, found, read_keys(warehouse, config))
    for table, migration in plans.items():
        for note in migration.notes:
            log("%s: %s" % (table, note))
        problems += ["%s: %s" % (table, p) for p in migration.problems]
        units = [migration.batch[a:b] for a, b in zip([0] + migration.cuts, migration.cuts)]
        regrant = list(migration.regrant)
        try:
            check_views(migration.batch)
            for statement in migration.in_place:
                try:
                    warehouse.execute(statement)
                except JobError as exc:  # e.g. a compression encoding ALTER COLUMN TYPE refuses
                    log("%s: %s failed (%s); copying the column instead" % (table, statement, exc))
                    statements, again = migration.fallback[statement]
                    check_views(statements)
                    units.append(statements)
                    regrant.append(again)
            # the grants as they are now, read before the batch drops a table or a column
            units += [[g] for schema, name, columns in regrant for g in grants_now(warehouse, config, schema, name, columns)]
            for n, statements in enumerate(transactions(units)):
                warehouse.batch(statements, "dwctl-migrate-" + table + ("-%d" % n if n else ""))
        except JobError as exc:
            problems.append("%s: migration failed, the table is not loaded this run: %s" % (table, exc))
            continue
        if migration:
            changed.add(table)
    return changed, problems


# --- discovery -----------------------------------------------------------------------------
class ListingDiscovery:
    """Every object under each table's prefix whose version is neither merged nor quarantined."""

    def __init__(self, storage, warehouse, config):
        self.storage, self.warehouse, self.config = storage, warehouse, config
        self.deleted = {}  # table -> keys merged (or quarantined) before and gone from the bucket now

    def new_objects(self, tables):
        found = {}
        for table in sorted(tables):
            listed = parquet_only(self.storage.list(self.config.tables[table]))
            known = {(r[0], r[1]) for r in self.warehouse.query(self.config.queries["known_files"], table_name=table)}
            present = {o.key for o in listed}
            gone = sorted({key for key, _ in known} - present)
            if gone:  # not those recorded as deleted already (record_deleted)
                recorded = {r[0] for r in self.warehouse.query(self.config.queries["deleted_files"], table_name=table)}
                gone = [key for key in gone if key not in recorded]
            if gone:
                self.deleted[table] = gone
            fresh = [o for o in listed if o.identity() not in known]
            if fresh:
                found[table] = fresh
        return found

    def done(self, objects):
        """Nothing to acknowledge: the load log and the quarantine are the record."""

    def flush(self):
        """Nothing pending."""


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

    The queue is drained by up to RECEIVERS receivers at once, as many as its depth needs at 10
    messages a call: "ApproximateNumberOfMessages - Returns the approximate number of messages
    available for retrieval from the queue" (SQS API Reference, GetQueueAttributes), at most 10 per
    ReceiveMessage (MaxNumberOfMessages "Valid values: 1 to 10", ReceiveMessage). A received message
    is hidden from every other receiver for the visibility timeout (SQS Developer Guide,
    sqs-visibility-timeout.html), so the receivers share the work; a standard queue may still
    deliver a message twice ("at-least-once delivery", sqs-standard-queues.html), which the merge
    absorbs. The depth is approximate, so the drain goes on past it while calls come back full and
    stops at the first call that is not, or that is empty (short polling samples a subset of the
    servers and may miss messages, sqs-short-and-long-polling.html: those wait for the next run).
    Done messages are deleted 10 at a time, whatever table they belong to: "Deletes up to ten
    messages from the specified queue" (DeleteMessageBatch), authorized by sqs:DeleteMessage
    (sqs-api-permissions-reference.html: a batch action needs the permission of the action it batches).
    """

    def __init__(self, sqs, queue_url, config, visibility_timeout=3900, max_messages=100000, receivers=None):
        import threading

        self.sqs, self.queue_url, self.config, self.max_messages = sqs, queue_url, config, max_messages
        self.visibility_timeout = int(visibility_timeout)  # longer than a run: a message is not seen twice in one
        self.receivers = int(receivers or RECEIVERS)
        self.unrelated = []
        self.deleted = {}  # table -> keys DMS deleted (an "Object Deleted" event by DeleteObject)
        self.lock = threading.Lock()
        self.pending = []  # receipts of done messages not deleted yet (fewer than SQS_BATCH)

    def depth(self):
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url,
                                                   AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes.get("Attributes", {}).get("ApproximateNumberOfMessages", 0) or 0)

    def receive(self):
        target = min(self.max_messages, self.depth())
        messages, state = [], {"drained": False}

        def receiver(_):
            while True:
                with self.lock:
                    if state["drained"] or len(messages) >= self.max_messages:
                        return
                got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=SQS_BATCH,
                                               WaitTimeSeconds=0,
                                               VisibilityTimeout=self.visibility_timeout).get("Messages", [])
                with self.lock:
                    messages.extend(got)
                    if not got or (len(got) < SQS_BATCH and len(messages) >= target):
                        state["drained"] = True

        wanted = max(1, min(self.receivers, -(-target // SQS_BATCH)))
        in_parallel(receiver, range(wanted), wanted)
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
        """Messages of files merged or quarantined: deleted once ten are done (flush deletes the rest). A
        run stopped before its flush leaves at most nine done messages, which come back after the
        visibility timeout: their files are merged already, and merging them again changes nothing."""
        with self.lock:
            self.pending += [o.receipt for o in objects if o.receipt]
            full = len(self.pending) - len(self.pending) % SQS_BATCH
            ready, self.pending = self.pending[:full], self.pending[full:]
        self.delete(ready)

    def flush(self):
        """Delete the done messages still pending: the run calls it last, however it ends."""
        with self.lock:
            ready, self.pending = self.pending, []
        self.delete(ready)

    def delete(self, receipts):
        for start in range(0, len(receipts), SQS_BATCH):
            chunk = receipts[start:start + SQS_BATCH]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)])


def in_parallel(work, items, workers):
    """[work(item) for item in items], on up to `workers` threads (in order; the caller's thread when 1).
    boto3's low-level clients are thread-safe (Boto3 documentation, "Multithreading or multiprocessing
    with clients"), so the threads share them."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(work, items))


# --- AWS -----------------------------------------------------------------------------------
class S3Storage:
    """The landing bucket: list a prefix, write a manifest.

    With `kms_key_arn` (the stack's key, --kms_key_arn) every manifest is written with SSE-KMS under
    that key, named in the request's own headers: the landing bucket's policy refuses a PutObject
    without them, whatever the bucket's default encryption (S3 User Guide, bucket-encryption.html:
    bucket policies are evaluated before default encryption is applied; the policy is in s3.tf).
    Without it nothing is added (a run given no key, which that bucket would refuse).
    """

    def __init__(self, s3, bucket, kms_key_arn=None):
        self.s3, self.bucket = s3, bucket
        self.encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn} if kms_key_arn else {}

    def list(self, prefix):
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [Landed(o["Key"], o["Size"], o["ETag"]) for page in pages for o in page.get("Contents", [])]

    def put(self, key, body, content_type):
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode("utf-8"), ContentType=content_type,
                           **self.encryption)
        return "s3://%s/%s" % (self.bucket, key)

    def tail(self, key, size):
        """The object's last `size` bytes (all of it if smaller): a suffix range, "bytes=-N"
        (Amazon S3 API Reference, GetObject, Range; RFC 9110 section 14.1.2)."""
        return self.s3.get_object(Bucket=self.bucket, Key=key, Range="bytes=-%d" % size)["Body"].read()


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
        check_batch(statements, name)
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


class InFlight:
    """A warehouse through which at most `slots` statements run at once, whatever the number of threads
    calling it: a thread waits for a slot before it starts a statement (or a batch) and gives it back
    once the statement has finished. The warehouse sees --concurrency statements at most, while more
    tables than that make their S3 calls meanwhile (run)."""

    def __init__(self, warehouse, slots):
        self.warehouse, self.slots = warehouse, make_slots(slots)

    def __getattr__(self, name):  # sleep, target, client...: the warehouse's own
        return getattr(self.warehouse, name)

    def query(self, sql, **params):
        with self.slots:
            return self.warehouse.query(sql, **params)

    def execute(self, sql, **params):
        with self.slots:
            self.warehouse.execute(sql, **params)

    def batch(self, statements, name):
        with self.slots:
            self.warehouse.batch(statements, name)


def make_slots(count):
    """The semaphore InFlight waits on (bench/bench_loader.py puts a timed one in its place)."""
    import threading

    return threading.BoundedSemaphore(count)


# --- one table -----------------------------------------------------------------------------
class TableLoad:
    """Merge one table's batch of new files; on failure, find and quarantine the files at fault."""

    def __init__(self, storage, warehouse, config, args, table, run_id, log=print, load_start="", blocker=None,
                 first=()):
        """load_start: when DMS's latest full load of the table began (its table statistics, as the
        landed timestamp column spells times; "" when unknown). blocker: a full-load file of the
        table quarantined or held in an earlier run. first: keys of full-load files that kept the
        table's other files waiting, offered again: they merge before those, as they would have."""
        self.storage, self.warehouse, self.config, self.args = storage, warehouse, config, args
        self.table, self.run_id, self.log = table, run_id, log
        self.load_start, self.blocker, self.first = load_start, blocker, set(first)
        self.quarantined = []
        self.batches = 0
        self.layouts = {}  # (key, ETag) -> None (the spec's layout) or the file's column names
        self.kept = None  # {column: type} the warehouse keeps and the spec dropped; read when needed

    def kept_columns(self):
        """Columns of the table's analytics table that the spec no longer has (kept when dropped)."""
        if self.kept is None:
            spec = {name.lower() for name, _ in self.config.landed[self.table]}
            mine = (self.config.analytics_schema, self.config.target[self.table])
            self.kept = {name: t for name, t, _ in read_catalog(self.warehouse, self.config).get(mine, [])
                         if name.lower() not in spec and t is not None}
        return self.kept

    def file_columns(self, landed):
        """A landed file's columns (its footer), a column the source renamed since read by its new name."""
        return renamed_columns(read_columns(self.storage, landed), self.config.renamed.get(self.table),
                               self.config.landed[self.table], self.config.file_names[self.table])

    def copies(self, kind, files, base, values, layouts):
        """Plan one kind of file (load, cdc, or restage: merged LOAD files staged again): a manifest
        for the plain COPY of the files in the spec's layout (02_load_staging.sql; True when there is
        one), and one per other layout, appended to `layouts` for prestage as (kind, column names,
        manifest placeholder, its value)."""
        direct = [o for o in files if self.layouts.get(o.identity()) is None]
        groups = {}
        for o in files:
            if self.layouts.get(o.identity()) is not None:
                groups.setdefault(tuple(self.layouts[o.identity()]), []).append(o)
        if direct:
            values["manifest:%s:load" % self.table if kind == "restage" else "manifest:%s:%s" % (self.table, kind)] = \
                self.storage.put("%s.%s.manifest" % (base, kind), manifest_document(self.args["landing_bucket"], direct),
                                 "application/json")
        for n, (names, group) in enumerate(sorted(groups.items())):
            url = self.storage.put("%s.%s%d.manifest" % (base, kind, n),
                                   manifest_document(self.args["landing_bucket"], group), "application/json")
            layouts.append((kind, list(names), "manifest:%s:%s:%d" % (self.table, kind, n), url))
        return bool(direct)

    def prestage(self, layouts, base):
        """Stage the rows of files of other layouts (a source ALTER TABLE) in the table's pre-stage
        table, in transactions of their own before the merge batch, each safe to repeat (the table is
        created anew): per layout a staging table of the file's columns, its COPY, and an INSERT by
        name into the pre-stage table tagged with the kind of file, so the merge batch moves each
        kind's rows with one INSERT, whatever the number of layouts (the Data API runs at most
        MAX_BATCH statements in a batch). Returns the pre-stage table, or None when there are none."""
        if not layouts:
            return None
        schema, landed = self.config.staging_schema, self.config.landed[self.table]
        table = "%s.%s" % (quote_ident(schema), quote_ident(self.table + self.config.prestage_suffix))
        values = {"iam_role": self.args["copy_role_arn"]}
        units = [["DROP TABLE IF EXISTS %s" % table,
                  "CREATE TABLE %s (%s)" % (table, ", ".join(["%s %s" % (quote_ident(n), t) for n, t in landed]
                                                            + ["%s VARCHAR(8)" % quote_ident(KIND_COLUMN)]))]]
        for kind, names, placeholder, url in layouts:
            values[placeholder] = url
            source = self.table + (self.config.load_suffix if kind in ("load", "restage") else "")
            unique = hashlib.sha256(("%s/%s" % (base, placeholder)).encode("utf-8")).hexdigest()[:12]
            units.append(layout_statements(schema, self.table + self.config.prestage_suffix,
                                           source + self.config.layout_suffix + unique, names, landed, placeholder,
                                           self.kept, self.config.defaults.get(self.table), kind))
        for n, statements in enumerate(transactions(units)):
            batch = [substitute(s, values) for s in statements]
            retry_aborts(lambda: self.warehouse.batch(batch, "dwctl-prestage-%s-%d" % (self.table, n)),
                         self.warehouse, self.table, self.log)
        return table

    def from_prestage(self, table, kind):
        """The INSERT moving one kind's pre-staged rows into the staging table it goes to."""
        target = self.table + (self.config.load_suffix if kind in ("load", "restage") else "")
        columns = ", ".join(quote_ident(n) for n, _ in self.config.landed[self.table])
        return "INSERT INTO %s.%s (%s) SELECT %s FROM %s WHERE %s = %s" % (
            quote_ident(self.config.staging_schema), quote_ident(target), columns, columns, table,
            quote_ident(KIND_COLUMN), quote_literal(kind))

    def merged_load_files(self, batch, merged_rows):
        """The table's LOAD files merged before (merged_rows: the load log's (key, ETag) rows of them)
        and still in the bucket unchanged, but not in batch."""
        merged = {(r[0], r[1]) for r in merged_rows}
        mine = {o.key for o in batch}
        found = []
        for o in parquet_only(self.storage.list(self.config.tables[self.table])):
            if o.identity() in merged and o.key not in mine and is_full_load(o.key, self.config.full_load_prefix):
                try:
                    verdict, detail = file_layout(self.file_columns(o), self.config.landed[self.table],
                                                  self.kept_columns(), self.config.file_names[self.table])
                except JobError as exc:
                    verdict, detail = "held", str(exc)
                if verdict != "held":
                    self.layouts[o.identity()] = detail
                    found.append(o)
        return found

    def merge(self, files):
        """Merge files in one transaction; raises JobError with Redshift's message.

        A new full load (DMS's table statistics report one begun after the latest here, or the
        files' names show a reload: is_reload) also stages the table's earlier LOAD files again,
        right after the merge's generation statements and in the same transaction: one of them may
        be the new load's, merged before the new load was found (03_merge, step 1). Files of other
        layouts are pre-staged first (prestage). The batch is then a fixed number of statements,
        within the Data API's MAX_BATCH whatever the number of layouts (Redshift Data API reference,
        BatchExecuteStatement: Sqls, at most 40)."""
        load, cdc = split_kinds(files, self.config.full_load_prefix)
        reload, restage = False, []
        start = self.load_start or ""
        if load:
            newest, cdc_merged, load_quarantined, load_complete, latest_start = self.warehouse.query(
                self.config.queries["load_history"], table_name=self.table)[0]
            merged = self.warehouse.query(self.config.queries["merged_load_files"],
                                          table_name=self.table) if newest else []
            reload = is_reload(load, [r[0] for r in merged], cdc_merged, load_quarantined, load_complete,
                               self.config.full_load_prefix)
            newer = bool(start) and (latest_start is None or start > latest_start)
            restage = self.merged_load_files(load, merged) if (newer if start else reload) else []
        self.batches += 1
        base = "%s/%s/%s-%d" % (self.args["manifest_prefix"].strip("/"), self.table, self.run_id, self.batches)
        values = {"iam_role": self.args["copy_role_arn"], "reload:" + self.table: "true" if reload else "false",
                  "load_start:" + self.table: start}
        again = {"iam_role": self.args["copy_role_arn"]}
        kinds, layouts = [], []
        for kind, chosen in (("load", load), ("cdc", cdc)):
            if chosen and self.copies(kind, chosen, base, values, layouts):
                kinds.append(kind)
        values["files:" + self.table] = self.storage.put(base + ".files.csv", files_csv(self.table, files), "text/csv")
        restaged = bool(restage) and self.copies("restage", restage, base + "-restage", again, layouts)
        prestaged = self.prestage(layouts, base)
        moved = {kind for kind, _, _, _ in layouts}
        merge = without_transaction(split_statements(self.config.merge_sql[self.table]))
        split = len([s for s in merge[:3] if s.startswith(("UPDATE %s" % self.config.generations_table,
                                                          "INSERT INTO %s" % self.config.generations_table))])
        # The bookkeeping tables every table's batch reads and writes are locked first, so concurrent
        # batches take turns on them instead of aborting each other (Redshift Database Developer
        # Guide, r_LOCK: a lock held to the transaction's end; c_serial_isolation: the snapshot is
        # taken at the first SELECT or DML, after the LOCK); retry_aborts covers whatever else aborts.
        statements = [self.config.queries["lock_bookkeeping"]]
        statements += [substitute(s, values) for s in load_statements(self.config.load_sql, self.table, kinds)]
        statements += [self.from_prestage(prestaged, kind) for kind in ("load", "cdc") if kind in moved]
        staged = len(statements)  # the batch's own files are staged: the freshness statement reads them
        statements += [substitute(s, values) for s in merge[:split]]
        if restaged:
            statements += [substitute(s, again) for s in load_statements(self.config.load_sql, self.table, ["load"],
                                                                         files=False)]
        if "restage" in moved:
            statements.append(self.from_prestage(prestaged, "restage"))
        statements += [substitute(s, values) for s in merge[split:]]
        if prestaged:
            statements.append("DROP TABLE %s" % prestaged)
        fresh = self.config.record_freshness.get(self.table)
        if fresh and len(statements) < MAX_BATCH:  # else this batch's freshness is not kept: it reads older, never newer
            statements.insert(staged, fresh)
        try:
            retry_aborts(lambda: self.warehouse.batch(statements, "dwctl-load-" + self.table), self.warehouse,
                         self.table, self.log)
        except JobError:
            if prestaged:
                try:
                    self.warehouse.execute("DROP TABLE IF EXISTS %s" % prestaged)
                except JobError as exc:  # the next pre-stage of the table drops it anyway
                    self.log("%s: could not drop %s: %s" % (self.table, prestaged, exc))
            raise

    def run(self, files):
        """Merge all files, or as many as load; returns the files merged, quarantined or held (done with).
        A file with a column the spec lacks is held (quarantined with the reason) until the table's
        warehouse columns change; each other file loads by its own layout (read from its footer).
        While a full-load file of the table is quarantined or held, the table's other files wait
        (wait): changes merged before a full load would be taken as older than it."""
        if self.blocker:
            for landed in files:
                self.wait(landed)
            return list(files)
        ready = []
        for landed in files:
            try:
                columns = self.file_columns(landed)
                landed_layout, file_names = self.config.landed[self.table], self.config.file_names[self.table]
                verdict, detail = file_layout(columns, landed_layout, self.kept, file_names)
                if verdict == "held" and self.kept is None:
                    verdict, detail = file_layout(columns, landed_layout, self.kept_columns(), file_names)
            except JobError as exc:
                self.quarantine(landed, str(exc))
                continue
            if verdict == "held":
                self.quarantine(landed, held_reason(detail))
                continue
            self.layouts[landed.identity()] = detail
            ready.append(landed)
        if self.blocker:  # a full-load file was just held or could not be read
            for landed in ready:
                self.wait(landed)
            return list(files)
        done = [o for o in files if o not in ready]
        first = [o for o in ready if o.key in self.first]
        if first and len(first) < len(ready):
            done += self.load(first)
            ready = [o for o in ready if o not in first]
            if self.blocker:
                for landed in ready:
                    self.wait(landed)
                return done + ready
        return done + (self.load(ready) if ready else [])

    def load(self, files):
        """Merge the files in one batch, or file by file when the batch fails."""
        try:
            self.merge(files)
            return list(files)
        except JobError as exc:
            if len(files) == 1:
                self.quarantine(files[0], too_long_hold(exc) or str(exc))
                return list(files)
            self.log("%s: a batch of %d files failed, retrying file by file: %s" % (self.table, len(files), exc))
        done = []
        # Full-load files first (DMS lands them before the changes cached meanwhile: a CDC file merged
        # first would make the table's first LOAD file look like a reload's), then CDC files in time order.
        for landed in sorted(files, key=lambda o: not is_full_load(o.key, self.config.full_load_prefix)):
            if self.blocker:
                self.wait(landed)
                done.append(landed)
            else:
                done += self.load([landed])
        return done

    def quarantine(self, landed, reason):
        self.log("%s: quarantined %s: %s" % (self.table, landed.key, reason))
        retry_aborts(lambda: self.warehouse.execute(
            self.config.queries["quarantine"], table_name=self.table, s3_key=landed.key, etag=landed.etag,
            size=landed.size, reason=cut_to_bytes(reason, REASON_LIMIT)), self.warehouse, self.table, self.log)
        self.quarantined.append((landed, reason))
        if is_full_load(landed.key, self.config.full_load_prefix) and not reason.startswith(WAITING):
            self.blocker = self.blocker or landed.key

    def wait(self, landed):
        """Keep a file of a table whose full-load file is quarantined or held: in the quarantine, with
        the reason, so that nothing is lost whatever discovery does; offered again by the first run
        after that file is loaded or skipped (run: release)."""
        self.quarantine(landed, "%s the table's full-load file %s is quarantined or held: changes merged before "
                                "it would be taken as older than it. This file loads with it, or on the first run "
                                "after it is skipped (dwctl sql quarantine --skip)" % (WAITING, self.blocker))


def held_reason(detail):
    """Why a file is held, and the fix: the spec must follow the source before the file can load."""
    return ("held: %s. Update the spec (dwctl import, or by hand), render and deploy: held files load on the first "
            "run after the table's warehouse columns change" % detail)


# COPY from Parquet fails on text longer than its column with "The length of the data column <column> is longer
# than the length defined in the table. Table: <bytes>, Data: <bytes>" (a Spectrum Scan Error, code 15001 or
# 15007: COPY from Parquet reads through Redshift Spectrum, copy-usage_notes-copy-from-columnar; the wording as
# Redshift returns it, quoted in aws/aws-sdk-pandas#280 and in aws-solutions-library-samples/guidance-for-
# clickstream-analytics-on-aws#344; Redshift counts VARCHAR lengths in bytes, t_preparing-input-data). A Parquet
# string carries no declared length (DMS lands VARCHAR as STRING, CHAP_Target.S3, "Target data types for S3
# Parquet") and footer statistics may hold truncated values, so a column the source widened shows only here:
# the file is held until the spec, and so the staging column, is as wide (a widening like any other).
TOO_LONG = re.compile(r"length of the data column (\S+) is longer than the length defined in the table\.?\s*"
                      r"Table: (\d+), Data: (\d+)", re.IGNORECASE)
VARCHAR_MAX = 65535  # Redshift's longest VARCHAR (r_Character_types): no spec change widens a column past it


def too_long_hold(error):
    """The held reason for a COPY that failed on text longer than its staging column, or None."""
    found = TOO_LONG.search(str(error))
    if found is None or int(found.group(2)) >= VARCHAR_MAX:
        return None
    column, limit, size = found.group(1).strip("'\""), found.group(2), found.group(3)
    return held_reason("its column %s holds a value of %s bytes, longer than the %s bytes of the spec's type (the "
                       "source widened the column)" % (column, size, limit))


def is_serialization_abort(error):
    text = str(error).lower()
    return any(mark in text for mark in SERIALIZATION_ABORTS)


def retry_aborts(call, warehouse, table, log=print):
    """Run `call` (one transaction); when Redshift aborts it for a concurrent transaction, run it again
    after a pause (Redshift Database Developer Guide, c_serial_isolation-serializable-isolation-
    troubleshooting: "Retry the canceled transaction"). Such an abort is never a file's fault, so it
    never quarantines: after the last try it raises, the run fails naming the table, and the files
    stay for the next run."""
    sleep = getattr(warehouse, "sleep", time.sleep)
    for attempt in range(ABORT_RETRIES + 1):
        try:
            return call()
        except JobError as exc:
            if not is_serialization_abort(exc):
                raise
            if attempt == ABORT_RETRIES:
                raise JobError("%s: aborted %d times by concurrent transactions (serializable isolation); "
                               "nothing was quarantined, the files load on the next run. If it persists, run "
                               "the job with --concurrency 1: %s" % (table, ABORT_RETRIES + 1, exc)) from None
            log("%s: aborted by a concurrent transaction, trying again (%d)" % (table, attempt + 1))
            sleep(min(2.0 ** attempt, 30.0))


def cut_to_bytes(text, limit):
    """The longest start of text that is at most limit bytes of UTF-8, never half a character."""
    return text.encode("utf-8", "replace")[:limit].decode("utf-8", "ignore")


def quarantined_files(warehouse, config, tables):
    """Quarantined files of the tables asked for, to offer again (`--retry_quarantined true`): of a
    key quarantined in several versions, the last one (the object in the bucket now)."""
    found = {}
    for table, key, etag, size in warehouse.query(config.queries["quarantined"]):  # in the order quarantined
        if table in tables:
            found.setdefault(table, {})[key] = Landed(key, size, etag)
    found = {table: list(files.values()) for table, files in found.items()}
    for table in found:
        warehouse.execute(config.queries["release_quarantine"], table_name=table)
    return found


# --- the run -------------------------------------------------------------------------------
FRESHNESS_METRIC = "NewestChangeAge"  # templates/iac/monitoring.tf.j2 alarms on it
PUT_METRIC_LIMIT = 20  # "no more than 20 metrics per call" (PutMetricData, botocore 1.24.21 on Glue)


def commit_seconds(text):
    """Seconds since the epoch of a DMS timestamp column value, "yyyy-MM-dd HH:mm:ss.SSSSSS" (AWS DMS
    User Guide, CHAP_Target.S3, TimestampColumnName), read as UTC."""
    import calendar

    whole, _, fraction = str(text).partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%d %H:%M:%S")) + float("0." + (fraction or "0"))


def publish_freshness(metrics, warehouse, config, args, log=print, now=time.time):
    """Every run, for every spec table with a merged change (a partitioned table: its partitions' newest),
    the age in seconds of its newest merged change (NewestChangeAge, dimension Table), and without a
    dimension the largest age among the tables without an alarm of their own. A stalled table is thus
    published with a growing age; a job that stops running publishes nothing, and its alarms treat
    missing data as breaching (monitoring.tf). Returns the problems met (publishing is part of the run:
    an alarm fed nothing would page for the wrong reason). PutMetricData parameters are those of
    botocore 1.24.21 (Glue Python shell 3.9)."""
    if metrics is None or not args.get("metric_namespace"):
        return []
    try:
        newest = {}
        for unit, at in warehouse.query(config.queries["freshness"]):
            table = config.target.get(unit)
            if table is not None and at:
                newest[table] = max(newest.get(table, at), at)
        ages = {table: round(max(0.0, now() - commit_seconds(at)), 3) for table, at in sorted(newest.items())}
        data = [{"MetricName": FRESHNESS_METRIC, "Dimensions": [{"Name": "Table", "Value": table}], "Value": age,
                 "Unit": "Seconds"} for table, age in ages.items()]
        shared = [age for table, age in ages.items() if table not in config.freshness_own_alarm]
        if shared:
            data.append({"MetricName": FRESHNESS_METRIC, "Value": max(shared), "Unit": "Seconds"})
        for start in range(0, len(data), PUT_METRIC_LIMIT):
            metrics.put_metric_data(Namespace=args["metric_namespace"], MetricData=data[start:start + PUT_METRIC_LIMIT])
        warehouse.execute(config.queries["prune_freshness"])
    except Exception as exc:  # noqa: BLE001 (botocore's errors, JobError, a bad timestamp: all reported the same)
        return ["freshness metric not published: %s" % exc]
    log("freshness: %s" % ", ".join("%s %ds" % (t, a) for t, a in ages.items()) if ages else "freshness: no table merged yet")
    return []


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


def apply_ddl(warehouse, config, log=print):
    """Create and migrate what the spec needs, only when the spec's DDL changed since it was last
    applied: a run whose DDL is current costs one query (the DDL records its hash in the warehouse).
    Returns None when it was current, else migrate's ({tables migrated}, [problems]); the hash is
    recorded only when every table migrated without a problem, so a later run tries again."""
    try:
        applied = warehouse.query(config.queries["ddl_applied"])
    except JobError:  # no bookkeeping table yet: a new warehouse
        applied = []
    if applied and applied[0][0] == config.ddl_hash:
        return None
    create = split_statements(config.create_sql)
    for start in range(0, len(create), MAX_BATCH):
        warehouse.batch(create[start:start + MAX_BATCH], "dwctl-create-tables")
    changed, problems = migrate(warehouse, config, log)
    if not problems:
        warehouse.batch([substitute(s, {"ddl_hash": config.ddl_hash}) for s in config.queries["record_ddl"]],
                        "dwctl-record-ddl")
    return changed, problems


class Stops:
    """What keeps tables from being complete, from the warehouse (the `stops` query): files in the
    quarantine (quarantined, held, or waiting behind a full-load file), and merged files deleted from
    the bucket with no full load merged since (a source TRUNCATE). A quarantined file deleted too, with
    a full load merged since, is superseded: the full load replaced whatever it held."""

    def __init__(self, rows, config):
        self.quarantined, self.superseded, self.deleted = {}, set(), {}
        for kind, table, key, detail, superseded in rows:
            if kind == "deleted":
                self.deleted[table] = (int(detail), key)
            elif int(superseded or 0):
                self.superseded.add(table)
            else:
                self.quarantined.setdefault(table, []).append((key, detail or ""))
        self.config = config

    @classmethod
    def read(cls, warehouse, config):
        return cls(warehouse.query(config.queries["stops"]), config)

    def blockers(self, table):
        """The table's full-load files quarantined or held (not waiting themselves, and with no newer
        version of theirs waiting: that one is offered again with the files it kept waiting)."""
        rows = self.quarantined.get(table, [])
        newer = {key for key, reason in rows if reason.startswith(WAITING)}
        return [key for key, reason in rows if is_full_load(key, self.config.full_load_prefix)
                and not reason.startswith(WAITING) and key not in newer]

    def waiting(self, table):
        return any(reason.startswith(WAITING) for _, reason in self.quarantined.get(table, []))


def record_deleted(warehouse, config, deleted, log=print):
    """Record files DMS deleted after they were merged or quarantined (discovery.deleted), each with its
    table's latest generation now: the table stays stopped until a full load after it is merged, and a
    listing does not report the file again (ListingDiscovery)."""
    for table, keys in sorted(deleted.items()):
        known = {r[0] for r in warehouse.query(config.queries["deleted_files"], table_name=table)}
        new = sorted(set(keys) - known)
        if not new:
            continue
        generation = int(warehouse.query(config.queries["generation_now"], table_name=table)[0][0] or 0)
        log("%s: %d merged file(s) deleted from the bucket (first: %s)" % (table, len(new), new[0]))
        statements, rows = [], []
        for key in new:
            rows.append("(%s, %s, %d, GETDATE())" % (quote_literal(table), quote_literal(key), generation))
            if sum(len(r) + 2 for r in rows) > 60000:  # a statement stays far below the Data API's 100 KB
                statements.append(config.queries["record_deleted"] + ", ".join(rows))
                rows = []
        if rows:
            statements.append(config.queries["record_deleted"] + ", ".join(rows))
        for start in range(0, len(statements), MAX_BATCH):
            warehouse.batch(statements[start:start + MAX_BATCH], "dwctl-deleted-" + table)


def stop_problems(stops, tables, quarantined_now):
    """The run's problems for tables that are not complete (Stops), besides the files it quarantined
    itself (quarantined_now: {table: keys}), which it reports one by one."""
    problems = []
    for table in sorted(tables):
        earlier = [(k, r) for k, r in stops.quarantined.get(table, []) if k not in quarantined_now.get(table, set())]
        waiting = [k for k, r in earlier if r.startswith(WAITING)]
        other = [(k, r) for k, r in earlier if not r.startswith(WAITING)]
        if other:
            key, reason = other[0]
            problems.append("%s: %d file(s) quarantined or held in an earlier run are still not loaded (first: %s: %s). "
                            "The table is not complete until they are: `dwctl sql quarantine` lists them; fix the "
                            "cause and run with --retry_quarantined true (a held file loads by itself once the spec "
                            "has its columns and is deployed), or skip a file that must never load "
                            "(dwctl sql quarantine --skip)" % (table, len(other), key, reason[:200]))
        if waiting:
            problems.append("%s: %d file(s) wait behind a quarantined or held full-load file of the table (first: %s); "
                            "they load with it, or once it is skipped" % (table, len(waiting), waiting[0]))
        if table in stops.deleted:
            count, key = stops.deleted[table]
            problems.append("%s: %d merged file(s) were deleted from the bucket (first: %s). DMS deletes a table's "
                            "files when the source table is truncated (HandleSourceTableTruncated): the warehouse "
                            "still holds the rows; reload the table in DMS, which replaces them. The first run that "
                            "merges the reload clears this" % (table, count, key))
    return problems


def run(args, storage, warehouse, config, discovery, log=print, metrics=None, statistics=None):
    """One scheduled run; returns {table: files merged}. Tables load concurrently (at most --concurrency
    statements at the warehouse at once, default 16, and TABLES_PER_SLOT tables per statement slot making
    their S3 calls; each table's batch is its own transaction). Raises JobError after the last table
    when any table is not complete: a file quarantined or held (in this run or an earlier one), a
    migration not made, or a merged file deleted from the bucket with no reload merged since; so
    the run fails and its alarm fires, with every other table loaded (a table whose migration
    failed is not loaded this run), and every later run fails until the fix is applied.
    statistics: a function returning {table: the start of DMS's latest full load of it}
    (table_load_starts), called after discovery; None where DMS is not there (the verifier without
    --table-statistics): reloads are then found by their files' names only."""
    asked = [t for t in args.get("tables", "").split(",") if t]
    unknown = sorted(set(asked) - set(config.tables) - set(config.target.values()))
    if unknown:
        raise JobError("unknown tables: " + ", ".join(unknown))
    chosen = config.units(set(asked)) if asked else list(config.tables)
    run_id = re.sub(r"[^A-Za-z0-9_-]", "_", args.get("JOB_RUN_ID") or time.strftime("%Y%m%dT%H%M%S"))
    changed, problems = apply_ddl(warehouse, config, log) or (set(), [])
    changed = config.siblings(changed)  # a partition's held files wait on its table's migration too
    stopped = config.siblings({p.split(":", 1)[0] for p in problems if "migration failed" in p})
    chosen = [t for t in chosen if t not in stopped]
    offered = discovery.new_objects(set(chosen))
    # DMS's table statistics after discovery: every file found was written by a full load that had
    # begun by then, so the start DMS reports is that load's or a later one's (03_merge, step 1).
    starts = statistics() if statistics is not None else {}
    if discovery.deleted:
        record_deleted(warehouse, config, discovery.deleted, log)
    stops = Stops.read(warehouse, config)
    for table in sorted(stops.superseded):  # quarantined, then deleted, and a full load merged since
        warehouse.execute(config.queries["release_superseded"], table_name=table)
    # A table waits behind its quarantined or held full-load files, unless DMS wrote them again (a
    # new version is offered: it loads, and supersedes the one quarantined).
    blocked = {t: [k for k in stops.blockers(t) if k not in {o.key for o in offered.get(t, [])}] for t in chosen}
    # Files held (or quarantined) for a table load again once its warehouse columns changed; files
    # waiting behind a full-load file once that file is loaded, skipped, or written again.
    again = set(chosen) if args.get("retry_quarantined") == "true" else set(chosen) & changed
    again |= {t for t in chosen if stops.waiting(t) and not blocked[t]}
    for table, files in (quarantined_files(warehouse, config, again) if again else {}).items():
        fresh = {o.key for o in offered.get(table, [])}  # a key offered anew: its quarantined version is gone
        offered[table] = parquet_only(offered.get(table, []) + [o for o in files if o.key not in fresh])

    def load(tables):
        """The tables of one analytics table, one after another: two transactions writing one
        Redshift table at once, one would fail ("Serializable isolation violation", Redshift
        Database Developer Guide, c_serial_isolation)."""
        done = []
        for table in tables:
            loader = TableLoad(storage, through, config, args, table, run_id, log, starts.get(table, ""),
                               None if table in again else (blocked[table] or [None])[0], stops.blockers(table))
            discovery.done(loader.run(offered[table]))
            done.append((table, loader))
        return done

    merged = {table: 0 for table in chosen}
    busy = {}
    for table in chosen:
        if offered.get(table):
            busy.setdefault(config.target[table], []).append(table)
    # At most `concurrency` statements at the warehouse at once (InFlight); TABLES_PER_SLOT times as many
    # tables at once, the others making their S3 calls meanwhile.
    concurrency = max(1, int(args.get("concurrency", DEFAULT_CONCURRENCY)))
    workers = concurrency * TABLES_PER_SLOT if concurrency > 1 else 1
    through = InFlight(warehouse, concurrency) if workers > 1 else warehouse
    try:
        results = [pair for done in in_parallel(load, busy.values(), workers) for pair in done]
    finally:
        if hasattr(discovery, "flush"):  # the messages of files merged so far, whatever happens to the rest
            discovery.flush()
    quarantined_now = {}
    for table, loader in results:
        merged[table] = len(offered[table]) - len(loader.quarantined)
        problems += ["%s: %s quarantined: %s" % (table, o.key, reason[:REASON_SHOWN])
                     for o, reason in loader.quarantined if not reason.startswith(WAITING)]
        waiting = [o.key for o, reason in loader.quarantined if reason.startswith(WAITING)]
        if waiting:
            problems.append("%s: %d file(s) wait behind the table's quarantined or held full-load file %s (first: %s); "
                            "they load with it, or once it is skipped" % (table, len(waiting), loader.blocker, waiting[0]))
        quarantined_now[table] = {o.key for o, _ in loader.quarantined}
        log("%s: %d new file(s) merged" % (table, merged[table]))
    # what keeps tables incomplete now (as at the start when this run changed nothing)
    changed_stops = results or stops.superseded or any(offered.get(t) for t in again)
    problems += stop_problems(Stops.read(warehouse, config) if changed_stops else stops, chosen, quarantined_now)
    problems += publish_freshness(metrics, warehouse, config, args, log)
    if problems:
        raise JobError("%d problem(s); the other files and tables were loaded:\n  %s"
                       % (len(problems), "\n  ".join(problems)))
    return merged


# --- smoke mode: `dwctl smoke` -------------------------------------------------------------
# `--mode smoke --smoke_id ID` proves a deployed stack end to end without touching data: it makes
# each AWS call the job makes, as the job's role, and runs every table's DDL, COPY and merge as the
# job builds them (this module's own functions on the job config, only the schema names replaced)
# in two scratch schemas it creates and drops. It writes only under one scratch prefix,
# <manifest_prefix>/_dwctl-smoke/<ID>/ (the one place the role may delete: loader_job.tf), and it
# receives from the queue with a visibility timeout of 0, so every message stays visible, deleting
# none. It prints one row per check, with the fix for a failing one, leaves the rows in
# <scratch>/report.json for `dwctl smoke`, and fails the run when a check fails.
SMOKE_DIR = "_dwctl-smoke"  # dwctl/spec/landed_layout.py SMOKE_DIR: never a table's manifest folder
SMOKE_CANARY_FORMAT = 2  # the canary document dwctl/render/canary.py writes

SMOKE_FIXES = {
    "data api": "The job could not run SQL as its own database user: check that the workgroup is available, the "
                "job role's redshift-serverless:GetCredentials and redshift-data permissions (loader_job.tf), and "
                "that `dwctl apply` created the user (aws_redshiftdata_statement.loader_user).",
    "list": "The job role cannot list the landing prefix: check its ListLandedFiles statement (loader_job.tf) and "
            "the landing bucket's policy.",
    "canary": "Run `dwctl render` and `dwctl apply`, which upload the smoke canary beside the job's config; the job "
              "role must read it (ReadTheScriptAndConfig) and write under its manifest prefix (WriteCopyManifests).",
    "footer": "The job role cannot read landed files' footers: check ReadLandedFileFooters and kms:Decrypt through "
              "S3 on the stack's key (loader_job.tf, kms.tf).",
    "manifest": "The job cannot write or delete its COPY manifests: check the landing bucket policy's encryption "
                "conditions against the job's PutObject (s3.tf), WriteCopyManifests and DeleteSmokeScratch.",
    "queue": "The job cannot receive from the landed-file queue: check DrainLandedFileEvents (loader_job.tf).",
    "scratch schemas": "The job's database user cannot create schemas: check `GRANT CREATE ON DATABASE` to it "
                       "(aws_redshiftdata_statement.loader_grant).",
    "copy": "Redshift could not COPY the canary: check the COPY role (output redshift_role_arn) is attached to the "
            "namespace, may read the landing prefix and decrypt with the stack's key, and that the job's user "
            "was granted ASSUMEROLE on it for COPY.",
    "warehouse": "Redshift refused a statement the load job runs (above, with Redshift's message): this table will "
                 "not load until that is fixed; report it with the dwctl version.",
    "cleanup": "Remove what the smoke run left by hand (named above): it is scratch, never the pipeline's data.",
}


def smoke_prefix(manifest_prefix, smoke_id):
    """Where a smoke run writes (and deletes) everything it writes."""
    return "%s/%s/%s" % (manifest_prefix.strip("/"), SMOKE_DIR, smoke_id)


def smoke_schemas(staging_schema, analytics_schema, smoke_id):
    """{real schema: scratch schema} of one smoke run (lower case: Redshift folds names)."""
    tag = re.sub(r"[^a-z0-9_]", "_", smoke_id.lower())[:40]
    return {staging_schema: "dwctl_smoke_%s_staging" % tag, analytics_schema: "dwctl_smoke_%s_analytics" % tag}


def _created(create_sql, schema):
    """Names (quoted) of the tables sql/01 creates in `schema`."""
    return set(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?%s\.(\"(?:[^\"]|\"\")*\")" % re.escape(quote_ident(schema)),
                          create_sql))


QUALIFIED = re.compile(r'("(?:[^"]|"")*")\.("(?:[^"]|"")*")')  # "schema"."table" (or "alias"."column")


def _own_tables(renames, create_sql):
    """{quoted real schema: (its name, the quoted tables sql/01 creates in it)}: a reference to one
    of these is the pipeline's table; a column qualified by an alias spelled like the schema is not."""
    return {quote_ident(old): (old, _created(create_sql, old)) for old in renames}


def scratch_document(document, renames, folder):
    """The job config document with the warehouse schemas renamed ({real: scratch}) in every statement
    and each table's landing prefix moved to <folder>/<table>/: the statements the job runs, in scratch."""
    doc = json.loads(json.dumps(expanded_config(document)))
    own = _own_tables(renames, "\n".join(document["create_sql"]))

    def sql(text):
        def qualified(match):
            old, tables = own.get(match.group(1), (None, ()))
            return quote_ident(renames[old]) + "." + match.group(2) if match.group(2) in tables else match.group(0)
        text = QUALIFIED.sub(qualified, text)
        for old, new in renames.items():
            text = re.sub(r"(CREATE SCHEMA (?:IF NOT EXISTS )?)%s" % re.escape(quote_ident(old)),
                          lambda m, new=new: m.group(1) + quote_ident(new), text)
        return text

    def query(text):
        for old, new in renames.items():
            text = text.replace(quote_literal(old), quote_literal(new))  # SVV_COLUMNS' schema filter
        return sql(text)

    doc["create_sql"] = [sql(line) for line in doc["create_sql"]]
    doc["load_sql"] = [sql(line) for line in doc["load_sql"]]
    doc["queries"] = {k: [query(s) for s in v] if isinstance(v, list) else query(v) for k, v in doc["queries"].items()}
    doc["staging_schema"] = renames.get(doc["staging_schema"], doc["staging_schema"])
    doc["analytics_schema"] = renames.get(doc["analytics_schema"], doc["analytics_schema"])
    for name, table in doc["tables"].items():
        table["prefix"] = "%s/%s/" % (folder, name)
        table["merge_sql"] = [sql(line) for line in table["merge_sql"]]
        if table.get("record_freshness"):
            table["record_freshness"] = sql(table["record_freshness"])
        for part in table["warehouse_tables"]:
            part["schema"] = renames.get(part["schema"], part["schema"])
    return doc


class S3Objects:
    """Raw objects in the landing bucket: what only the smoke run needs (bytes, deletes)."""

    def __init__(self, s3, bucket):
        self.s3, self.bucket = s3, bucket

    def get(self, key):
        """(bytes, its encryption headers), to write the canary encrypted as the uploaded copy is."""
        got = self.s3.get_object(Bucket=self.bucket, Key=key)
        return got["Body"].read(), {k: got[k] for k in ("ServerSideEncryption", "SSEKMSKeyId") if got.get(k)}

    def put(self, key, body, content_type, encryption):
        headers = {k: encryption[k] for k in ("ServerSideEncryption", "SSEKMSKeyId") if encryption.get(k)}
        return self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type,
                                  **headers)["ETag"].strip('"')

    def delete(self, key):
        self.s3.delete_object(Bucket=self.bucket, Key=key)


class ScratchStorage:
    """The job's storage for a smoke run: reads anywhere it may, writes only under `prefix`
    (refused elsewhere) through the job's own put, and deletes every key it wrote."""

    def __init__(self, storage, objects, prefix):
        self.storage, self.objects, self.prefix = storage, objects, prefix.rstrip("/") + "/"
        self.written = []
        self.encryption = {}  # the headers the canary was uploaded with, for the copies (canary step)

    def _mine(self, key):
        if not key.startswith(self.prefix):
            raise JobError("smoke: refusing to write %s, outside the scratch prefix %s" % (key, self.prefix))

    def list(self, prefix):
        return self.storage.list(prefix)

    def tail(self, key, size):
        return self.storage.tail(key, size)

    def put(self, key, body, content_type):
        self._mine(key)
        url = self.storage.put(key, body, content_type)
        self.written.append(key)
        return url

    def put_bytes(self, key, body, content_type, encryption):
        """Landed() of the object written."""
        self._mine(key)
        landed = Landed(key, len(body), self.objects.put(key, body, content_type, encryption))
        self.written.append(key)
        return landed

    def delete(self, key):
        self.objects.delete(key)
        self.written.remove(key)

    def clean(self):
        """Delete every key written; the keys that could not be deleted, with why."""
        left = []
        for key in sorted(set(self.written)):
            try:
                self.objects.delete(key)
            except Exception as exc:  # report it, delete the others
                left.append("%s (%s)" % (key, _one_line(exc)))
        self.written = []
        return left


class ScratchWarehouse:
    """The warehouse for a smoke run: a statement naming a table of the real staging or analytics
    schema is refused, so nothing the smoke run sends can touch the pipeline's tables."""

    def __init__(self, warehouse, create_sql, renames):
        self.warehouse, self.own = warehouse, _own_tables(renames, create_sql)

    def _check(self, sql):
        for match in QUALIFIED.finditer(sql):
            if match.group(2) in self.own.get(match.group(1), (None, ()))[1]:
                raise JobError("smoke: refusing a statement on the pipeline's own table %s: %s"
                               % (match.group(0), sql[:300]))

    def query(self, sql, **params):
        self._check(sql)
        return self.warehouse.query(sql, **params)

    def execute(self, sql, **params):
        self._check(sql)
        self.warehouse.execute(sql, **params)

    def batch(self, statements, name):
        for s in statements:
            self._check(s)
        self.warehouse.batch(statements, name)


def _one_line(exc):
    return " ".join(str(exc).split())[:1500] or type(exc).__name__


class SmokeReport:
    """One row per check: pass or fail, what was seen, and for a failure the fix."""

    def __init__(self, log):
        self.rows, self.log = [], log

    def add(self, check, status, detail, fix=None):
        self.rows.append({"check": check, "status": status, "detail": detail,
                          "fix": (fix or SMOKE_FIXES.get(check.split(":")[0])) if status == "fail" else None})
        self.log("smoke %s %s: %s" % (status.upper(), check, detail))

    def run(self, check, action):
        """A pass row with what action() returns, or a fail row with its error; True when it passed."""
        try:
            detail = action()
        except Exception as exc:  # any failure is a finding: reported, and the checks that need it are skipped
            self.add(check, "fail", _one_line(exc))
            return False
        self.add(check, "pass", detail)
        return True

    def failed(self):
        return [r for r in self.rows if r["status"] == "fail"]


def smoke_copy(warehouse, scratch, args, schema, canary):
    """COPY the all-types canary into a scratch table through a manifest, as the job COPYs, and read it back."""
    columns = canary["all_types"]["columns"]
    table = "%s.%s" % (quote_ident(schema), quote_ident("_dwctl_smoke_canary"))
    landed = scratch.put_bytes(scratch.prefix + "canary/all_types.parquet",
                               _b64(canary["all_types"]["parquet"]), "application/octet-stream", scratch.encryption)
    manifest = scratch.put(scratch.prefix + "all_types.manifest", manifest_document(args["landing_bucket"], [landed]),
                           "application/json")
    warehouse.batch(["CREATE TABLE %s (%s)" % (table, ", ".join("%s %s" % (quote_ident(n), t) for n, t in columns)),
                     substitute("COPY %s\nFROM '${manifest}'\nIAM_ROLE '${iam_role}'\nFORMAT AS PARQUET\nMANIFEST" % table,
                                {"manifest": manifest, "iam_role": args["copy_role_arn"]})], "dwctl-smoke-copy")
    count, stamp, stamp_tz = warehouse.query('SELECT COUNT(*), MAX(CAST("c_timestamp" AS VARCHAR(40))), '
                                             'MAX(CAST("c_timestamptz" AS VARCHAR(40))) FROM %s' % table)[0]
    if int(count) != 2:
        raise JobError("the canary has 2 rows; COPY loaded %s" % count)
    return ("COPY loaded every landed type (%d columns, a row of values and one of NULLs); read back: "
            "TIMESTAMP %s, TIMESTAMPTZ %s" % (len(columns), stamp, stamp_tz))


def _b64(text):
    import base64

    return base64.b64decode(text)


def smoke_merges(args, scratch, warehouse, config, canary, report, log=print):
    """sql/01 in the scratch schemas (apply_ddl, migrations included), then each table's passes of the
    render's scenario (canary.py: first full load, changes, more of the full load, a reload), each
    a run of TableLoad as the job runs it. A statement Redshift refuses quarantines the pass's file in
    the scratch quarantine with Redshift's message: that is the table's failure."""
    try:
        done = apply_ddl(warehouse, config, log)
    except JobError as exc:
        report.add("warehouse: create tables", "fail", _one_line(exc))
        return
    problems = done[1] if done else []
    for problem in problems:
        report.add("warehouse: migrate", "fail", problem)
    if problems:
        return
    report.add("warehouse: create tables", "pass", "sql/01 ran in the scratch schemas")
    work = dict(args, manifest_prefix=scratch.prefix + "manifests")

    def unit(table):
        for n, step in enumerate(canary["units"][table]):
            files = [scratch.put_bytes(config.tables[table] + name, _b64(data), "application/octet-stream",
                                       scratch.encryption) for name, data in sorted(step["files"].items())]
            loader = TableLoad(scratch, warehouse, config, work, table, "smoke%d" % n, log)
            try:
                loader.run(files)
            except JobError as exc:  # a quarantine itself failed
                return "fail", "%s: %s" % (step["name"], _one_line(exc))
            if loader.quarantined:
                landed, reason = loader.quarantined[0]
                return "fail", "%s (%s): %s" % (step["name"], landed.key.rsplit("/", 1)[1], " ".join(reason.split()))
        return "pass", "merged: " + ", ".join(step["name"] for step in canary["units"][table])

    def group(tables):
        return [(table, unit(table)) for table in tables]

    asked = {t for t in args.get("tables", "").split(",") if t}  # --tables: a large spec a few tables at a time
    groups = {}
    for table in sorted(config.units(asked) if asked else config.tables):
        groups.setdefault(config.target[table], []).append(table)
    results = [pair for done in in_parallel(group, groups.values(), int(args.get("concurrency", 8))) for pair in done]
    for table, (status, detail) in sorted(results):
        report.add("warehouse: " + table, status, detail)


def smoke_facts(warehouse, report):
    """What only a live workgroup tells: GETDATE's precision, the database's isolation level."""
    report.run("fact: getdate", lambda: "GETDATE() = %s" % warehouse.query("SELECT CAST(GETDATE() AS VARCHAR(40))")[0][0])
    found = None
    # SVV_REDSHIFT_DATABASES (any user, its own databases) or STV_DB_ISOLATION_LEVEL (superusers only):
    # Redshift Database Developer Guide, r_SVV_REDSHIFT_DATABASES, r_STV_DB_ISOLATION_LEVEL.
    for sql in ("SELECT database_isolation_level FROM svv_redshift_databases WHERE database_name = CURRENT_DATABASE()",
                "SELECT isolation_level FROM stv_db_isolation_level WHERE db_name = CURRENT_DATABASE()"):
        try:
            rows = warehouse.query(sql)
        except JobError:
            continue
        if rows and rows[0][0]:
            found = rows[0][0]
            break
    report.add("fact: isolation", "pass", "isolation level %s" % found if found else
               "isolation level not visible to the job's user (an admin: SELECT * FROM stv_db_isolation_level)")


def smoke(args, storage, warehouse, config, discovery, objects=None, log=print):
    """The smoke run (see above); returns the report rows, raises JobError when a check failed."""
    smoke_id = args.get("smoke_id", "")
    if not re.match(r"^[A-Za-z0-9_-]{1,64}$", smoke_id):
        raise JobError("--mode smoke needs --smoke_id (letters, digits, _ and -)")
    objects = objects or S3Objects(storage.s3, args["landing_bucket"])
    scratch = ScratchStorage(storage, objects, smoke_prefix(args["manifest_prefix"], smoke_id))
    report = SmokeReport(log)
    renames = smoke_schemas(config.staging_schema, config.analytics_schema, smoke_id)
    guarded = ScratchWarehouse(warehouse, config.create_sql, renames)
    state = {"landed": [], "schemas": []}
    first = sorted(config.tables)[0]

    def listed():
        state["landed"] = parquet_only(storage.list(config.tables[first]))
        return "listed %s: %d landed file(s)" % (config.tables[first], len(state["landed"]))

    def canary():
        body, scratch.encryption = objects.get(args["smoke_canary_key"])
        state["canary"] = json.loads(body.decode("utf-8"))
        if state["canary"].get("format") != SMOKE_CANARY_FORMAT:
            raise JobError("the canary has format %r, this job reads %d" % (state["canary"].get("format"),
                                                                           SMOKE_CANARY_FORMAT))
        state["canary"] = expanded_canary(state["canary"])
        state["config"] = Config(scratch_document(json.loads(objects.get(args["config_key"])[0].decode("utf-8")),
                                                  renames, scratch.prefix + "canary"))
        some = state["canary"]["units"][first][0]
        name, data = sorted(some["files"].items())[0]
        state["footer"] = scratch.put_bytes(scratch.prefix + "footer/" + name, _b64(data),
                                            "application/octet-stream", scratch.encryption)
        return "read %s; wrote a canary file under %s" % (args["smoke_canary_key"], scratch.prefix)

    def footer():
        landed = (state["landed"] or [state.get("footer")])[-1]
        if landed is None:
            raise JobError("no landed file and no canary to read")
        columns = read_columns(storage, landed)
        return "read the footer of %s: %d columns" % (landed.key, len(columns))

    def manifest():
        key = scratch.prefix + "check.manifest"
        scratch.put(key, manifest_document(args["landing_bucket"], []), "application/json")
        scratch.delete(key)
        return "wrote and deleted %s" % key

    def queue():
        if not hasattr(discovery, "sqs"):
            return "discovery is listing: the job does not read the queue"
        # VisibilityTimeout 0: the message stays visible to the next run; nothing is deleted (SQS API
        # Reference, ReceiveMessage). The queue has no redrive policy, so a receive moves nothing.
        got = discovery.sqs.receive_message(QueueUrl=discovery.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=0,
                                            VisibilityTimeout=0).get("Messages", [])
        return "received %d message(s) and left them on the queue" % len(got)

    def schemas():
        for schema in renames.values():
            warehouse.execute("CREATE SCHEMA %s" % quote_ident(schema))
            state["schemas"].append(schema)
        return "created %s" % ", ".join(state["schemas"])

    try:
        sql = report.run("data api", lambda: "SELECT 1 ran as %s" % guarded.query("SELECT 1, CURRENT_USER")[0][1])
        report.run("list", listed)
        has_canary = report.run("canary", canary)
        report.run("footer", footer)
        writes = report.run("manifest", manifest)
        report.run("queue", queue)
        if sql and has_canary and writes and report.run("scratch schemas", schemas):
            scratch_schema = renames[config.staging_schema]
            report.run("copy", lambda: smoke_copy(guarded, scratch, args, scratch_schema, state["canary"]))
            smoke_merges(args, scratch, guarded, state["config"], state["canary"], report, log)
            smoke_facts(guarded, report)
    finally:
        left = []
        for schema in reversed(state["schemas"]):
            try:
                warehouse.execute("DROP SCHEMA %s CASCADE" % quote_ident(schema))
            except Exception as exc:  # reported; the files are deleted all the same
                left.append("schema %s (%s)" % (schema, _one_line(exc)))
        files = len(set(scratch.written))
        left += scratch.clean()
        report.add("cleanup", "fail" if left else "pass", "could not remove: " + "; ".join(left) if left else
                   "dropped %s; deleted %d scratch file(s)" % (", ".join(state["schemas"]) or "no schema", files))
    # `dwctl smoke` reads and deletes it; written as the canary copies are (with the uploaded canary's
    # encryption headers), so it arrives even when the job's own manifest writes are refused
    document = json.dumps({"smoke_id": smoke_id, "checks": report.rows}, indent=1, sort_keys=True)
    try:
        scratch.put_bytes(scratch.prefix + "report.json", document.encode("utf-8"), "application/json",
                          scratch.encryption)
    except Exception as exc:  # the rows are in this run's log and error
        report.add("report", "fail", "could not write %sreport.json: %s" % (scratch.prefix, _one_line(exc)),
                   "The rows are in this run's output log; fix the failing write first (the checks above).")
    failed = report.failed()
    if failed:
        raise JobError("smoke: %d check(s) failed:\n  %s" % (len(failed), "\n  ".join(
            "%s: %s -> %s" % (r["check"], r["detail"][:REASON_SHOWN], r["fix"]) for r in failed)))
    return report.rows


# --- DMS's table statistics: when each table's latest full load began ----------------------------
# DescribeTableStatistics (AWS DMS API Reference; in the dms model of botocore 1.23.5 and 1.24.21, the
# Glue runtime's) reports per table of a task FullLoadStartTime ("The time when the full load operation
# started"), FullLoadEndTime and FullLoadReloaded ("if the table was reloaded (true) or loaded as part of
# a new full load operation (false)"): a full load of either kind begins a new generation, whatever
# its files are named. Paginated by Marker; MaxRecords "Minimum 20, maximum 500".
STATISTICS_PAGE = 500


def load_start_text(value):
    """A time as the landed timestamp column spells it ('YYYY-MM-DD HH:MM:SS.ffffff', UTC), from what
    botocore parses FullLoadStartTime into (a datetime) or what the AWS CLI prints (ISO 8601 text, or
    epoch seconds); "" for none."""
    import datetime

    if value is None or value == "":
        return ""
    if isinstance(value, (int, float)):
        value = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    elif isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError:
            raise JobError("FullLoadStartTime %r is not an ISO 8601 time" % value) from None
    elif not isinstance(value, datetime.datetime):
        raise JobError("FullLoadStartTime %r is not a time" % (value,))
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def table_load_starts(pages, config):
    """{table: the start of DMS's latest full load of it} from DescribeTableStatistics responses (of one
    task or several). An entry names its table by SchemaName and TableName; the API reference does not
    say whether these are the source's names or those the task's rename rules give, so either matches
    (config.dms_names), without regard to case."""
    names = {}
    for table, pairs in config.dms_names.items():
        for schema, name in pairs:
            names.setdefault((schema.lower(), name.lower()), table)
    starts = {}
    for page in pages:
        for entry in page.get("TableStatistics") or []:
            table = names.get((str(entry.get("SchemaName", "")).lower(), str(entry.get("TableName", "")).lower()))
            start = load_start_text(entry.get("FullLoadStartTime"))
            if table is not None and start > starts.get(table, ""):
                starts[table] = start
    return starts


def dms_statistics(dms, task_arns, config):
    """table_load_starts of the replication tasks (--dms_task_arns). A failure stops the run before it
    loads anything: without them a reload whose files' names do not show it would be merged as more of
    the previous full load, and rows deleted at the source would stay."""
    from botocore.exceptions import BotoCoreError, ClientError

    pages = []
    for arn in task_arns:
        try:
            pages += list(dms.get_paginator("describe_table_statistics").paginate(
                ReplicationTaskArn=arn, MaxRecords=STATISTICS_PAGE))
        except (BotoCoreError, ClientError) as exc:
            raise JobError("DMS DescribeTableStatistics of %s failed, so nothing was loaded: %s. The job reads when "
                           "each table's full load began to tell a reload from more of the previous load; its role "
                           "needs dms:DescribeTableStatistics on the task (iac/loader_job.tf)" % (arn, exc)) from None
    return table_load_starts(pages, config)


def read_config(s3, args):
    """The config document `dwctl render` wrote and Terraform uploaded beside the script."""
    body = s3.get_object(Bucket=args["landing_bucket"], Key=args["config_key"])["Body"].read()
    return Config.from_json(body.decode("utf-8"))


# Service models the job ships for the runtime's older botocore (dwctl/warehouse/botocore_data/README.md).
SHIPPED_MODELS = ("redshift-data/2019-12-20/service-2.json",)


def data_api_client(s3, args, log=print):
    """A Redshift Data API client that knows `WorkgroupName`.

    Glue's Python shell 3.9 runtime preinstalls botocore 1.24.21 (library set analytics) or 1.23.5
    (none) (AWS Glue Developer Guide, add-job-python.html, "Supported libraries for Python shell
    jobs"); `WorkgroupName` first appears in botocore 1.27.11's redshift-data model, so with the
    preinstalled one every call to a Serverless workgroup fails parameter validation. When the
    installed model lacks it, the job downloads the model dwctl ships (uploaded beside this script,
    --botocore_data_prefix) to a temporary folder and puts that folder first on botocore's model
    search path, through the session's `data_path` setting (botocore Loaders reference: the data path,
    as AWS_DATA_PATH). No pip and no internet: it works the same inside a private network.
    """
    import os
    import tempfile

    import boto3
    import botocore
    import botocore.session

    shape = botocore.session.get_session().get_service_model("redshift-data").operation_model("ExecuteStatement").input_shape
    if "WorkgroupName" in shape.members:
        return boto3.client("redshift-data")
    # the installed model predates Serverless workgroups: load the shipped one
    prefix = args.get("botocore_data_prefix")
    if not prefix:
        raise JobError("botocore %s's redshift-data model has no WorkgroupName and no --botocore_data_prefix "
                       "was given: deploy the job with `dwctl apply` (it uploads the model)" % botocore.__version__)
    folder = tempfile.mkdtemp(prefix="dwctl-botocore-data-")
    for name in SHIPPED_MODELS:
        path = os.path.join(folder, *name.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as out:
            out.write(s3.get_object(Bucket=args["landing_bucket"], Key="%s/%s" % (prefix, name))["Body"].read())
    core = botocore.session.get_session()
    core.set_config_variable("data_path", folder)
    log("botocore %s: using the shipped redshift-data model (%s)" % (botocore.__version__, prefix))
    return boto3.session.Session(botocore_session=core).client("redshift-data")


def main(argv=None):
    import boto3

    args = parse_args(sys.argv[1:] if argv is None else argv)
    # One connection per thread that may call S3 at once (run: TABLES_PER_SLOT x --concurrency): botocore
    # keeps 10 by default ("max_pool_connections ... If this value is not set, the default value of 10 is
    # used", botocore Config reference), and a thread beyond them opens and drops a connection per call.
    from botocore.config import Config as ClientConfig

    threads = max(1, int(args.get("concurrency", DEFAULT_CONCURRENCY))) * TABLES_PER_SLOT
    s3 = boto3.client("s3", config=ClientConfig(max_pool_connections=max(10, threads)))
    config = read_config(s3, args)
    warehouse = Warehouse(data_api_client(s3, args), args["workgroup"], args["database"], args.get("secret_arn"))
    storage = S3Storage(s3, args["landing_bucket"], args.get("kms_key_arn"))
    if args.get("discovery", "queue") == "queue":
        if not args.get("queue_url"):
            raise JobError("--discovery queue needs --queue_url")
        discovery = QueueDiscovery(boto3.client("sqs"), args["queue_url"], config, args.get("visibility_timeout", 3900))
    else:
        discovery = ListingDiscovery(storage, warehouse, config)
    if args.get("mode") == "smoke":  # `dwctl smoke`: prove the stack, touch no data
        return smoke(args, storage, warehouse, config, discovery)
    arns = [arn for arn in args.get("dms_task_arns", "").split(",") if arn]
    statistics = functools.partial(dms_statistics, boto3.client("dms"), arns, config) if arns else None
    run(args, storage, warehouse, config, discovery, statistics=statistics,
        metrics=boto3.client("cloudwatch") if args.get("metric_namespace") else None)


if __name__ == "__main__":
    main()
