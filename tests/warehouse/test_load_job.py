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
        "--database", "shop", "--secret_arn", SECRET, "--copy_role_arn", ROLE, "--tables", "orders"]
TARGET = {"WorkgroupName": "shop-prod", "Database": "shop", "SecretArn": SECRET}
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


def test_load_statements_pick_one_table(job, config):
    loads = job.load_statements(config.load_sql, "order_items")
    assert len(loads) == 2 and all("'${files:order_items}'" in s or "'${manifest:order_items}'" in s for s in loads)
    assert job.load_statements(config.load_sql, "order") == []


def test_plan_puts_full_load_first_then_cdc_in_name_order(job):
    listed = [(P + "20240102-000000000.parquet", 3), (P + "LOAD00000002.parquet", 2), (P + "notes.txt", 1),
              (P + "20240101-235959999.parquet", 4), (P + "LOAD00000001.parquet", 1)]
    assert job.plan_files(listed, {P + "LOAD00000002.parquet"}, "LOAD") == [
        (P + "LOAD00000001.parquet", 1), (P + "20240101-235959999.parquet", 4), (P + "20240102-000000000.parquet", 3)]
    assert job.plan_files(listed, {k for k, _ in listed}, "LOAD") == []


def test_lookback_starts_listing_before_the_newest_merged_file(job):
    assert job.lookback_key(P, None) == P
    assert job.lookback_key(P, P + "20240101-003000123.parquet") == P + "20231231-233000"
    assert job.lookback_key(P, P + "20240101-003000123.parquet", minutes=0) == P + "20240101-003000"
    assert job.lookback_key(P, P + "20240101-0030001234.parquet") == P + "20231231-233000"  # 4 fraction digits
    assert job.lookback_key(P, P + "odd-name.parquet") == P


def test_substitute_quotes_values_and_refuses_missing_ones(job):
    sql = "COPY t FROM '${manifest:t}' IAM_ROLE '${iam_role}' FORMAT AS PARQUET MANIFEST"
    out = job.substitute(sql, {"manifest:t": "s3://b/k'; DROP TABLE x; --", "iam_role": "arn:r\\x"})
    assert out == "COPY t FROM 's3://b/k''; DROP TABLE x; --' IAM_ROLE 'arn:r\\\\x' FORMAT AS PARQUET MANIFEST"
    assert len(sqlglot.parse(out, read="redshift")) == 1
    with pytest.raises(job.JobError, match=r"\$\{iam_role\}"):
        job.substitute(sql, {"manifest:t": "s3://b/k"})


def test_manifest_and_file_list(job):
    files = [(P + "LOAD00000001.parquet", 10), (P + "20240101-000000000.parquet", 20)]
    doc = json.loads(job.manifest_document(BUCKET, files))
    assert doc == {"entries": [
        {"url": f"s3://{BUCKET}/{P}LOAD00000001.parquet", "mandatory": True, "meta": {"content_length": 10}},
        {"url": f"s3://{BUCKET}/{P}20240101-000000000.parquet", "mandatory": True, "meta": {"content_length": 20}}]}
    assert job.files_csv("orders", files) == f"orders,{P}LOAD00000001.parquet\norders,{P}20240101-000000000.parquet\n"


def test_arguments(job):
    args = job.parse_args(ARGS)
    assert args["landing_bucket"] == BUCKET and args["tables"] == "orders" and args["JOB_RUN_ID"] == "jr_abc"
    with pytest.raises(job.JobError, match="--secret_arn, --copy_role_arn"):
        job.parse_args(ARGS[:-8])


