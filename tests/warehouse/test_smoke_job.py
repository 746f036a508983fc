"""The load job's smoke mode (`dwctl smoke`, load_job.smoke) and the canary files it loads.

Two boundaries stand in for AWS. On DuckDB (the `dwctl sql verify` warehouse, through its
Redshift->DuckDB transpiler and COPY checks) with a folder as the bucket, the smoke run's
warehouse step really runs: sql/01 in scratch schemas, every table's COPY and merge passes, as
the job builds them. With botocore's Stubber (S3, SQS and the Redshift Data API), every request
of the permission checks is checked against the real API models, in order, and nothing unexpected
(a DeleteMessage, a write outside the scratch prefix) can happen unnoticed: the Stubber refuses
any call it was not told to expect.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import io
import json
from pathlib import Path

import boto3
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from dwctl.render import canary
from dwctl.render.engine import render, table_view
from dwctl.spec.landed_layout import LOAD_SUFFIX
from dwctl.spec.type_mapping import MAPPING, map_type
from dwctl.warehouse import load_job
from dwctl.warehouse.verifier import (
    JOB_CONFIG,
    VERIFY_BUCKET,
    VERIFY_ROLE,
    DuckDBWarehouse,
    LocalLanding,
    Transpiler,
    VerifyStorage,
)
from tests.support import dms_files

CONFIG_KEY = "_dwctl/glue_scripts/load_job_config.json"
CANARY_KEY = "_dwctl/glue_scripts/smoke_canary.json"
MANIFESTS = "raw/_dwctl_manifests"
QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/shop-prod-landed"
SCRATCH = f"{MANIFESTS}/_dwctl-smoke/run1/"


# --- the canary files --------------------------------------------------------------------------
def read(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))


def test_the_all_types_canary_reads_back_in_pyarrow_duckdb_and_the_jobs_footer_reader(tmp_path):
    data = canary.all_types_file()
    table = read(data)
    assert table.schema == pa.schema([pa.field(n, dms_files.arrow_type(t)) for n, t in canary.all_types_columns()])
    values, nulls = table.to_pylist()
    assert values["c_decimal_38_10"] == decimal.Decimal("1.0000000000") and values["c_boolean"] is True
    assert values["c_timestamptz"] == dt.datetime(2024, 1, 1, 0, 0, 1, tzinfo=dt.timezone.utc)
    assert values["c_varbyte"] == b"dwctl" and values["c_date"] == dt.date(2024, 1, 2)
    assert all(v is None for k, v in nulls.items() if k != "Op")  # definition levels: a row of NULLs
    path = tmp_path / "all.parquet"
    path.write_bytes(data)
    assert duckdb.connect().execute(f"SELECT COUNT(*), COUNT(c_double) FROM read_parquet('{path}')").fetchone() == (2, 1)
    assert [c[0] for c in load_job.parquet_columns(data)] == [n for n, _ in canary.all_types_columns()]


def test_each_units_canary_is_in_its_landed_layout_with_the_types_dms_lands(example_spec):
    """Same column names and Parquet types as our model of DMS's files (tests/support/dms_files)."""
    for table in example_spec.tables:
        unit = table_view(example_spec, table)
        steps = canary.unit_steps(unit)
        assert [name for name, _ in steps] == ["first full load", "changes", "more of the full load", "reload"]
        for _, files in steps:
            for data in files.values():
                assert read(data).schema == dms_files.schema(unit)
        first, cdc, second, reload = (read(next(iter(f.values()))).to_pylist()[0] for _, f in steps)
        key = unit.primary_key[0]
        assert first[key] != second[key] and cdc[key] == first[key] == reload[key]
        assert (cdc["Op"], len(cdc["dms_change_seq"])) == ("U", 35) and first["dms_change_seq"] == ""
        assert reload["dms_commit_ts"] > first["dms_commit_ts"]  # a reload is transferred later


