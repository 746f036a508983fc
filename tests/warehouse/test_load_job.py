"""The load job (dwctl/warehouse/load_job.py, shipped as iac/glue_scripts/load_job.py with its
rendered config): its SQL is the rendered SQL, its file planning is right, and it drives S3 and
the Redshift Data API correctly.

AWS is the one boundary mocked, with botocore's Stubber (S3 ListObjectsV2/PutObject, Redshift
Data API ExecuteStatement/BatchExecuteStatement/DescribeStatement/GetStatementResult): the
Stubber checks every request's parameters against the real API model. The load-log queries run
against DuckDB, through the same transpile step as `dwctl sql verify`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import duckdb
import pytest
import sqlglot
from botocore.response import StreamingBody
from botocore.stub import Stubber

from dwctl.warehouse import load_job
from dwctl.warehouse.verifier import JOB_CONFIG, JOB_SCRIPT, LocalLanding, Transpiler

BUCKET = "shop-prod-landing-123456789012"
SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:redshift!shop-prod-admin-AbCdEf"
ROLE = "arn:aws:iam::123456789012:role/shop-prod-redshift"
ARGS = ["--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_abc", "--job-bookmark-option", "job-bookmark-disable",
        "--landing_bucket", BUCKET, "--config_key", "_dwctl/glue_scripts/load_job_config.json", "--manifest_prefix", "raw/_dwctl_manifests", "--workgroup", "shop-prod",
        "--database", "shop", "--copy_role_arn", ROLE, "--tables", "orders"]
# No SecretArn: the job signs in as its own IAM role (temporary credentials), never as the admin.
TARGET = {"WorkgroupName": "shop-prod", "Database": "shop"}
P = "raw/public/orders/"


@pytest.fixture(scope="module")
def job():
    return load_job


@pytest.fixture(scope="module")
def config(rendered):
    return load_job.Config.from_json(rendered[JOB_CONFIG])


def body(rendered: dict[str, str], path: str) -> str:
    """A rendered file without its two generated-by header lines."""
    return rendered[path].split("\n", 2)[2]


def test_the_shipped_script_is_the_module(rendered):
    assert body(rendered, JOB_SCRIPT) == Path(load_job.__file__).read_text(encoding="utf-8")


def test_a_config_of_another_format_is_refused(rendered):
    doc = json.loads(rendered[JOB_CONFIG])
    doc["format"] = 99
    with pytest.raises(load_job.JobError, match="format 99"):
        load_job.Config(doc)


def test_the_job_carries_the_rendered_sql(config, rendered, example_spec):
    assert config.create_sql == body(rendered, "sql/01_create_tables.sql")
    assert config.load_sql == body(rendered, "sql/02_load_staging.sql")
    assert set(config.merge_sql) == {t.name for t in example_spec.tables}
    for table in example_spec.tables:
        assert config.merge_sql[table.name] == body(rendered, f"sql/03_merge_{table.name}.sql")
        assert config.tables[table.name] == f"raw/{table.schema_}/{table.name}/"


def test_statement_splitting_agrees_with_sqlglot(job, rendered):
    for path, text in rendered.items():
        if path.startswith("sql/"):
            parsed = [s for s in sqlglot.parse(text, read="redshift") if s is not None]
            mine = job.split_statements(text)
            assert len(mine) == len(parsed), path
            for a, b in zip(mine, parsed):
                assert sqlglot.parse_one(a, read="redshift") == b


def test_load_statements_pick_one_table_and_the_kinds_of_file_it_has(job, config):
    both = job.load_statements(config.load_sql, "order_items")
    assert [s.split("\n")[1] for s in both] == [
        "FROM '${manifest:order_items:load}'", "FROM '${manifest:order_items:cdc}'", "FROM '${files:order_items}'"]
    cdc_only = job.load_statements(config.load_sql, "order_items", kinds=("cdc",))
    assert [s.split("\n")[0] for s in cdc_only] == ['COPY "staging"."order_items"',
                                                    'COPY "staging"."_dwctl_staged_files" ("table_name", "s3_key", "etag")']
    assert job.load_statements(config.load_sql, "order") == []


def L(name: str, size: int = 1, etag: str = "e1"):
    return load_job.Landed(P + name, size, etag)


def test_full_load_and_cdc_files_are_told_apart_by_name(job):
    files = job.parquet_only([L("20240102-000000000.parquet"), L("LOAD00000002.parquet"), L("notes.txt"),
                              L("LOAD00000001.parquet"), L("LOAD00000001.parquet")])
    load, cdc = job.split_kinds(files, "LOAD")
    assert [o.key for o in load] == [P + "LOAD00000001.parquet", P + "LOAD00000002.parquet"]
    assert [o.key for o in cdc] == [P + "20240102-000000000.parquet"], "one per (key, ETag), Parquet only"


def test_a_reload_is_a_load_file_at_or_before_the_newest_merged(job):
    assert not job.is_reload([L("LOAD00000001.parquet")], []), "the first full load"
    assert not job.is_reload([L("LOAD00000003.parquet")], [P + "LOAD00000002.parquet"]), "the same load, later file"
    assert job.is_reload([L("LOAD00000002.parquet", etag="e2")], [P + "LOAD00000002.parquet"]), "rewritten"
    assert job.is_reload([L("LOAD00000001.parquet")], [P + "LOAD00000002.parquet"]), "numbering starts again"
    assert job.is_reload([L("LOAD00000001.parquet")], [], "3"), "after CDC files: the first load was empty"
    assert not job.is_reload([L("LOAD00000001.parquet")], [], "3", "1"), "the first load's file was quarantined"


def test_full_load_streams_are_compared_only_with_themselves(job):
    """Parallel load (CHAP_Target.S3): segment or partition folders, or SEGMENTn_ prefixes, each numbered
    from 1 in hexadecimal; CDC files stay beside them, named by time."""
    assert job.full_load_stream(P + "segment02/LOAD0000000A.parquet", "LOAD") == (P + "segment02/", 10)
    assert job.full_load_stream(P + "SEGMENT3_LOAD0000000A.parquet", "LOAD") == (P + "SEGMENT3_", 10)
    assert job.full_load_stream(P + "LOAD00000009.parquet", "LOAD") == (P, 9)
    assert job.full_load_stream(P + "20240101-121500000.parquet", "LOAD") is None
    merged = [P + "segment01/LOAD00000002.parquet", P + "SEGMENT1_LOAD00000003.parquet"]
    for name in ("segment02/LOAD00000001.parquet", "SEGMENT2_LOAD00000001.parquet", "LOAD00000001.parquet"):
        assert not job.is_reload([L(name)], merged, "0"), name + ": another segment's numbering is not this one's"
        assert not job.is_reload([L(name)], merged, "5", "0", 0), name + ": a new segment while the load goes on"
        assert job.is_reload([L(name)], merged, "5", "0", 1), name + ": a new segment once the load was complete"
        assert not job.is_reload([L(name)], merged, "5", "1", 1), name + ": unless a LOAD file is quarantined"
    assert job.is_reload([L("segment01/LOAD00000001.parquet")], merged), "a segment's numbering starts again"
    assert job.is_reload([L("SEGMENT1_LOAD00000003.parquet", etag="e2")], merged), "a segment's file rewritten"
    assert not job.is_reload([L("segment01/LOAD00000003.parquet")], merged), "more of the same segment"


def test_the_config_knows_each_tables_folder(config):
    assert config.table_of(P + "LOAD00000001.parquet") == "orders"
    assert config.table_of("raw/public/orders_x/LOAD00000001.parquet") is None
    assert config.table_of("raw/_dwctl_manifests/orders/x.manifest") is None
    assert config.table_of(P + "segment01/LOAD00000001.parquet") == "orders", "a segment's or partition's folder"
    assert config.table_of(P + "segment01/20240101-121500000.parquet") is None, "CDC files are never in one"


def test_substitute_quotes_values_and_refuses_missing_ones(job):
    sql = "COPY t FROM '${manifest:t}' IAM_ROLE '${iam_role}' FORMAT AS PARQUET MANIFEST"
    out = job.substitute(sql, {"manifest:t": "s3://b/k'; DROP TABLE x; --", "iam_role": "arn:r\\x"})
    assert out == "COPY t FROM 's3://b/k''; DROP TABLE x; --' IAM_ROLE 'arn:r\\\\x' FORMAT AS PARQUET MANIFEST"
    assert len(sqlglot.parse(out, read="redshift")) == 1
    with pytest.raises(job.JobError, match=r"\$\{iam_role\}"):
        job.substitute(sql, {"manifest:t": "s3://b/k"})


def test_manifest_and_file_list(job):
    files = [L("LOAD00000001.parquet", 10), L("20240101-000000000.parquet", 20, '"abc"')]
    doc = json.loads(job.manifest_document(BUCKET, files))
    assert doc == {"entries": [
        {"url": f"s3://{BUCKET}/{P}LOAD00000001.parquet", "mandatory": True, "meta": {"content_length": 10}},
        {"url": f"s3://{BUCKET}/{P}20240101-000000000.parquet", "mandatory": True, "meta": {"content_length": 20}}]}
    assert job.files_csv("orders", files) == (f"orders,{P}LOAD00000001.parquet,e1\n"
                                              f"orders,{P}20240101-000000000.parquet,abc\n"), "ETag quotes dropped"


def test_arguments(job):
    args = job.parse_args(ARGS)
    assert args["landing_bucket"] == BUCKET and args["tables"] == "orders" and args["JOB_RUN_ID"] == "jr_abc"
    with pytest.raises(job.JobError, match="--database, --copy_role_arn$"):
        job.parse_args(ARGS[:-6])


def test_manifests_name_the_stack_key_when_the_job_is_given_it(job):
    """Issue 20, item 2: the landing bucket refuses a PutObject without SSE-KMS headers naming the stack's
    key (s3.tf), so with --kms_key_arn every manifest carries them; the Stubber checks the parameters
    against S3's API model. Without it (optional, as for a run outside the stack) nothing is added."""
    key = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000001"
    assert job.parse_args(ARGS + ["--kms_key_arn", key])["kms_key_arn"] == key and "kms_key_arn" not in job.parse_args(ARGS)
    for given, extra in ((key, {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key}), (None, {})):
        aws = Aws()
        aws.s3_stub.add_response("put_object", {}, {"Bucket": BUCKET, "Key": "raw/_dwctl_manifests/m", "Body": b"{}",
                                                    "ContentType": "application/json", **extra})
        with aws.s3_stub:
            assert job.S3Storage(aws.s3, BUCKET, given).put("raw/_dwctl_manifests/m", "{}", "application/json") == \
                f"s3://{BUCKET}/raw/_dwctl_manifests/m"
            aws.s3_stub.assert_no_pending_responses()