# --- the load-log queries, run in DuckDB -------------------------------------------------------------
def test_watermark_and_loaded_queries_against_duckdb(job, rendered, tmp_path, config):
    con = duckdb.connect()
    transpile = Transpiler(con, LocalLanding(tmp_path, ""))
    for statement in job.split_statements(config.create_sql):
        for sql in transpile(statement):
            con.execute(sql)
    logged = [("orders", P + "LOAD00000001.parquet"), ("orders", P + "20240101-100000000.parquet"),
              ("orders", P + "20240101-113000000.parquet"), ("orders", P + "20240101-120000000.parquet"),
              ("customers", "raw/public/customers/20240105-000000000.parquet")]
    con.executemany("INSERT INTO staging._dwctl_load_log VALUES (?, ?, now())", logged)

    def run(sql, **params):
        return con.execute(transpile(sql)[0], params).fetchall()

    watermark = run(config.watermark_sql, table_name="orders")[0][0]
    assert watermark == P + "20240101-120000000.parquet"
    since = job.lookback_key(P, watermark)
    loaded = {r[0] for r in run(config.loaded_sql, table_name="orders", since=since)}
    assert loaded == {P + "LOAD00000001.parquet", P + "20240101-113000000.parquet", P + "20240101-120000000.parquet"}
    listed = [(P + "LOAD00000001.parquet", 1), (P + "20240101-113000000.parquet", 1),
              (P + "20240101-114500000.parquet", 1), (P + "20240101-120000000.parquet", 1),
              (P + "20240101-121500000.parquet", 1)]
    assert [k for k, _ in job.plan_files([x for x in listed if x[0] > since], loaded, config.full_load_prefix)] == [
        P + "20240101-114500000.parquet", P + "20240101-121500000.parquet"]
    assert run(config.watermark_sql, table_name="products") == [(None,)]


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
        self.statement("execute_statement", {"Sql": sql, "Parameters": [
            {"name": k, "value": v} for k, v in sorted(params.items())]}, rows=rows)


def expect_create(aws: Aws, job, config) -> None:
    aws.statement("batch_execute_statement", {"Sqls": job.split_statements(config.create_sql),
                                              "StatementName": "dwctl-create-tables"})


def run_job(job, config_text: str, aws: Aws, args=ARGS):
    """One run as main() does it: read the config from S3 (a stubbed client of its own, since
    Stubber answers calls in order), then load and merge."""
    log: list[str] = []
    warehouse = job.Warehouse(aws.rsd, "shop-prod", "shop", SECRET, sleep=lambda s: None)
    parsed = job.parse_args(args)
    config_s3 = Aws().s3
    with Stubber(config_s3) as stub:
        data = config_text.encode()
        stub.add_response("get_object", {"Body": StreamingBody(io.BytesIO(data), len(data))},
                          {"Bucket": BUCKET, "Key": parsed["config_key"]})
        config = job.read_config(config_s3, parsed)
    with aws.s3_stub, aws.rsd_stub:
        total = job.run(parsed, aws.s3, warehouse, config, log=log.append)
        aws.s3_stub.assert_no_pending_responses()
        aws.rsd_stub.assert_no_pending_responses()
    return total, log


def test_a_run_loads_and_merges_the_new_files_in_one_batch(job, config, rendered):
    aws = Aws()
    expect_create(aws, job, config)
    aws.query(config.watermark_sql, {"table_name": "orders"}, [[{"stringValue": P + "20240101-120000000.parquet"}]])
    since = P + "20240101-110000"
    aws.query(config.loaded_sql, {"table_name": "orders", "since": since},
              [[{"stringValue": P + "LOAD00000001.parquet"}], [{"stringValue": P + "20240101-120000000.parquet"}]])
    aws.s3_stub.add_response("list_objects_v2", {"Contents": [
        {"Key": P + "20240101-120000000.parquet", "Size": 5}, {"Key": P + "20240101-121500000.parquet", "Size": 7},
        {"Key": P + "LOAD00000001.parquet", "Size": 9}], "IsTruncated": False},
        {"Bucket": BUCKET, "Prefix": P, "StartAfter": since})
    base = "raw/_dwctl_manifests/orders/jr_abc"
    new = [(P + "20240101-121500000.parquet", 7)]
    aws.s3_stub.add_response("put_object", {}, {"Bucket": BUCKET, "Key": base + ".manifest", "ContentType": "application/json",
                                                "Body": job.manifest_document(BUCKET, new).encode()})
    aws.s3_stub.add_response("put_object", {}, {"Bucket": BUCKET, "Key": base + ".files.csv", "ContentType": "text/csv",
                                                "Body": job.files_csv("orders", new).encode()})
    values = {"iam_role": ROLE, "manifest:orders": f"s3://{BUCKET}/{base}.manifest",
              "files:orders": f"s3://{BUCKET}/{base}.files.csv"}
    merge = [s for s in job.split_statements(config.merge_sql["orders"]) if s not in ("BEGIN", "COMMIT")]
    sqls = [job.substitute(s, values) for s in job.load_statements(config.load_sql, "orders")] + merge
    aws.statement("batch_execute_statement", {"Sqls": sqls, "StatementName": "dwctl-load-orders"})

    total, log = run_job(job, rendered[JOB_CONFIG], aws)
    assert total == 1 and log == ["orders: 1 new file(s) merged"]
    assert sqls[0].startswith('COPY "staging"."orders"') and f"FROM 's3://{BUCKET}/{base}.manifest'" in sqls[0]
    assert not any("${" in s for s in sqls) and sqls[-1] == 'DELETE FROM "staging"."orders"'