def test_the_all_types_canary_has_every_kind_of_parquet_type_a_staging_column_can_have():
    """Each source type of the documented mapping (both engines), as DMS lands it, has a canary column of
    the same Parquet kind (physical type, converted type, logical type, UTC or not)."""
    kind = lambda t: (lambda p: (p.physical, p.converted, p.logical and p.logical[0], str(p.logical)))(  # noqa: E731
        canary.parquet_type(t))
    decimal = lambda t: t.upper().startswith("DECIMAL")  # noqa: E731
    have = {kind(t) if not decimal(t) else "decimal" for _, t in canary.all_types_columns()}
    samples = {"numeric": ["numeric(9,2)", "numeric"], "decimal": ["decimal(18,4)"], "varchar": ["varchar(10)"],
               "char": ["char(1)"], "enum": ["enum('a','b')"], "set": ["set('a')"], "bit": ["bit(1)", "bit(8)"]}
    seen = set()
    for families, names, _, _ in MAPPING:
        for family in families:
            for name in names:
                for text in samples.get(name, [name]) + ([f"{name} unsigned"] if "int" in name and family == "mysql" else []):
                    try:
                        staging = map_type(text, family).staging
                    except ValueError:
                        continue
                    found = kind(staging) if not decimal(staging) else "decimal"
                    assert found in have, f"{family} {text}: staging {staging} has no canary column"
                    seen.add(found)
    assert seen == have  # and each canary column is a type something lands as


def test_the_canary_document_is_deterministic_and_carries_no_library_version(example_spec):
    first, second = (render(example_spec, "config/pipeline.yaml")[canary.PATH] for _ in range(2))
    assert first == second
    doc = json.loads(first)
    assert doc["format"] == load_job.SMOKE_CANARY_FORMAT == canary.FORMAT
    assert set(doc["units"]) == {t.name for t in example_spec.tables}
    assert b"dwctl smoke canary" in canary.all_types_file() and b"arrow" not in canary.all_types_file()


# --- the statements are the job's, only the schema names replaced --------------------------------
@pytest.mark.parametrize("staging, analytics", [("staging", "analytics"), ("f", "a"), ("batch", "ranked")])
def test_the_scratch_config_is_the_render_with_scratch_schema_names(example_spec, staging, analytics):
    """A schema spelled like an alias of the merge SQL ("f", "a", "batch", "ranked") is renamed where
    it names a schema only: the scratch config's statements equal those the render writes for a spec
    whose warehouse schemas are the scratch ones."""
    def with_schemas(spec, s, a):
        return spec.model_copy(update={"warehouse": spec.warehouse.model_copy(
            update={"staging_schema": s, "analytics_schema": a})})

    spec = with_schemas(example_spec, staging, analytics)
    renames = load_job.smoke_schemas(staging, analytics, "run1")
    doc = json.loads(render(spec, "x")[JOB_CONFIG])
    got = load_job.Config(load_job.scratch_document(doc, renames, "scratch/canary"))
    want = load_job.Config.from_json(render(with_schemas(spec, renames[staging], renames[analytics]), "x")[JOB_CONFIG])
    split = load_job.split_statements
    assert split(got.create_sql) == split(want.create_sql) and split(got.load_sql) == split(want.load_sql)
    assert all(split(got.merge_sql[t]) == split(want.merge_sql[t]) for t in want.tables)
    assert got.queries == want.queries and got.parts == want.parts
    assert (got.staging_schema, got.analytics_schema) == (renames[staging], renames[analytics])
    assert got.tables == {t: f"scratch/canary/{t}/" for t in want.tables}


def test_the_scratch_warehouse_refuses_the_pipelines_own_tables(config_doc):
    renames = load_job.smoke_schemas("staging", "analytics", "run1")
    seen = []

    class Recorder:
        def query(self, sql, **params):
            seen.append(sql)
            return []

    guarded = load_job.ScratchWarehouse(Recorder(), "\n".join(config_doc["create_sql"]), renames)
    with pytest.raises(load_job.JobError, match='pipeline\'s own table "analytics"."orders"'):
        guarded.query('SELECT COUNT(*) FROM "analytics"."orders"')
    guarded.query('SELECT "analytics"."order_id" FROM "dwctl_smoke_run1_analytics"."orders" AS "analytics"')
    assert len(seen) == 1  # an alias spelled like the schema qualifies a column, not the pipeline's table
    storage = load_job.ScratchStorage(None, None, SCRATCH)
    with pytest.raises(load_job.JobError, match="outside the scratch prefix"):
        storage.put(MANIFESTS + "/orders/x.manifest", "{}", "application/json")


