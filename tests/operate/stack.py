"""A deployed example stack as the day-two commands see it: its Terraform outputs (a file, as `dwctl output
--format json` writes it) and AWS answered by botocore's Stubber. Every client is a real boto3 client, so
each request is checked against the service's API model; nothing leaves the process."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import boto3
from botocore.stub import ANY, Stubber

from dwctl.operate import health

REGION = "eu-west-1"
NOW = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
TASK = "full-load-and-cdc"
TASK_ARN = "arn:aws:dms:eu-west-1:123456789012:task:K55IUCGBASJS5VHZJIINA45FII"
INSTANCE_ARN = "arn:aws:dms:eu-west-1:123456789012:rep:T3OM7OUB5NM2LCVZF7JPGJRNUE"
SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:redshift!shop-prod-admin-AbCdEf"
QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/shop-prod-landed"
TABLES = ["customers", "products", "orders", "order_items"]
OUTPUTS = {
    "dms_replication_instance_arn": INSTANCE_ARN,
    "dms_replication_instance_id": "shop-prod-dms",
    "dms_replication_task_arns": {TASK: TASK_ARN},
    "loader_job_name": "shop-prod-load-merge",
    "redshift_workgroup_name": "shop-prod",
    "redshift_database_name": "shop",
    "redshift_admin_password_secret_arn": SECRET,
    "loader_queue_url": QUEUE_URL,
    "loader_queue_name": "shop-prod-landed",
    "metric_namespace": "dwctl/shop-prod",
    "alarm_thresholds": {"cdc_latency_seconds": 900, "freshness_minutes": 60, "table_freshness_minutes": {}},
}


def write_outputs(directory: Path, **changes) -> Path:
    path = directory / "outputs.json"
    doc = {name: {"sensitive": False, "type": "string", "value": value} for name, value in {**OUTPUTS, **changes}.items()}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


class Aws:
    """One stubbed client per service; `client(service, region)` hands them out (monkeypatched in)."""

    SERVICES = ("dms", "cloudwatch", "glue", "redshift-data", "sqs")

    def __init__(self):
        creds = dict(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        self.clients = {s: boto3.client(s, **creds) for s in self.SERVICES}
        self.stubs = {s: Stubber(c) for s, c in self.clients.items()}
        self.n = 0

    def client(self, service: str, region: str):
        assert region == REGION
        return self.clients[service]

    def __enter__(self):
        for stub in self.stubs.values():
            stub.activate()
        return self

    def __exit__(self, *exc):
        for stub in self.stubs.values():
            stub.deactivate()

    def done(self):
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()

    def add(self, service: str, method: str, response: dict, params: dict | None = None):
        self.stubs[service].add_response(method, response, params)

    # -- the Redshift Data API: one statement, run to its end, with rows --
    def query(self, sql: str, rows: list[list], error: str | None = None):
        self.n += 1
        sid = f"00000000-0000-0000-0000-{self.n:012d}"
        self.add("redshift-data", "execute_statement", {"Id": sid},
                 {"WorkgroupName": "shop-prod", "Database": "shop", "SecretArn": SECRET, "Sql": sql})
        status = {"Id": sid, "Status": "FAILED" if error else "FINISHED", **({"Error": error} if error else {})}
        self.add("redshift-data", "describe_statement", status, {"Id": sid})
        if not error:
            records = [[{"isNull": True} if v is None else {"longValue": v} if isinstance(v, int) else
                        {"stringValue": v} for v in row] for row in rows]
            self.add("redshift-data", "get_statement_result", {"Records": records}, {"Id": sid})


def metric(aws: Aws, namespace: str, name: str, dimensions: list[dict], value: float | None):
    points = [] if value is None else [
        {"Timestamp": NOW - dt.timedelta(minutes=3), "Maximum": value / 2, "Unit": "Seconds"},
        {"Timestamp": NOW - dt.timedelta(minutes=1), "Maximum": value, "Unit": "Seconds"}]
    aws.add("cloudwatch", "get_metric_statistics", {"Label": name, "Datapoints": points},
            {"Namespace": namespace, "MetricName": name, "StartTime": ANY, "EndTime": ANY, "Period": 60,
             "Statistics": ["Maximum"], "Dimensions": dimensions})


def statistics(state: str = "Table completed", reloaded: bool = False, rows: int = 1000,
               ended: dt.datetime = NOW - dt.timedelta(days=2)) -> list[dict]:
    return [{"SchemaName": "public", "TableName": t, "TableState": state, "FullLoadRows": rows, "Inserts": 12,
             "Updates": 30, "Deletes": 1, "FullLoadReloaded": reloaded, "FullLoadStartTime": ended - dt.timedelta(minutes=5),
             "FullLoadEndTime": ended} for t in TABLES]


def expect_status(aws: Aws, spec, *, instance="available", task="running", failure=None, stop_reason=None,
                  latency=(4.0, 11.0), table_state="Table completed", runs=None, newest=None, quarantine=(),
                  queue_age=45.0, waiting=3, warehouse_error=None, queue=True):
    """The calls `dwctl status` makes, in order, answered for a stack in the given state (healthy by default)."""
    aws.add("dms", "describe_replication_instances", {"ReplicationInstances": [
        {"ReplicationInstanceIdentifier": "shop-prod-dms", "ReplicationInstanceStatus": instance}]},
        {"Filters": [{"Name": "replication-instance-arn", "Values": [INSTANCE_ARN]}]})
    described = {"ReplicationTaskIdentifier": f"shop-prod-{TASK}", "ReplicationTaskArn": TASK_ARN, "Status": task,
                 **({"LastFailureMessage": failure} if failure else {}), **({"StopReason": stop_reason} if stop_reason else {})}
    aws.add("dms", "describe_replication_tasks", {"ReplicationTasks": [described]},
            {"Filters": [{"Name": "replication-task-arn", "Values": [TASK_ARN]}], "WithoutSettings": True})
    dims = [{"Name": "ReplicationInstanceIdentifier", "Value": "shop-prod-dms"},
            {"Name": "ReplicationTaskIdentifier", "Value": "K55IUCGBASJS5VHZJIINA45FII"}]
    metric(aws, "AWS/DMS", "CDCLatencySource", dims, latency[0])
    metric(aws, "AWS/DMS", "CDCLatencyTarget", dims, latency[1])
    aws.add("dms", "describe_table_statistics", {"TableStatistics": statistics(table_state)},
            {"ReplicationTaskArn": TASK_ARN, "MaxRecords": 500})
    if runs is None:
        runs = [{"Id": "jr_2", "JobRunState": "SUCCEEDED", "StartedOn": NOW - dt.timedelta(minutes=14),
                 "CompletedOn": NOW - dt.timedelta(minutes=13), "ExecutionTime": 62},
                {"Id": "jr_1", "JobRunState": "SUCCEEDED", "StartedOn": NOW - dt.timedelta(minutes=29),
                 "CompletedOn": NOW - dt.timedelta(minutes=28), "ExecutionTime": 58}]
    aws.add("glue", "get_job_runs", {"JobRuns": runs}, {"JobName": "shop-prod-load-merge", "MaxResults": 5})
    queries = health.warehouse_queries(spec)
    if warehouse_error:
        aws.query(queries["freshness"], [], error=warehouse_error)
    else:
        fresh = NOW - dt.timedelta(minutes=6)
        newest = {t: fresh.strftime("%Y-%m-%d %H:%M:%S.123456") for t in TABLES} | (newest or {})
        aws.query(queries["freshness"], [[t, at] for t, at in sorted(newest.items()) if at])
        aws.query(queries["quarantine"], [list(q) for q in quarantine])
        aws.query(queries["rows"][0], [[t, 1000 + i] for i, t in enumerate(TABLES)])
    if not queue:
        return
    aws.add("sqs", "get_queue_attributes", {"Attributes": {"ApproximateNumberOfMessages": str(waiting),
                                                           "ApproximateNumberOfMessagesNotVisible": "0"}},
            {"QueueUrl": QUEUE_URL, "AttributeNames": ["ApproximateNumberOfMessages",
                                                       "ApproximateNumberOfMessagesNotVisible"]})
    metric(aws, "AWS/SQS", "ApproximateAgeOfOldestMessage", [{"Name": "QueueName", "Value": "shop-prod-landed"}],
           queue_age)
