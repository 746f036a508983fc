"""Every AWS call the load job makes, recorded from its own code, for the IAM tests.

The job's main() runs with the arguments Terraform gives it (the applied aws_glue_job's
default_arguments, plus Glue's own), under botocore with an event hook on `before-call`: the hook
answers each call in place of AWS, so botocore sends nothing (the AWS API is the one boundary stood
in for), and keeps the operation, its parameters and the HTTP headers botocore serialized for it:
what the service, and IAM, would see. The answers are a landing bucket holding one new CDC file per
table (queue discovery) or one per table (listing discovery), and a warehouse whose DDL is current.
"""

from __future__ import annotations

import io
import itertools
import json
from dataclasses import dataclass
from urllib.parse import quote_plus

import boto3
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody

from dwctl.warehouse import load_job


@dataclass(frozen=True)
class Call:
    service: str  # the botocore service name: s3, sqs, redshift-data
    operation: str
    params: dict
    headers: dict


def footer(config: load_job.Config, table: str) -> bytes:
    """An empty Parquet file with the table's landed columns (its footer is what the job reads)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def arrow(staging):
        if staging.startswith("DECIMAL("):
            precision, scale = staging[8:-1].split(",")
            return pa.decimal128(int(precision), int(scale))
        return {"BIGINT": pa.int64(), "INTEGER": pa.int32(), "SMALLINT": pa.int16(), "BOOLEAN": pa.bool_(),
                "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"), "TIMESTAMP": pa.timestamp("us")}.get(staging, pa.string())

    schema = pa.schema([pa.field(name, arrow(staging)) for name, staging in config.landed[table]])
    out = io.BytesIO()
    pq.write_table(schema.empty_table(), out)
    return out.getvalue()


class FakeAws:
    """The answers AWS would give the job, keyed by operation; records every call."""

    def __init__(self, config_text: str, bucket: str, config_key: str, objects: dict[str, tuple] | None = None):
        self.config = load_job.Config.from_json(config_text)
        self.config_text, self.bucket, self.config_key = config_text, bucket, config_key
        # key -> (bytes, encryption): more objects in the bucket (the smoke canary, as Terraform uploaded it) and
        # what the job put; GetObject answers an SSE-KMS object's ServerSideEncryption and SSEKMSKeyId (S3 API
        # Reference, GetObject: response elements), which the smoke run's copies reuse
        self.objects = dict(objects or {})
        self.calls: list[Call] = []
        self.landed = {table: f"{prefix}20240101-000000{i:03d}.parquet"
                       for i, (table, prefix) in enumerate(sorted(self.config.tables.items()))}
        self.bodies: dict[str, str] = {}  # key -> what the job put
        self.sql: dict[str, str] = {}
        self.ids = itertools.count(1)
        self.received = False

    def body(self, data: bytes) -> StreamingBody:
        return StreamingBody(io.BytesIO(data), len(data))

    def answer(self, service: str, operation: str, params: dict) -> dict:
        if (service, operation) == ("s3", "GetObject"):
            if params["Key"] == self.config_key:
                return {"Body": self.body(self.config_text.encode())}
            if params["Key"] in self.objects:
                data, encryption = self.objects[params["Key"]]
                return {"Body": self.body(data), **encryption}
            table = next(t for t, key in self.landed.items() if key == params["Key"])
            return {"Body": self.body(footer(self.config, table))}
        if (service, operation) == ("s3", "PutObject"):
            body = params["Body"]
            body = body.getvalue() if hasattr(body, "getvalue") else body
            self.objects[params["Key"]] = (body if isinstance(body, bytes) else body.encode(),
                                           {k: params[k] for k in ("ServerSideEncryption", "SSEKMSKeyId") if k in params})
            self.bodies[params["Key"]] = body.decode(errors="replace") if isinstance(body, bytes) else body
            return {"ETag": '"put"'}
        if (service, operation) == ("s3", "DeleteObject"):
            self.objects.pop(params["Key"], None)
            return {}
        if (service, operation) == ("s3", "ListObjectsV2"):
            found = [{"Key": k, "Size": 100, "ETag": '"e1"'} for k in self.landed.values() if k.startswith(params["Prefix"])]
            return {"Contents": found, "KeyCount": len(found), "IsTruncated": False}
        if (service, operation) == ("sqs", "GetQueueAttributes"):
            return {"Attributes": {"ApproximateNumberOfMessages": "0" if self.received else str(len(self.landed))}}
        if (service, operation) == ("sqs", "ReceiveMessage"):
            if self.received:
                return {"Messages": []}
            self.received = True
            return {"Messages": [self.event(key) for key in self.landed.values()]}
        if (service, operation) == ("sqs", "DeleteMessageBatch"):
            return {"Successful": [{"Id": e["Id"]} for e in params["Entries"]], "Failed": []}
        if service == "redshift-data":
            return self.data_api(operation, params)
        if (service, operation) == ("dms", "DescribeTableStatistics"):
            return {"ReplicationTaskArn": params["ReplicationTaskArn"], "TableStatistics": []}
        if (service, operation) == ("monitoring", "PutMetricData"):
            return {}
        raise AssertionError(f"the job called {service} {operation}, which this stand-in does not answer")

    def event(self, key: str) -> dict:
        body = {"source": "aws.s3", "detail-type": "Object Created",
                "detail": {"bucket": {"name": self.bucket}, "object": {"key": quote_plus(key, safe="/"), "size": 100, "etag": "e1"}}}
        return {"MessageId": key, "ReceiptHandle": "rh-" + key, "Body": json.dumps(body)}

    def data_api(self, operation: str, params: dict) -> dict:
        if operation in ("ExecuteStatement", "BatchExecuteStatement"):
            statement_id = f"00000000-0000-0000-0000-{next(self.ids):012d}"
            self.sql[statement_id] = params.get("Sql", "")
            return {"Id": statement_id}
        if operation == "DescribeStatement":
            return {"Id": params["Id"], "Status": "FINISHED"}
        if operation == "GetStatementResult":
            sql = self.sql[params["Id"]]
            if sql == self.config.queries["ddl_applied"]:  # the DDL is current: no migration
                return {"Records": [[{"stringValue": self.config.ddl_hash}]]}
            if sql == "SELECT 1, CURRENT_USER":  # the smoke run's Data API check
                return {"Records": [[{"longValue": 1}, {"stringValue": "IAMR:loader"}]]}
            if sql.startswith("SELECT COUNT(*), MAX(CAST(\"c_timestamp\""):  # the smoke COPY's read-back: its 2 rows
                return {"Records": [[{"longValue": 2}, {"stringValue": "2024-01-01 00:00:00"},
                                     {"stringValue": "2024-01-01 00:00:00+00"}]]}
            if sql == "SELECT CAST(GETDATE() AS VARCHAR(40))":  # a smoke fact
                return {"Records": [[{"stringValue": "2024-01-01 00:00:00.123456"}]]}
            if sql == self.config.queries["load_history"] or sql.startswith(  # nothing merged into it yet (the
                    self.config.queries["load_history"].split(" FROM ")[0]):  # smoke run's: in its scratch schemas)
                return {"Records": [[{"isNull": True}] * 5]}
            return {"Records": []}
        raise AssertionError(f"the job called redshift-data {operation}, which this stand-in does not answer")


def record(config_text: str, job_arguments: dict[str, str], region: str, monkeypatch, *extra: str,
           objects: dict[str, tuple] | None = None) -> FakeAws:
    """Run the job's main() as Glue would (its default arguments plus Glue's own) and record its calls."""
    aws = FakeAws(config_text, job_arguments["--landing_bucket"], job_arguments["--config_key"], objects)
    for key, value in {"AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKEFAKE", "AWS_SECRET_ACCESS_KEY": "fake",
                       "AWS_DEFAULT_REGION": region, "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(key, value)
    session = boto3.session.Session(region_name=region)

    def hook(model, params, **kwargs):
        service = model.service_model.service_name
        api_params = kwargs["context"].get("dwctl_api_params", {})
        aws.calls.append(Call(service, model.name, api_params, dict(params.get("headers", {}))))
        return AWSResponse(params.get("url"), 200, {}, None), aws.answer(service, model.name, api_params)

    def keep_params(params, context, **kwargs):
        context["dwctl_api_params"] = dict(params)

    session.events.register("before-parameter-build", keep_params)
    session.events.register("before-call", hook)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    argv = ["--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_0123456789abcdef", "--job-bookmark-option", "job-bookmark-disable"]
    for key, value in job_arguments.items():
        argv += [key, value]
    load_job.main(argv + list(extra))
    return aws
