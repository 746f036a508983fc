"""`dwctl reload TABLE` and `dwctl run`: exactly the DMS and Glue calls, for the right task, table and arguments.

AWS (DMS, Glue, the Redshift Data API) is answered by botocore's Stubber on real boto3 clients
(tests/operate/stack.py): each request is checked against the API model and against the exact
parameters expected here; an unexpected call fails the test.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from botocore.stub import ANY
from click.testing import CliRunner

from dwctl.cli import cli
from dwctl.operate import aws as operate_aws
from dwctl.operate import reload as reload_module
from dwctl.operate import run as run_module
from tests.conftest import EXAMPLE
from tests.operate.stack import NOW, TASK_ARN, Aws, write_outputs

JOB = "shop-prod-load-merge"
DEFAULTS = {"--job-language": "python", "--landing_bucket": "shop-prod-landing-123456789012",
            "--config_key": "_dwctl/glue_scripts/load_job_config.json", "--manifest_prefix": "raw/_dwctl_manifests",
            "--workgroup": "shop-prod", "--database": "shop",
            "--copy_role_arn": "arn:aws:iam::123456789012:role/shop-prod-redshift", "--discovery": "queue",
            "--queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/shop-prod-landed",
            "--visibility_timeout": "3900", "--metric_namespace": "dwctl/shop-prod"}


@pytest.fixture
def aws(monkeypatch):
    stubbed = Aws()
    monkeypatch.setattr(operate_aws, "client", stubbed.client)
    monkeypatch.setattr(reload_module.time, "sleep", lambda s: None)
    with stubbed:
        yield stubbed
        stubbed.done()


def invoke(tmp_path, *args, input=None, spec=EXAMPLE):
    return CliRunner().invoke(cli, [*args, "-c", str(spec), "--outputs", str(write_outputs(tmp_path))], input=input)


# --- reload -------------------------------------------------------------------------------------------
def task_is(aws, status="running"):
    aws.add("dms", "describe_replication_tasks", {"ReplicationTasks": [{"ReplicationTaskArn": TASK_ARN, "Status": status}]},
            {"Filters": [{"Name": "replication-task-arn", "Values": [TASK_ARN]}], "WithoutSettings": True})


def stats(aws, tables, state, ended, rows=5000, reloaded=False, names=None):
    aws.add("dms", "describe_table_statistics", {"TableStatistics": [
        {"SchemaName": "public", "TableName": t, "TableState": state, "FullLoadRows": rows,
         "FullLoadReloaded": reloaded, "FullLoadStartTime": ended - dt.timedelta(minutes=3), "FullLoadEndTime": ended}
        for t in tables]}, {"ReplicationTaskArn": TASK_ARN, "MaxRecords": 500,
                            "Filters": [{"Name": "table-name", "Values": sorted(names or tables)}]})


def test_reload_asks_then_reloads_exactly_that_table_on_its_task_and_follows_it(aws, tmp_path, monkeypatch):
    task_is(aws)
    before = NOW - dt.timedelta(days=3)
    stats(aws, ["orders"], "Table completed", before, rows=48213)
    aws.add("dms", "reload_tables", {"ReplicationTaskArn": TASK_ARN},
            {"ReplicationTaskArn": TASK_ARN, "TablesToReload": [{"SchemaName": "public", "TableName": "orders"}],
             "ReloadOption": "data-reload"})
    stats(aws, ["orders"], "Table completed", before, rows=48213)  # DMS has not begun yet
    stats(aws, ["orders"], "Table is being reloaded", before, rows=1200)
    stats(aws, ["orders"], "Table completed", NOW, rows=48377, reloaded=True)
    monkeypatch.setattr(reload_module, "interactive", lambda: True)  # as on a terminal: it asks
    result = invoke(tmp_path, "reload", "orders", input="y\n")
    assert result.exit_code == 0, result.output
    assert "DMS task full-load-and-cdc reads public.orders again from the source (its last full load moved " \
           "48,213 rows)" in result.output
    assert "Cost: one full read of the table at the source" in result.output
    assert "Reload orders in prod? [y/N]" in result.output
    assert result.stdout.splitlines() == [
        "reload of orders started on DMS task full-load-and-cdc",
        "public.orders: Table completed, 48,213 rows",
        "public.orders: Table is being reloaded, 1,200 rows",
        "public.orders: Table completed, 48,377 rows (reloaded)",
        "DMS reloaded orders; the load job's next run merges it (now: `dwctl run --env prod --tables orders --follow`)."]


def test_reload_declined_changes_nothing(aws, tmp_path, monkeypatch):
    task_is(aws)
    stats(aws, ["orders"], "Table completed", NOW)
    monkeypatch.setattr(reload_module, "interactive", lambda: True)
    result = invoke(tmp_path, "reload", "orders", input="n\n")
    assert result.exit_code == 1 and "aborted: nothing was reloaded." in result.output


def test_reload_without_a_terminal_needs_yes(aws, tmp_path):
    task_is(aws)
    stats(aws, ["orders"], "Table completed", NOW)
    result = invoke(tmp_path, "reload", "orders")
    assert result.exit_code == 2 and "pass --yes to reload" in result.output


def test_reload_of_a_partitioned_table_reloads_every_partition_ten_per_call(aws, tmp_path, example_text):
    parts = [f"events_2024_{m:02d}" for m in range(1, 13)]
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(example_text.replace("    name: orders\n", "    name: orders\n    partitions: [" +
                                         ", ".join(parts) + "]\n", 1), encoding="utf-8")
    task_is(aws)
    stats(aws, parts, "Table completed", NOW, names=sorted(parts + ["orders"]))
    for chunk in (parts[:10], parts[10:]):
        aws.add("dms", "reload_tables", {"ReplicationTaskArn": TASK_ARN},
                {"ReplicationTaskArn": TASK_ARN, "ReloadOption": "data-reload",
                 "TablesToReload": [{"SchemaName": "public", "TableName": p} for p in chunk]})
    result = invoke(tmp_path, "reload", "orders", "--yes", "--no-wait", spec=spec)
    assert result.exit_code == 0, result.output
    assert "reads public.events_2024_01, public.events_2024_02" in result.output


def test_reload_refuses_a_task_that_is_not_running(aws, tmp_path):
    task_is(aws, "stopped")
    result = invoke(tmp_path, "reload", "orders", "--yes")
    assert result.exit_code == 1 and "DMS task full-load-and-cdc is stopped" in result.output
    assert "DMS reloads tables only of a running task" in result.output


def test_reload_of_an_unknown_table_is_a_usage_error(tmp_path):
    result = invoke(tmp_path, "reload", "nope", "--yes")
    assert result.exit_code == 2 and "no table 'nope' in the spec: one of customers, products" in result.output


def test_a_failed_reload_stops_loudly(aws, tmp_path):
    task_is(aws)
    stats(aws, ["orders"], "Table completed", NOW)
    aws.add("dms", "reload_tables", {"ReplicationTaskArn": TASK_ARN}, None)
    stats(aws, ["orders"], "Table error", NOW)
    result = invoke(tmp_path, "reload", "orders", "--yes")
    assert result.exit_code == 1 and "the reload of orders failed in DMS (public.orders: Table error" in result.output


# --- run ----------------------------------------------------------------------------------------------
def job_defaults(aws):
    aws.add("glue", "get_job", {"Job": {"Name": JOB, "DefaultArguments": DEFAULTS}}, {"JobName": JOB})


def test_run_starts_the_job_with_its_own_arguments(aws, tmp_path):
    job_defaults(aws)
    aws.add("glue", "start_job_run", {"JobRunId": "jr_now"}, {"JobName": JOB, "Arguments": DEFAULTS})
    result = invoke(tmp_path, "run")
    assert result.exit_code == 0, result.output
    assert result.output == f"started {JOB} run jr_now\n"


def test_run_for_some_tables_adds_only_those_arguments(aws, tmp_path):
    job_defaults(aws)
    aws.add("glue", "start_job_run", {"JobRunId": "jr_now"}, {"JobName": JOB, "Arguments": {
        **DEFAULTS, "--tables": "orders,order_items", "--retry_quarantined": "true"}})
    result = invoke(tmp_path, "run", "--tables", "orders,order_items", "--retry-quarantined", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["run_id"] == "jr_now" and doc["arguments"]["--tables"] == "orders,order_items"


def test_run_refuses_a_table_the_spec_lacks(tmp_path):
    result = invoke(tmp_path, "run", "--tables", "orders,nope")
    assert result.exit_code == 2 and "--tables: no table 'nope' in the spec" in result.output


def follow_to(aws, states, error=None):
    started = dt.datetime(2024, 5, 1, 12, 0, 5, tzinfo=dt.timezone.utc)
    for state in states:
        aws.add("glue", "get_job_run", {"JobRun": {"Id": "jr_now", "JobRunState": state, "StartedOn": started,
                                                   "ExecutionTime": 71, **({"ErrorMessage": error} if error else {})}},
                {"JobName": JOB, "RunId": "jr_now"})


def test_run_follow_reports_the_end_and_what_was_merged_or_quarantined(aws, tmp_path, monkeypatch, example_spec):
    monkeypatch.setattr(run_module.time, "sleep", lambda s: None)
    job_defaults(aws)
    aws.add("glue", "start_job_run", {"JobRunId": "jr_now"}, {"JobName": JOB, "Arguments": DEFAULTS})
    follow_to(aws, ["STARTING", "RUNNING", "RUNNING", "SUCCEEDED"])
    queries = run_module.outcome_queries(example_spec, "2024-05-01 12:00:05")
    aws.query(queries["merged"], [["order_items", 3], ["orders", 2]])
    aws.query(queries["quarantined"], [["orders", 1]])
    result = invoke(tmp_path, "run", "--follow")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"started {JOB} run jr_now", "jr_now: STARTING", "jr_now: RUNNING", "jr_now: SUCCEEDED",
        "merged: order_items 3 file(s), orders 2 file(s)",
        "quarantined: orders 1 file(s) (`dwctl status` says what to do)"]
    assert "CAST('2024-05-01 12:00:05' AS TIMESTAMP)" in queries["merged"]


def test_run_follow_exits_1_when_the_run_fails(aws, tmp_path, monkeypatch, example_spec):
    monkeypatch.setattr(run_module.time, "sleep", lambda s: None)
    job_defaults(aws)
    aws.add("glue", "start_job_run", {"JobRunId": "jr_now"}, {"JobName": JOB, "Arguments": DEFAULTS})
    follow_to(aws, ["RUNNING", "FAILED"], error="JobError: missing job arguments: --workgroup")
    queries = run_module.outcome_queries(example_spec, "2024-05-01 12:00:05")
    aws.query(queries["merged"], [])
    aws.query(queries["quarantined"], [])
    result = invoke(tmp_path, "run", "--follow")
    assert result.exit_code == 1
    assert "the run ended FAILED: JobError: missing job arguments: --workgroup" in result.output


def test_aws_errors_are_one_line_without_a_traceback(aws, tmp_path):
    aws.stubs["glue"].add_client_error("get_job", service_error_code="AccessDeniedException",
                                       service_message="User is not authorized to perform: glue:GetJob",
                                       expected_params={"JobName": ANY})
    result = invoke(tmp_path, "run")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "reading the load job shop-prod-load-merge: An error occurred (AccessDeniedException)" in result.output


def test_following_stops_when_dms_never_reports_the_table(aws, tmp_path):
    """DescribeTableStatistics may name the table otherwise than the spec (the guide does not say): no hang."""
    task_is(aws)
    stats(aws, [], "Table completed", NOW, names=["orders"])
    aws.add("dms", "reload_tables", {"ReplicationTaskArn": TASK_ARN}, None)
    for _ in range(reload_module.SILENT_POLLS):
        stats(aws, [], "Table completed", NOW, names=["orders"])
    result = invoke(tmp_path, "reload", "orders", "--yes")
    assert result.exit_code == 0, result.output
    assert "DMS reports no table statistics for orders: follow it with `dwctl status --env prod --watch`." in result.output