def test_the_job_signs_in_as_its_own_role_not_the_admin(job):
    """No secret argument: every Data API call carries only the workgroup and database, so the Data
    API uses the job role's temporary credentials ("IAMR:<role>"); a secret, when given (a person
    running `dwctl sql quarantine --secret-arn`), is passed as SecretArn."""
    assert "secret_arn" not in job.REQUIRED and "secret_arn" not in job.parse_args(ARGS)
    for secret, target in ((None, TARGET), (SECRET, {**TARGET, "SecretArn": SECRET})):
        aws = Aws()
        aws.rsd_stub.add_response("execute_statement", {"Id": "q"}, {**target, "Sql": "SELECT 1"})
        aws.rsd_stub.add_response("describe_statement", {"Id": "q", "Status": "FINISHED"}, {"Id": "q"})
        with aws.rsd_stub:
            job.Warehouse(aws.rsd, "shop-prod", "shop", secret, sleep=lambda s: None).execute("SELECT 1")
            aws.rsd_stub.assert_no_pending_responses()


# --- the job's own queries, run in DuckDB -------------------------------------------------------------
def test_bookkeeping_queries_against_duckdb(job, tmp_path, config):
    from dwctl.warehouse.verifier import DuckDBWarehouse

    con = duckdb.connect()
    warehouse = DuckDBWarehouse(con, Transpiler(con, LocalLanding(tmp_path, "")))
    warehouse.batch(job.split_statements(config.create_sql), "create")
    logged = [("orders", P + "LOAD00000001.parquet", "a"), ("orders", P + "20240101-100000000.parquet", "b"),
              ("customers", "raw/public/customers/LOAD00000009.parquet", "c")]
    con.executemany("INSERT INTO staging._dwctl_load_log VALUES (?, ?, ?, now())", logged)
    assert warehouse.query(config.queries["load_history"], table_name="orders") == [[P + "LOAD00000001.parquet", 1, 0, 1, None]]
    assert warehouse.query(config.queries["load_history"], table_name="products") == [[None, 0, 0, 0, None]]
    con.execute("INSERT INTO staging._dwctl_generations VALUES ('orders', 1, '2024-01-01 10:00:00.000000', "
                "'2024-01-01 10:05:00.000000')")
    assert warehouse.query(config.queries["load_history"], table_name="orders")[0][4] == "2024-01-01 10:00:00.000000"
    for _ in range(2):  # quarantining twice keeps one row
        warehouse.execute(config.queries["quarantine"], table_name="orders", s3_key=P + "bad.parquet", etag="x",
                          size=3, reason="Spectrum Scan Error")
    known = sorted(tuple(r) for r in warehouse.query(config.queries["known_files"], table_name="orders"))
    assert known == [(P + "20240101-100000000.parquet", "b"), (P + "LOAD00000001.parquet", "a"), (P + "bad.parquet", "x")]
    assert warehouse.query(config.queries["quarantined"]) == [["orders", P + "bad.parquet", "x", 3]]
    assert warehouse.query(config.queries["stops"]) == [["quarantine", "orders", P + "bad.parquet", "Spectrum Scan Error", 0]]
    # a merged file deleted from the bucket (a TRUNCATE), seen at generation 1: a stop until generation 2
    warehouse.batch([config.queries["record_deleted"] + f"('orders', '{P}LOAD00000001.parquet', 1, GETDATE()), "
                     f"('orders', '{P}bad.parquet', 1, GETDATE())"], "deleted")
    assert sorted(r[0] for r in warehouse.query(config.queries["deleted_files"], table_name="orders")) == [
        P + "LOAD00000001.parquet", P + "bad.parquet"]
    assert warehouse.query(config.queries["generation_now"], table_name="orders") == [[1]]
    assert sorted(map(tuple, warehouse.query(config.queries["stops"]))) == [
        ("deleted", "orders", P + "LOAD00000001.parquet", "2", 0), ("quarantine", "orders", P + "bad.parquet", "Spectrum Scan Error", 0)]
    con.execute("INSERT INTO staging._dwctl_generations VALUES ('orders', 2, '2024-01-02 10:00:00.000000', "
                "'2024-01-02 10:05:00.000000')")
    assert warehouse.query(config.queries["stops"]) == [["quarantine", "orders", P + "bad.parquet", "Spectrum Scan Error", 1]], \
        "a reload merged since: no deletion stop, and the deleted quarantined file is superseded"
    warehouse.execute(config.queries["release_superseded"], table_name="orders")
    assert warehouse.query(config.queries["stops"]) == []
    warehouse.execute(config.queries["quarantine"], table_name="orders", s3_key=P + "bad.parquet", etag="x", size=3, reason="r")
    warehouse.execute(config.queries["release_quarantine"], table_name="orders")
    assert warehouse.query(config.queries["quarantined"]) == []


