"""`dwctl smoke --env ENV`, through the CLI, at its two boundaries: Terraform is a stand-in at the
process boundary that holds the applied stack's outputs (tests.support.standins), and AWS (DMS,
Glue, S3, Lake Formation) is answered by botocore's Stubber: real boto3 clients validate every
request against the service model, the Stubber refuses any call it was not told to expect, and
nothing leaves the process. The job's own side of the smoke run is tests/warehouse/test_smoke_job.py.
"""

from __future__ import annotations

import io
import json
import shutil

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from click.testing import CliRunner

from dwctl.cli import cli
from dwctl.deploy import smoke
from dwctl.warehouse import load_job
from tests.conftest import EXAMPLE
from tests.support.standins import applied_standin

REGION = "eu-west-1"
ACCOUNT = "123456789012"
INSTANCE = f"arn:aws:dms:{REGION}:{ACCOUNT}:rep:SHOPPROD"
SOURCE = f"arn:aws:dms:{REGION}:{ACCOUNT}:endpoint:SOURCE"
TARGET = f"arn:aws:dms:{REGION}:{ACCOUNT}:endpoint:TARGET"
TASK = f"arn:aws:dms:{REGION}:{ACCOUNT}:task:MAIN"
JOB = "shop-prod-load-merge"
BUCKET = f"shop-prod-landing-{ACCOUNT}"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:redshift!shop-prod-admin-AbCdEf"
SMOKE_ID = "20240101T000000-abc123"
REPORT_KEY = f"raw/_dwctl_manifests/_dwctl-smoke/{SMOKE_ID}/report.json"
OUTPUTS = {"dms_replication_instance_arn": INSTANCE, "dms_source_endpoint_arn": SOURCE, "dms_target_endpoint_arn": TARGET,
           "dms_replication_task_arns": {"main": TASK}, "dms_security_group_id": "sg-0123456789abcdef0",
           "dms_log_group_name": "dms-tasks-shop-prod", "loader_job_name": JOB,
           "redshift_admin_password_secret_arn": SECRET}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """The example rendered and initialised against a Terraform stand-in that holds the applied outputs."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "config" / "pipeline.yaml")
    assert CliRunner().invoke(cli, ["render"]).exit_code == 0
    tf = applied_standin(tmp_path / "bin", OUTPUTS)
    done = CliRunner().invoke(cli, ["init", "--terraform-bin", str(tf)])
    assert done.exit_code == 0, done.output
    monkeypatch.setattr(smoke, "new_smoke_id", lambda: SMOKE_ID)
    monkeypatch.setattr(smoke, "sleep", lambda seconds: None)
    return tf


class Aws:
    """Stubbed clients of the command (dms, glue, s3, lakeformation), in the order the command calls them."""

    def __init__(self, monkeypatch):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        self.clients = {name: boto3.client(name, region_name=REGION) for name in ("dms", "glue", "s3", "lakeformation")}
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}
        monkeypatch.setattr(smoke, "clients", lambda region: self.clients if region == REGION else None)

    def __getattr__(self, name):
        return self.stubs[name]

    def start(self, busy: int = 0, tables: str = ""):
        for _ in range(busy):
            self.glue.add_client_error("start_job_run", "ConcurrentRunsExceededException", "Concurrent runs exceeded")
        self.glue.add_response("start_job_run", {"JobRunId": "jr_1"}, {"JobName": JOB, "Arguments": {
            "--mode": "smoke", "--smoke_id": SMOKE_ID, **({"--tables": tables} if tables else {})}})

    def endpoint(self, arn: str, status: str = "successful", message: str | None = None):
        self.dms.add_response("test_connection", {"Connection": {"Status": "testing"}},
                              {"ReplicationInstanceArn": INSTANCE, "EndpointArn": arn})
        filters = {"Filters": [{"Name": "endpoint-arn", "Values": [arn]},
                               {"Name": "replication-instance-arn", "Values": [INSTANCE]}]}
        self.dms.add_response("describe_connections", {"Connections": [{"Status": "testing"}]}, filters)
        self.dms.add_response("describe_connections", {"Connections": [
            {"Status": status, **({"LastFailureMessage": message} if message else {})}]}, filters)

    def run(self, state: str = "SUCCEEDED", report: list | None = None, error: str | None = None):
        self.glue.add_response("get_job_run", {"JobRun": {"Id": "jr_1", "JobRunState": "RUNNING"}},
                               {"JobName": JOB, "RunId": "jr_1"})
        self.glue.add_response("get_job_run", {"JobRun": {"Id": "jr_1", "JobRunState": state, "ExecutionTime": 95,
                                                          **({"ErrorMessage": error} if error else {})}},
                               {"JobName": JOB, "RunId": "jr_1"})
        self.glue.add_response("get_job", {"Job": {"Name": JOB, "DefaultArguments": {
            "--landing_bucket": BUCKET, "--manifest_prefix": "raw/_dwctl_manifests"}}}, {"JobName": JOB})
        if report is None:
            self.s3.add_client_error("get_object", "NoSuchKey", "The specified key does not exist.", 404,
                                     expected_params={"Bucket": BUCKET, "Key": REPORT_KEY})
            return
        data = json.dumps({"smoke_id": SMOKE_ID, "checks": report}).encode()
        self.s3.add_response("get_object", {"Body": StreamingBody(io.BytesIO(data), len(data))},
                             {"Bucket": BUCKET, "Key": REPORT_KEY})
        self.s3.add_response("delete_object", {}, {"Bucket": BUCKET, "Key": REPORT_KEY})

    def grants(self, table_perms: dict[str, list[str]] | None = None):
        iam = {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}
        resources = [{"Database": {"Name": "shop_raw"}}] + [
            {"Table": {"DatabaseName": "shop_raw", "Name": t}} for t in ("customers", "products", "orders", "order_items")]
        for resource in resources:
            perms = (table_perms or {}).get(resource.get("Table", {}).get("Name"), [])
            entries = [{"Principal": iam, "Resource": resource, "Permissions": perms}] if perms else []
            self.lakeformation.add_response("list_permissions", {"PrincipalResourcePermissions": entries},
                                            {"Principal": iam, "Resource": resource})

    def tasks(self, status: str = "running", **extra):
        self.dms.add_response("describe_replication_tasks", {"ReplicationTasks": [
            {"ReplicationTaskArn": TASK, "ReplicationTaskIdentifier": "shop-prod-main", "Status": status, **extra}]},
            {"Filters": [{"Name": "replication-task-arn", "Values": [TASK]}], "WithoutSettings": True})

    def healthy(self, **changes):
        """Every step as a healthy stack answers, except the ones `changes` replaces."""
        self.start(tables=changes.get("tables_arg", ""))
        self.endpoint(SOURCE, *changes.get("source", ()))
        self.endpoint(TARGET)
        self.run(**changes.get("run", {"report": job_report()}))
        self.grants(changes.get("grants"))
        self.tasks(**changes.get("tasks", {}))

    def invoke(self, argv: list[str], color: bool = False):
        for stub in self.stubs.values():
            stub.activate()
        try:
            result = CliRunner().invoke(cli, argv, color=color)
            for stub in self.stubs.values():
                stub.assert_no_pending_responses()
        finally:
            for stub in self.stubs.values():
                stub.deactivate()
        return result


def job_report(failing: dict[str, str] | None = None) -> list[dict]:
    """The rows a smoke run writes (load_job.SmokeReport), passing except `failing` {check: detail}."""
    report = load_job.SmokeReport(log=lambda line: None)
    for check in ("data api", "list", "canary", "footer", "manifest", "queue", "scratch schemas", "copy",
                  "warehouse: create tables", "warehouse: customers", "fact: isolation"):
        if check in (failing or {}):
            report.add(check, "fail", failing[check])
        else:
            report.add(check, "pass", "ok")
    return report.rows


def run(aws: Aws, tf, *args, color: bool = False, root: tuple = ()):
    return aws.invoke([*root, "smoke", "--terraform-bin", str(tf), *args], color=color)


def test_a_healthy_stack_passes_every_step_with_exit_0(project, monkeypatch):
    aws = Aws(monkeypatch)
    aws.healthy()
    result = run(aws, project)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for line in ("pass    dms source endpoint", "pass    dms target endpoint", "pass    load job smoke run",
                 "pass    job: warehouse: customers", "pass    lake formation grants", "pass    dms task main"):
        assert line in out, out
    assert "run jr_1: SUCCEEDED after 95 s" in out
    assert out.rstrip().endswith("smoke prod: 16 pass, 0 warn, 0 fail")
    assert "\x1b[" not in out and "Traceback" not in result.output
    assert "starting the load job shop-prod-load-merge with --mode smoke" in result.stderr
    assert SECRET not in result.output  # outputs are read, never printed


def fails_with(result, check: str, fix: str):
    assert result.exit_code == 1, result.output
    assert f"FAIL    {check}" in result.stdout, result.stdout
    assert f"  fail {check}: {fix}" in result.stdout
    assert "Traceback" not in result.output


def test_a_source_the_instance_cannot_reach_fails_with_the_network_fix(project, monkeypatch):
    aws = Aws(monkeypatch)
    aws.healthy(source=("failed", "Can't connect to server on port 5432"))
    result = run(aws, project)
    fails_with(result, "dms source endpoint", smoke.FIX["source"].format(**OUTPUTS))
    assert "failed: Can't connect to server on port 5432" in result.stdout
    assert "sg-0123456789abcdef0" in result.stdout


def test_a_failing_job_check_comes_back_from_the_runs_report_with_its_fix(project, monkeypatch):
    aws = Aws(monkeypatch)
    refused = "first full load (LOAD00000001.parquet): FAILED: This type of correlated subquery pattern is not supported yet"
    aws.healthy(run={"state": "FAILED", "report": job_report({"warehouse: customers": refused}),
                     "error": "Command failed with exit code 1"})
    result = run(aws, project)
    fails_with(result, "job: warehouse: customers", load_job.SMOKE_FIXES["warehouse"])
    assert refused in result.stdout and "FAIL    load job smoke run" in result.stdout


def test_a_run_that_died_before_its_report_fails_with_its_error_and_where_to_read_more(project, monkeypatch):
    aws = Aws(monkeypatch)
    aws.healthy(run={"state": "FAILED", "report": None,
                     "error": 'ParamValidationError: Unknown parameter in input: "WorkgroupName"'})
    result = run(aws, project)
    fails_with(result, "load job smoke run", smoke.FIX["job"].format(run="jr_1"))
    assert 'Unknown parameter in input: "WorkgroupName"' in result.stdout


def test_iam_allowed_principals_on_the_catalog_fails_with_check_grants_fix(project, monkeypatch):
    from dwctl.deploy import check_grants

    aws = Aws(monkeypatch)
    aws.healthy(grants={"orders": ["SELECT"]})
    result = run(aws, project)
    fails_with(result, "lake formation grants", check_grants.REVOKE)
    assert "table shop_raw.orders: IAM_ALLOWED_PRINCIPALS has SELECT" in result.stdout


@pytest.mark.parametrize("status, extra, fix", [
    ("stopped", {"StopReason": "Stop Reason NORMAL"}, "start"),
    ("failed", {"LastFailureMessage": "Error in the source: logical replication is off"}, "failed")])
def test_a_task_not_running_fails_with_how_to_start_or_resume_it(project, monkeypatch, status, extra, fix):
    aws = Aws(monkeypatch)
    aws.healthy(tasks={"status": status, **extra})
    result = run(aws, project)
    fails_with(result, "dms task main", smoke.FIX[fix].format(arn=TASK, **OUTPUTS))
    assert next(iter(extra.values())) in result.stdout


def test_a_busy_job_is_waited_for(project, monkeypatch):
    aws = Aws(monkeypatch)
    aws.start(busy=2)  # a scheduled run holds the job (MaxConcurrentRuns 1) for two polls
    aws.endpoint(SOURCE)
    aws.endpoint(TARGET)
    aws.run(report=job_report())
    aws.grants()
    aws.tasks()
    assert run(aws, project).exit_code == 0


def test_json_is_one_document_with_every_check(project, monkeypatch):
    aws = Aws(monkeypatch)
    aws.healthy(tasks={"status": "stopped"})
    result = run(aws, project, "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert set(doc) == {"env", "smoke_id", "ok", "counts", "checks"}
    assert (doc["env"], doc["smoke_id"], doc["ok"]) == ("prod", SMOKE_ID, False)
    assert doc["counts"] == {"pass": 15, "warn": 0, "fail": 1}
    assert all(set(c) == {"name", "status", "detail", "fix"} for c in doc["checks"])
    failed = [c for c in doc["checks"] if c["status"] == "fail"]
    assert [c["name"] for c in failed] == ["dms task main"] and failed[0]["fix"].startswith("Start it:")


def test_colour_only_on_a_terminal(project, monkeypatch):
    aws = Aws(monkeypatch)
    aws.healthy()
    assert "\x1b[32mpass" in run(aws, project, color=True).stdout  # as on a terminal
    aws = Aws(monkeypatch)
    aws.healthy()
    plain = run(aws, project, color=True, root=("--no-color",))
    assert plain.exit_code == 0 and "\x1b[" not in plain.stdout


def test_a_stack_not_applied_exits_1_naming_apply(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "config" / "pipeline.yaml")
    assert CliRunner().invoke(cli, ["render"]).exit_code == 0
    tf = applied_standin(tmp_path / "bin", {})
    assert CliRunner().invoke(cli, ["init", "--terraform-bin", str(tf)]).exit_code == 0
    result = CliRunner().invoke(cli, ["smoke", "--format", "json", "--terraform-bin", str(tf)])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and "run `dwctl apply --env prod` first" in doc["error"]
    unknown = CliRunner().invoke(cli, ["smoke", "--env", "qa", "--terraform-bin", str(tf)])
    assert unknown.exit_code == 2 and "unknown environment 'qa'" in unknown.output


def test_a_denied_aws_call_of_the_caller_is_a_failing_row_not_a_traceback(project, monkeypatch):
    aws = Aws(monkeypatch)
    aws.start()
    aws.endpoint(SOURCE)
    aws.endpoint(TARGET)
    aws.run(report=job_report())
    aws.grants()
    aws.dms.add_client_error("describe_replication_tasks", "AccessDeniedFault", "not authorized to perform: "
                             "dms:DescribeReplicationTasks")
    result = run(aws, project)
    fails_with(result, "dms tasks", smoke.CALLER.format(what="describe DMS tasks"))
    assert "AccessDeniedFault" in result.stdout


def test_tables_limits_the_warehouse_step_and_must_name_spec_tables(project, monkeypatch):
    aws = Aws(monkeypatch)
    aws.healthy(tables_arg="orders,customers")
    assert run(aws, project, "--tables", "orders,customers").exit_code == 0
    wrong = CliRunner().invoke(cli, ["smoke", "--terraform-bin", str(project), "--tables", "orders,nope"])
    assert wrong.exit_code == 2 and "--tables: nope not in the spec's tables" in wrong.output