def test_a_table_without_new_files_runs_no_sql(job, config, rendered):
    aws = Aws()
    expect_create(aws, job, config)
    aws.query(config.watermark_sql, {"table_name": "orders"}, [[{"isNull": True}]])
    aws.query(config.loaded_sql, {"table_name": "orders", "since": P}, [])
    aws.s3_stub.add_response("list_objects_v2", {"IsTruncated": False}, {"Bucket": BUCKET, "Prefix": P, "StartAfter": P})
    total, log = run_job(job, rendered[JOB_CONFIG], aws)
    assert total == 0 and log == ["orders: 0 new file(s) merged"]


def test_a_failed_statement_stops_the_job_with_redshifts_error(job, config, rendered):
    aws = Aws()
    expect_create(aws, job, config)
    aws.query(config.watermark_sql, {"table_name": "orders"}, [[{"isNull": True}]])
    aws.query(config.loaded_sql, {"table_name": "orders", "since": P}, [])
    aws.s3_stub.add_response("list_objects_v2", {"Contents": [{"Key": P + "LOAD00000001.parquet", "Size": 9}],
                                                 "IsTruncated": False}, {"Bucket": BUCKET, "Prefix": P, "StartAfter": P})
    aws.s3_stub.add_response("put_object", {})
    aws.s3_stub.add_response("put_object", {})
    error = "ERROR: Spectrum Scan Error. Parquet column 'total_amount' has type DOUBLE, table has DECIMAL(14,2)"
    aws.rsd_stub.add_response("batch_execute_statement", {"Id": "batch-1"})
    aws.rsd_stub.add_response("describe_statement", {
        "Id": "batch-1", "Status": "FAILED", "Error": error,
        "SubStatements": [{"Id": "batch-1:1", "Status": "FAILED", "QueryString": 'COPY "staging"."orders" ...'},
                          {"Id": "batch-1:2", "Status": "ABORTED", "QueryString": "COPY ..."}]})
    with pytest.raises(job.JobError) as err:
        run_job(job, rendered[JOB_CONFIG], aws)
    message = str(err.value)
    assert "dwctl-load-orders: FAILED" in message and error in message and 'COPY "staging"."orders"' in message


def test_results_are_paged(job):
    aws = Aws()
    aws.rsd_stub.add_response("execute_statement", {"Id": "q"})
    aws.rsd_stub.add_response("describe_statement", {"Id": "q", "Status": "FINISHED"})
    aws.rsd_stub.add_response("get_statement_result", {"Records": [[{"stringValue": "a"}]], "NextToken": "t"},
                              {"Id": "q"})
    aws.rsd_stub.add_response("get_statement_result", {"Records": [[{"isNull": True}], [{"longValue": 3}]]},
                              {"Id": "q", "NextToken": "t"})
    with aws.rsd_stub:
        rows = job.Warehouse(aws.rsd, "shop-prod", "shop", SECRET, sleep=lambda s: None).query("SELECT 1")
    assert rows == [["a"], [None], [3]]


def test_a_statement_that_never_finishes_times_out(job):
    aws = Aws()
    aws.rsd_stub.add_response("batch_execute_statement", {"Id": "b"})
    for _ in range(4):
        aws.rsd_stub.add_response("describe_statement", {"Id": "b", "Status": "STARTED"})
    with aws.rsd_stub, pytest.raises(job.JobError, match="still STARTED"):
        job.Warehouse(aws.rsd, "shop-prod", "shop", SECRET, sleep=lambda s: None, timeout=1).batch(["SELECT 1"], "x")


def test_unknown_table_argument(job, config):
    with pytest.raises(job.JobError, match="unknown tables: nope"):
        job.run(job.parse_args(ARGS[:-1] + ["nope"]), None, None, config)


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
    assert set(job.REQUIRED) <= passed and passed <= set(job.REQUIRED) | {"lookback_minutes", "tables"}
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