# --- a whole smoke run on DuckDB -------------------------------------------------------------------
@pytest.fixture(scope="module")
def config_doc(rendered) -> dict:
    return json.loads(rendered[JOB_CONFIG])


class Bucket:
    """A folder as the landing bucket, holding what Terraform uploads (config, canary); the smoke
    run's raw object calls (S3Objects' get, put and delete) act on it."""

    def __init__(self, root: Path, rendered: dict[str, str]):
        self.root = root
        for key, path in ((CONFIG_KEY, JOB_CONFIG), (CANARY_KEY, canary.PATH)):
            self.write(key, rendered[path].encode())
        self.puts: list[str] = []

    def write(self, key: str, body: bytes) -> Path:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        return path

    def get(self, key):
        return (self.root / key).read_bytes(), {"ServerSideEncryption": "aws:kms"}

    def put(self, key, body, content_type, encryption):
        assert encryption == {"ServerSideEncryption": "aws:kms"}  # as the uploaded canary is encrypted
        self.puts.append(key)
        self.write(key, body)
        return hashlib.md5(body).hexdigest()

    def delete(self, key):
        (self.root / key).unlink()

    def keys(self) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())


class Recording(DuckDBWarehouse):
    """The verifier's DuckDB warehouse, recording each statement and batch the job sends."""

    def __init__(self, con, transpile, refuse: str | None = None):
        super().__init__(con, transpile)
        self.sent: list[str] = []
        self.batches: list[tuple[str, list[str]]] = []
        self.refuse = refuse

    def query(self, sql, **params):
        self.sent.append(sql)
        return super().query(sql, **params)

    def batch(self, statements, name):
        self.sent += statements
        self.batches.append((name, list(statements)))
        hit = next((s for s in statements if self.refuse and self.refuse in s), None)
        if hit:  # Redshift's answer to a statement it does not support, as the Data API reports it
            raise load_job.JobError(f"{name}: FAILED: This type of correlated subquery pattern is not supported "
                                    f"yet\n  in: {hit[:200]}")
        super().batch(statements, name)


class Queue:
    """A stubbed SQS client: only a receive with VisibilityTimeout 0 is expected; a delete would fail the test."""

    def __init__(self):
        self.sqs = boto3.client("sqs", region_name="eu-west-1", aws_access_key_id="testing",
                                aws_secret_access_key="testing")
        self.queue_url = QUEUE
        self.stub = Stubber(self.sqs)
        message = {"MessageId": "m1", "ReceiptHandle": "rh-1", "Body": "{}"}
        self.stub.add_response("receive_message", {"Messages": [message]},
                               {"QueueUrl": QUEUE, "MaxNumberOfMessages": 1, "WaitTimeSeconds": 0, "VisibilityTimeout": 0})


def smoke_on_duckdb(tmp_path, rendered, example_spec, refuse=None, tables=""):
    root = tmp_path / "bucket"
    bucket = Bucket(root, rendered)
    landing = LocalLanding(root, "")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    renames = load_job.smoke_schemas("staging", "analytics", "run1")
    declared = {}  # the staging tables' landed layout, for the verifier's COPY checks (as Verifier.declared)
    for table in example_spec.tables:
        for unit in table_view(example_spec, table).units:
            for name in (unit.name, unit.name + LOAD_SUFFIX):
                declared[(renames["staging"], name)] = [(c.name, c.staging_type, c.parquet_name) for c in unit.landed]
    warehouse = Recording(con, Transpiler(con, landing, {}, declared), refuse)
    config = load_job.Config.from_json(rendered[JOB_CONFIG])
    args = {"landing_bucket": VERIFY_BUCKET, "manifest_prefix": MANIFESTS, "copy_role_arn": VERIFY_ROLE,
            "config_key": CONFIG_KEY, "smoke_canary_key": CANARY_KEY, "smoke_id": "run1", "concurrency": "1",
            **({"tables": tables} if tables else {})}
    queue, log = Queue(), []
    with queue.stub:
        try:
            rows, error = load_job.smoke(args, VerifyStorage(landing, root), warehouse, config, queue, bucket,
                                         log=log.append), None
        except load_job.JobError as exc:
            rows, error = None, str(exc)
        queue.stub.assert_no_pending_responses()
    report = json.loads((root / SCRATCH / "report.json").read_text())
    return report["checks"], error, bucket, warehouse, con