# --- S3 and the Data API, stubbed ----------------------------------------------------------------------
class Aws:
    """Real boto3 clients with Stubbers: every call must be expected, with exactly these parameters."""

    def __init__(self):
        creds = dict(region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing")
        self.s3, self.rsd = boto3.client("s3", **creds), boto3.client("redshift-data", **creds)
        self.s3_stub, self.rsd_stub = Stubber(self.s3), Stubber(self.rsd)
        self.n = 0

    def statement(self, method: str, params: dict, status: str = "FINISHED", error: str | None = None,
                  sub: list | None = None, rows: list | None = None) -> str:
        self.n += 1
        sid = f"00000000-0000-0000-0000-{self.n:012d}"
        self.rsd_stub.add_response(method, {"Id": sid}, {**TARGET, **params})
        self.rsd_stub.add_response("describe_statement", {"Id": sid, "Status": "STARTED"}, {"Id": sid})
        described = {"Id": sid, "Status": status, **({"Error": error} if error else {}),
                     **({"SubStatements": sub} if sub else {})}
        self.rsd_stub.add_response("describe_statement", described, {"Id": sid})
        if rows is not None:
            self.rsd_stub.add_response("get_statement_result", {"Records": rows}, {"Id": sid})
        return sid

    def query(self, sql: str, params: dict, rows: list):
        named = {"Parameters": [{"name": k, "value": v} for k, v in sorted(params.items())]} if params else {}
        self.statement("execute_statement", {"Sql": sql, **named}, rows=rows)


def expect_create(aws: Aws, job, config) -> None:
    """The DDL is current: one query, no DDL."""
    aws.query(config.queries["ddl_applied"], {}, [[{"stringValue": config.ddl_hash}]])


def test_ddl_runs_only_when_the_spec_changed(job, config):
    aws = Aws()
    aws.query(config.queries["ddl_applied"], {}, [[{"stringValue": "an older hash"}]])
    aws.statement("batch_execute_statement", {"Sqls": job.split_statements(config.create_sql),
                                              "StatementName": "dwctl-create-tables"})
    aws.query(config.queries["columns"], {}, [])  # the warehouse's columns: as just created, nothing to migrate
    record = [job.substitute(s, {"ddl_hash": config.ddl_hash}) for s in config.queries["record_ddl"]]
    aws.statement("batch_execute_statement", {"Sqls": record, "StatementName": "dwctl-record-ddl"})
    warehouse = job.Warehouse(aws.rsd, "shop-prod", "shop", sleep=lambda s: None)
    with aws.rsd_stub:
        assert job.apply_ddl(warehouse, config) == (set(), [])
        aws.rsd_stub.assert_no_pending_responses()
    assert f"'{config.ddl_hash}'" in record[1]
    aws = Aws()
    expect_create(aws, job, config)
    with aws.rsd_stub:
        assert job.apply_ddl(job.Warehouse(aws.rsd, "shop-prod", "shop", sleep=lambda s: None), config) is None
        aws.rsd_stub.assert_no_pending_responses()


QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/shop-prod-landed"


def event(key: str, size: int, etag: str) -> dict:
    """An SQS message carrying an EventBridge "Object Created" event of the landing bucket (key URL-encoded)."""
    from urllib.parse import quote_plus

    body = {"source": "aws.s3", "detail-type": "Object Created",
            "detail": {"bucket": {"name": BUCKET}, "object": {"key": quote_plus(key, safe="/"), "size": size, "etag": etag}}}
    return {"MessageId": key, "ReceiptHandle": "rh-" + key, "Body": json.dumps(body)}


class Queue:
    """A stubbed SQS client (botocore Stubber: requests are checked against the real API model)."""

    def __init__(self, messages: list[dict]):
        creds = dict(region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing")
        self.sqs = boto3.client("sqs", **creds)
        self.stub = Stubber(self.sqs)
        receive = {"QueueUrl": QUEUE, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0, "VisibilityTimeout": 3900}
        self.stub.add_response("get_queue_attributes", {"Attributes": {"ApproximateNumberOfMessages": str(len(messages))}},
                               {"QueueUrl": QUEUE, "AttributeNames": ["ApproximateNumberOfMessages"]})
        for start in range(0, len(messages), 10):
            self.stub.add_response("receive_message", {"Messages": messages[start:start + 10]}, receive)
        if len(messages) % 10 == 0:  # the job stops at a call that is not full once it has the queue's depth
            self.stub.add_response("receive_message", {}, receive)

    def expect_delete(self, receipts: list[str]):
        self.stub.add_response("delete_message_batch", {"Successful": [{"Id": str(i)} for i in range(len(receipts))],
                                                        "Failed": []},
                               {"QueueUrl": QUEUE, "Entries": [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(receipts)]})


def run_job(job, config_text: str, aws: Aws, queue: Queue, args=ARGS):
    """One run as main() does it: read the config from S3 (a stubbed client of its own, since
    Stubber answers calls in order), then discover, load and merge."""
    log: list[str] = []
    warehouse = job.Warehouse(aws.rsd, "shop-prod", "shop", sleep=lambda s: None)
    parsed = job.parse_args(args)
    config_s3 = Aws().s3
    with Stubber(config_s3) as stub:
        data = config_text.encode()
        stub.add_response("get_object", {"Body": StreamingBody(io.BytesIO(data), len(data))},
                          {"Bucket": BUCKET, "Key": parsed["config_key"]})
        config = job.read_config(config_s3, parsed)
    storage = job.S3Storage(aws.s3, BUCKET)
    with aws.s3_stub, aws.rsd_stub, queue.stub:
        try:
            return job.run(parsed, storage, warehouse, config, job.QueueDiscovery(queue.sqs, QUEUE, config),
                           log=log.append), log
        finally:
            aws.s3_stub.assert_no_pending_responses()
            aws.rsd_stub.assert_no_pending_responses()
            queue.stub.assert_no_pending_responses()


def expect_footers(aws: Aws, config, files: list) -> None:
    """The job reads each file's Parquet footer (a suffix range of its last bytes): files of the spec's layout."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([pa.field(name, pa.string() if staging.startswith(("VARCHAR", "CHAR")) else pa.int64())
                        for name, staging in config.landed["orders"]])
    out = io.BytesIO()
    pq.write_table(schema.empty_table(), out)
    data = out.getvalue()
    for landed in files:
        aws.s3_stub.add_response("get_object", {"Body": StreamingBody(io.BytesIO(data), len(data))},
                                 {"Bucket": BUCKET, "Key": landed.key, "Range": "bytes=-65536"})


def expect_manifests(aws: Aws, job, base: str, load: list, cdc: list) -> dict:
    values = {"iam_role": ROLE, "reload:orders": "false", "load_start:orders": ""}
    for kind, files in (("load", load), ("cdc", cdc)):
        if files:
            aws.s3_stub.add_response("put_object", {}, {"Bucket": BUCKET, "Key": f"{base}.{kind}.manifest",
                                                        "ContentType": "application/json",
                                                        "Body": job.manifest_document(BUCKET, files).encode()})
            values[f"manifest:orders:{kind}"] = f"s3://{BUCKET}/{base}.{kind}.manifest"
    aws.s3_stub.add_response("put_object", {}, {"Bucket": BUCKET, "Key": base + ".files.csv", "ContentType": "text/csv",
                                                "Body": job.files_csv("orders", sorted(load + cdc, key=lambda o: o.key)).encode()})
    values["files:orders"] = f"s3://{BUCKET}/{base}.files.csv"
    return values


def test_a_run_merges_the_queued_files_in_one_batch_and_only_then_deletes_their_messages(job, config, rendered):
    aws = Aws()
    queue = Queue([event(P + "20240101-121500000.parquet", 7, '"c1"'), event(P + "LOAD00000001.parquet", 9, '"l1"'),
                   event("raw/_dwctl_manifests/orders/x.manifest", 3, '"m"'),
                   event("raw/public/customers/20240101-121500000.parquet", 4, '"k"')])
    queue.expect_delete(["rh-raw/_dwctl_manifests/orders/x.manifest"])  # nothing to load: acknowledged at once
    expect_create(aws, job, config)
    aws.query(config.queries["stops"], {}, [])  # nothing keeps a table incomplete
    aws.query(config.queries["load_history"], {"table_name": "orders"},
              [[{"isNull": True}, {"longValue": 0}, {"longValue": 0}, {"longValue": 0}, {"isNull": True}]])
    load, cdc = [L("LOAD00000001.parquet", 9, "l1")], [L("20240101-121500000.parquet", 7, "c1")]
    expect_footers(aws, config, cdc + load)
    values = expect_manifests(aws, job, "raw/_dwctl_manifests/orders/jr_abc-1", load, cdc)
    merge = job.without_transaction(job.split_statements(config.merge_sql["orders"]))
    sqls = [config.queries["lock_bookkeeping"]] + [job.substitute(s, values) for s in
                                                   job.load_statements(config.load_sql, "orders") +
                                                   [config.record_freshness["orders"]] + merge]
    aws.statement("batch_execute_statement", {"Sqls": sqls, "StatementName": "dwctl-load-orders"})
    aws.query(config.queries["stops"], {}, [])
    queue.expect_delete(["rh-" + P + "20240101-121500000.parquet", "rh-" + P + "LOAD00000001.parquet"])

    merged, log = run_job(job, rendered[JOB_CONFIG], aws, queue)
    assert merged == {"orders": 2} and log == ["orders: 2 new file(s) merged"]
    assert not any("${" in s for s in sqls) and "'false' = 'true'" in "".join(sqls), "not a reload"
    assert sqls[-1] == 'DELETE FROM "staging"."orders__dwctl_work"'
    # the customers event is for a table this run was not asked for: its message stays on the queue


def test_a_table_without_new_files_costs_one_look_at_what_keeps_tables_incomplete(job, config, rendered):
    aws = Aws()
    queue = Queue([])
    expect_create(aws, job, config)
    aws.query(config.queries["stops"], {}, [])
    merged, log = run_job(job, rendered[JOB_CONFIG], aws, queue, args=ARGS[:-2])
    assert merged == {t: 0 for t in config.tables} and log == []


def test_a_file_that_cannot_load_is_quarantined_and_the_rest_goes_on(job, config, rendered):
    aws = Aws()
    queue = Queue([event(P + "20240101-120000000.parquet", 5, '"good"'), event(P + "20240101-121500000.parquet", 7, '"bad"')])
    expect_create(aws, job, config)
    aws.query(config.queries["stops"], {}, [])
    good, bad = L("20240101-120000000.parquet", 5, "good"), L("20240101-121500000.parquet", 7, "bad")
    error = "ERROR: Spectrum Scan Error. Parquet column 'total_amount' has type DOUBLE, table has DECIMAL(14,2)"

    def failed_batch(n: int):
        aws.rsd_stub.add_response("batch_execute_statement", {"Id": f"batch-{n}"})
        aws.rsd_stub.add_response("describe_statement", {
            "Id": f"batch-{n}", "Status": "FAILED", "Error": error,
            "SubStatements": [{"Id": f"batch-{n}:1", "Status": "FAILED", "QueryString": 'COPY "staging"."orders" ...'}]})

    expect_footers(aws, config, [good, bad])
    expect_manifests(aws, job, "raw/_dwctl_manifests/orders/jr_abc-1", [], [good, bad])
    failed_batch(1)  # the batch of both fails: each file is tried alone
    values = expect_manifests(aws, job, "raw/_dwctl_manifests/orders/jr_abc-2", [], [good])
    merge = job.without_transaction(job.split_statements(config.merge_sql["orders"]))
    sqls = [config.queries["lock_bookkeeping"]] + [job.substitute(s, values) for s in
                                                   job.load_statements(config.load_sql, "orders", ("cdc",)) +
                                                   [config.record_freshness["orders"]] + merge]
    aws.statement("batch_execute_statement", {"Sqls": sqls, "StatementName": "dwctl-load-orders"})
    expect_manifests(aws, job, "raw/_dwctl_manifests/orders/jr_abc-3", [], [bad])
    failed_batch(3)
    aws.statement("execute_statement", {"Sql": config.queries["quarantine"], "Parameters": [
        {"name": "etag", "value": "bad"}, {"name": "reason", "value": f"dwctl-load-orders: FAILED: {error}\n  in: COPY \"staging\".\"orders\" ..."},
        {"name": "s3_key", "value": bad.key}, {"name": "size", "value": "7"}, {"name": "table_name", "value": "orders"}]})
    aws.query(config.queries["stops"], {}, [[{"stringValue": "quarantine"}, {"stringValue": "orders"}, {"stringValue": bad.key},
                                             {"stringValue": "dwctl-load-orders: FAILED"}, {"longValue": 0}]])
    queue.expect_delete(["rh-" + good.key, "rh-" + bad.key])
    with pytest.raises(job.JobError) as err:
        run_job(job, rendered[JOB_CONFIG], aws, queue)
    message = str(err.value)
    assert "1 problem(s)" in message and f"{bad.key} quarantined" in message and error in message


def test_results_are_paged(job):
    aws = Aws()
    aws.rsd_stub.add_response("execute_statement", {"Id": "q"})
    aws.rsd_stub.add_response("describe_statement", {"Id": "q", "Status": "FINISHED"})
    aws.rsd_stub.add_response("get_statement_result", {"Records": [[{"stringValue": "a"}]], "NextToken": "t"},
                              {"Id": "q"})
    aws.rsd_stub.add_response("get_statement_result", {"Records": [[{"isNull": True}], [{"longValue": 3}]]},
                              {"Id": "q", "NextToken": "t"})
    with aws.rsd_stub:
        rows = job.Warehouse(aws.rsd, "shop-prod", "shop", sleep=lambda s: None).query("SELECT 1")
    assert rows == [["a"], [None], [3]]


def test_a_statement_that_never_finishes_times_out(job):
    aws = Aws()
    aws.rsd_stub.add_response("batch_execute_statement", {"Id": "b"})
    for _ in range(4):
        aws.rsd_stub.add_response("describe_statement", {"Id": "b", "Status": "STARTED"})
    aws.rsd_stub.add_response("cancel_statement", {"Status": True}, {"Id": "b"})
    with aws.rsd_stub, pytest.raises(job.JobError, match="still STARTED after 1s; cancelled"):
        job.Warehouse(aws.rsd, "shop-prod", "shop", sleep=lambda s: None, timeout=1).batch(["SELECT 1"], "x")
    aws.rsd_stub.assert_no_pending_responses()


def test_unknown_table_argument(job, config):
    with pytest.raises(job.JobError, match="unknown tables: nope"):
        job.run(job.parse_args(ARGS[:-1] + ["nope"]), None, None, config, None)


# --- the Terraform that deploys it ------------------------------------------------------------------------
def tf_resources(rendered) -> dict[str, dict]:
    import hcl2

    tree = hcl2.loads(rendered["iac/loader_job.tf"])
    return {f"{rtype}.{name}": body for block in tree["resource"] for rtype, named in block.items()
            for name, body in named.items()}


def test_the_job_resource_passes_exactly_the_arguments_the_script_needs(job, rendered):
    res = tf_resources(rendered)
    glue = res["aws_glue_job.loader"]
    command = glue["command"][0]
    assert command["name"] == ["pythonshell"] and command["python_version"] == ["3.9"]
    assert command["script_location"] == ["s3://${aws_s3_object.loader_script.bucket}/${aws_s3_object.loader_script.key}"]
    passed = {k[2:] for k in glue["default_arguments"][0]} - {"job-language"}
    assert set(job.REQUIRED) <= passed and passed <= set(job.REQUIRED) | {"queue_url", "discovery", "visibility_timeout", "tables",
                                                                        "botocore_data_prefix", "metric_namespace",
                                                                        "kms_key_arn", "smoke_canary_key", "dms_task_arns"}
    assert glue["default_arguments"][0]["--kms_key_arn"] == "${aws_kms_key.this.arn}"  # the key the bucket policy requires
    assert glue["max_retries"] == ["${var.loader_max_retries}"]
    assert glue["execution_property"][0]["max_concurrent_runs"] == [1]
    assert glue["security_configuration"] == ["${aws_glue_security_configuration.this.name}"]
    script = res["aws_s3_object.loader_script"]
    assert script["source_hash"] == ["${filemd5(local.loader_script_path)}"]
    prefix = rendered["iac/loader_job.tf"].split('loader_manifest_prefix = "')[1].split('"')[0]
    assert prefix.startswith("${var.landing_prefix}/"), "COPY reads manifests with the Redshift role's landing read"


def test_a_schedule_runs_the_job_and_a_failed_run_reaches_the_alarm_topic(rendered):
    res = tf_resources(rendered)
    trigger = res["aws_glue_trigger.loader_schedule"]
    assert trigger["type"] == ["SCHEDULED"] and trigger["workflow_name"] == ["${aws_glue_workflow.loader.name}"]
    assert trigger["actions"][0]["job_name"] == ["${aws_glue_job.loader.name}"]
    rule = rendered["iac/loader_job.tf"].split('resource "aws_cloudwatch_event_rule" "loader_failed"')[1]
    assert '"Glue Job State Change"' in rule and '"FAILED", "TIMEOUT", "ERROR"' in rule
    assert res["aws_cloudwatch_event_target.loader_failed"]["arn"] == ["${aws_cloudwatch_log_group.loader_failures.arn}"]
    metric = res["aws_cloudwatch_log_metric_filter.loader_failed"]["metric_transformation"][0]
    alarm = res["aws_cloudwatch_metric_alarm.loader_failed"]
    assert (alarm["metric_name"], alarm["namespace"]) == (metric["name"], metric["namespace"])
    assert alarm["alarm_actions"] == [["${aws_sns_topic.alarms.arn}"]]


def test_deleted_files_reach_the_job_and_fail_the_run_with_the_fix(job, config, rendered):
    """A source TRUNCATE (MySQL, HandleSourceTableTruncated): DMS deletes the table's files."""
    aws = Aws()
    deleted = event(P + "LOAD00000001.parquet", 0, "")
    deleted["Body"] = deleted["Body"].replace('"Object Created"', '"Object Deleted"').replace(
        '"detail": {', '"detail": {"reason": "DeleteObject", ')
    expired = event(P + "20240101-000000000.parquet", 0, "")
    expired["Body"] = expired["Body"].replace('"Object Created"', '"Object Deleted"').replace(
        '"detail": {', '"detail": {"reason": "Lifecycle Expiration", ')
    queue = Queue([deleted, expired])
    queue.expect_delete([deleted["ReceiptHandle"], expired["ReceiptHandle"]])
    expect_create(aws, job, config)
    # recorded with the table's generation now (1): the table stays stopped until a reload is merged
    aws.query(config.queries["deleted_files"], {"table_name": "orders"}, [])
    aws.query(config.queries["generation_now"], {"table_name": "orders"}, [[{"longValue": 1}]])
    aws.statement("batch_execute_statement", {"Sqls": [config.queries["record_deleted"] + f"('orders', '{P}LOAD00000001.parquet', 1, GETDATE())"],
                                              "StatementName": "dwctl-deleted-orders"})
    aws.query(config.queries["stops"], {}, [[{"stringValue": "deleted"}, {"stringValue": "orders"},
                                             {"stringValue": P + "LOAD00000001.parquet"}, {"stringValue": "1"}, {"longValue": 0}]])
    with pytest.raises(job.JobError, match=r"orders: 1 merged file\(s\) were deleted[\s\S]*reload the table in DMS"):
        run_job(job, rendered[JOB_CONFIG], aws, queue)


def test_the_queue_receives_created_and_deleted_landed_files(rendered):
    rule = rendered["iac/loader_job.tf"].split('resource "aws_cloudwatch_event_rule" "landed"')[1].split("\n}\n")[0]
    assert '"detail-type" = ["Object Created", "Object Deleted"]' in rule
    assert 'prefix = "${var.landing_prefix}/"' in rule