def test_a_healthy_stack_passes_every_check_and_leaves_only_the_report(tmp_path, rendered, example_spec):
    checks, error, bucket, warehouse, con = smoke_on_duckdb(tmp_path, rendered, example_spec)
    assert error is None, error
    by = {c["check"]: c for c in checks}
    assert all(c["status"] == "pass" for c in checks), [c for c in checks if c["status"] != "pass"]
    assert {"data api", "list", "canary", "footer", "manifest", "queue", "copy", "warehouse: create tables",
            "fact: getdate", "fact: isolation"} <= set(by)
    for table in example_spec.tables:
        assert by[f"warehouse: {table.name}"]["detail"] == \
            "merged: first full load, changes, more of the full load, reload"
    assert "received 1 message(s) and left them on the queue" in by["queue"]["detail"]
    assert "TIMESTAMPTZ 2024-01-01 00:00:01+00" in by["copy"]["detail"]
    # nothing left but what Terraform uploaded and the report dwctl smoke reads
    assert bucket.keys() == [CONFIG_KEY, CANARY_KEY, SCRATCH + "report.json"]
    assert all(key.startswith(SCRATCH) for key in bucket.puts)
    schemas = {r[0] for r in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
    assert not schemas & {"staging", "analytics", "dwctl_smoke_run1_staging", "dwctl_smoke_run1_analytics"}


def test_every_statement_is_the_jobs_own_in_scratch_schemas(tmp_path, rendered, example_spec, config_doc):
    """Read by sqlglot, independently of the job's own guard: no statement names a table outside the
    scratch schemas (or the catalog views); each table's reload pass merged twice in one batch (reload,
    then restage), with the job's own merge statements, only the schema names replaced."""
    _, error, _, warehouse, _ = smoke_on_duckdb(tmp_path, rendered, example_spec)
    assert error is None
    scratch = {"dwctl_smoke_run1_staging", "dwctl_smoke_run1_analytics"}
    for sql in warehouse.sent:
        for statement in sqlglot.parse(sql, read="redshift"):
            for table in statement.find_all(sqlglot.exp.Table):
                assert table.db in scratch or (not table.db and table.name.lower().startswith(("svv_", "stv_"))), sql
    renames = load_job.smoke_schemas("staging", "analytics", "run1")
    scratch_config = load_job.Config(load_job.scratch_document(config_doc, renames, SCRATCH + "canary"))
    for table in example_spec.tables:
        merge = load_job.without_transaction(load_job.split_statements(scratch_config.merge_sql[table.name]))
        batches = [s for name, s in warehouse.batches if name == f"dwctl-load-{table.name}"]
        assert len(batches) == 4
        values = {f"reload:{table.name}": "true", f"load_start:{table.name}": ""}  # a reload told by its files' names
        copies = [s for s in batches[-1] if s.startswith("COPY ")]
        assert batches[-1][0] == scratch_config.queries["lock_bookkeeping"]  # the shared bookkeeping, locked first
        fresh = scratch_config.record_freshness[table.name]
        assert [s for s in batches[-1][1:] if s not in copies and s != fresh] == \
            [load_job.substitute(s, values) for s in merge], "the job's own merge of a reload, its restage inside"
        assert len(copies) == 3  # the reload's file and its file list, the restaged file (its list: the batch's)


def test_a_statement_redshift_refuses_is_reported_with_its_message_and_the_run_fails(tmp_path, rendered, example_spec):
    checks, error, bucket, _, con = smoke_on_duckdb(tmp_path, rendered, example_spec, refuse="OR EXISTS")
    failed = [c for c in checks if c["status"] == "fail"]
    config = load_job.Config.from_json(rendered["iac/glue_scripts/load_job_config.json"])
    refused = [t.name for t in example_spec.tables if "OR EXISTS" in config.merge_sql[t.name]]
    assert refused and sorted(c["check"] for c in failed) == sorted(f"warehouse: {t}" for t in refused)
    assert "This type of correlated subquery pattern is not supported yet" in failed[0]["detail"]
    assert failed[0]["detail"].startswith("first full load (LOAD00000001.parquet):")
    assert failed[0]["fix"] == load_job.SMOKE_FIXES["warehouse"]
    assert error.startswith(f"smoke: {len(refused)} check(s) failed") and "correlated subquery" in error
    assert bucket.keys() == [CONFIG_KEY, CANARY_KEY, SCRATCH + "report.json"]  # cleaned up all the same
    assert not {r[0] for r in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()} & {
        "dwctl_smoke_run1_staging", "dwctl_smoke_run1_analytics"}


def test_tables_limits_the_merges_not_the_ddl(tmp_path, rendered, example_spec):
    checks, error, _, warehouse, _ = smoke_on_duckdb(tmp_path, rendered, example_spec, tables="orders")
    assert error is None
    assert [c["check"] for c in checks if c["check"].startswith("warehouse: ")] == [
        "warehouse: create tables", "warehouse: orders"]
    assert {name for name, _ in warehouse.batches if name.startswith("dwctl-load-")} == {"dwctl-load-orders"}


# --- the permission checks against S3, SQS and the Data API, stubbed ------------------------------
def streaming(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


@pytest.mark.parametrize("denied", ["data api", "manifest"])
def test_each_aws_call_of_the_permission_checks_and_a_denied_one(rendered, denied):
    """The job's own clients' calls, in order, each validated against its API model by the Stubber.
    A denied Data API, or a bucket policy refusing the job's manifest write (issue 20's item 2),
    fails its check with the fix, skips the warehouse steps, still deletes the scratch files and
    still writes the report (with the uploaded canary's encryption headers), and fails the run. No
    SQS delete is expected, so one would fail the test."""
    creds = dict(region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    s3, rsd, sqs = (boto3.client(name, **creds) for name in ("s3", "redshift-data", "sqs"))
    bucket = "shop-prod-landing-123456789012"
    key_arn = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000001"
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_arn}
    doc = load_job.expanded_canary(json.loads(rendered[canary.PATH]))  # each unit file in its place
    landed = base64.b64decode(doc["units"]["customers"][0]["files"]["LOAD00000001.parquet"])  # a landed file's bytes
    select = {"WorkgroupName": "shop-prod", "Database": "shop", "Sql": "SELECT 1, CURRENT_USER"}
    with Stubber(s3) as s3_stub, Stubber(rsd) as rsd_stub, Stubber(sqs) as sqs_stub:
        if denied == "data api":
            rsd_stub.add_client_error("execute_statement", "AccessDeniedException", "not authorized to GetCredentials",
                                      expected_params=select)
        else:
            rsd_stub.add_response("execute_statement", {"Id": "s1"}, select)
            rsd_stub.add_response("describe_statement", {"Id": "s1", "Status": "FINISHED"}, {"Id": "s1"})
            rsd_stub.add_response("get_statement_result", {"Records": [[{"longValue": 1}, {
                "stringValue": "IAMR:shop-prod-glue-loader"}]]}, {"Id": "s1"})
        s3_stub.add_response("list_objects_v2", {"Contents": [{"Key": "raw/public/customers/LOAD00000001.parquet",
                                                               "Size": len(landed), "ETag": '"e1"'}]},
                             {"Bucket": bucket, "Prefix": "raw/public/customers/"})
        s3_stub.add_response("get_object", {"Body": streaming(rendered[canary.PATH].encode()), **sse},
                             {"Bucket": bucket, "Key": CANARY_KEY})
        s3_stub.add_response("get_object", {"Body": streaming(rendered[JOB_CONFIG].encode())},
                             {"Bucket": bucket, "Key": CONFIG_KEY})
        footer_key = SCRATCH + "footer/LOAD00000001.parquet"
        s3_stub.add_response("put_object", {"ETag": '"f1"'},
                             {"Bucket": bucket, "Key": footer_key, "Body": landed,
                              "ContentType": "application/octet-stream", **sse})
        s3_stub.add_response("get_object", {"Body": streaming(landed)},
                             {"Bucket": bucket, "Key": "raw/public/customers/LOAD00000001.parquet",
                              "Range": "bytes=-65536"})
        check = SCRATCH + "check.manifest"
        put_check = {"Bucket": bucket, "Key": check, "Body": load_job.manifest_document(bucket, []).encode(),
                     "ContentType": "application/json"}
        if denied == "manifest":
            s3_stub.add_client_error("put_object", "AccessDenied", "Access Denied", 403, expected_params=put_check)
        else:
            s3_stub.add_response("put_object", {"ETag": '"m1"'}, put_check)
            s3_stub.add_response("delete_object", {}, {"Bucket": bucket, "Key": check})
        sqs_stub.add_response("receive_message", {}, {"QueueUrl": QUEUE, "MaxNumberOfMessages": 1,
                                                      "WaitTimeSeconds": 0, "VisibilityTimeout": 0})
        s3_stub.add_response("delete_object", {}, {"Bucket": bucket, "Key": footer_key})  # what it wrote
        s3_stub.add_response("put_object", {"ETag": '"r1"'}, {"Bucket": bucket, "Key": SCRATCH + "report.json",
                                                              "Body": ANY, "ContentType": "application/json", **sse})
        args = load_job.parse_args(["--landing_bucket", bucket, "--config_key", CONFIG_KEY, "--manifest_prefix",
                                    MANIFESTS, "--workgroup", "shop-prod", "--database", "shop", "--copy_role_arn",
                                    "arn:aws:iam::123456789012:role/shop-prod-redshift", "--queue_url", QUEUE,
                                    "--smoke_canary_key", CANARY_KEY, "--mode", "smoke", "--smoke_id", "run1"])
        config = load_job.Config.from_json(rendered[JOB_CONFIG])
        storage = load_job.S3Storage(s3, bucket)
        warehouse = load_job.Warehouse(rsd, "shop-prod", "shop", sleep=lambda s: None)
        log: list[str] = []
        with pytest.raises(load_job.JobError) as failed:
            load_job.smoke(args, storage, warehouse, config, load_job.QueueDiscovery(sqs, QUEUE, config),
                           log=log.append)
        for stub in (s3_stub, rsd_stub, sqs_stub):
            stub.assert_no_pending_responses()
    error = {"data api": "An error occurred (AccessDeniedException)", "manifest": "An error occurred (AccessDenied)"}
    assert str(failed.value).startswith(f"smoke: 1 check(s) failed:\n  {denied}: {error[denied]}")
    assert load_job.SMOKE_FIXES[denied] in str(failed.value)
    assert "smoke PASS footer: read the footer of raw/public/customers/LOAD00000001.parquet: 11 columns" in log
    assert "smoke PASS queue: received 0 message(s) and left them on the queue" in log
    if denied == "manifest":
        assert "smoke PASS data api: SELECT 1 ran as IAMR:shop-prod-glue-loader" in log
    assert not any("scratch schemas" in line or "warehouse" in line for line in log)  # skipped


def test_the_job_the_cli_and_the_stack_agree_on_the_scratch_prefix(rendered):
    """The job writes there, `dwctl smoke` reads its report there, and the role may delete only there."""
    from dwctl.spec.landed_layout import SMOKE_DIR

    assert load_job.SMOKE_DIR == SMOKE_DIR
    assert load_job.smoke_prefix("raw/_dwctl_manifests/", "r1") == f"raw/_dwctl_manifests/{SMOKE_DIR}/r1"
    tf = rendered["iac/loader_job.tf"]
    assert f'loader_smoke_prefix = "${{local.loader_manifest_prefix}}/{SMOKE_DIR}"' in tf
    assert 'resources = ["${aws_s3_bucket.landing.arn}/${local.loader_smoke_prefix}/*"]' in tf
    deletes = [block for block in tf.split("statement {") if "s3:DeleteObject" in block]
    assert len(deletes) == 1 and "loader_smoke_prefix" in deletes[0]  # the only object the job may delete
