"""Run the shipped load job's main() under the Glue runtime's own Python and botocore, with AWS faked
at the HTTP boundary only.

Usage: python glue_main_runner.py WORLD.json -- <the job's arguments, as Glue passes them>
WORLD.json: {"script": path of the rendered load_job.py, "bucket": {key: local file}, "messages": [SQS
messages], "region": ...}.

Every client the job creates goes through botocore's whole request path: parameter validation
against the runtime's model (plus the models the job ships, loaded the way the job loads them),
serialization, endpoint resolution. Then, at the `before-call` event (where botocore's own Stubber
answers), a small in-memory AWS answers instead of the network: S3 objects from WORLD's files,
the queue's messages, DMS's table statistics (WORLD's "table_statistics"), and a Data API that finishes every statement and returns rows only for the
"is the DDL current" query (so the run merges without a warehouse). Any other network send fails.
Prints the calls made (service, operation, API parameters) as JSON on the last line of stdout.
"""

import datetime
import io
import json
import os
import runpy
import sys

import botocore.endpoint
from botocore.awsrequest import AWSResponse
import botocore.session
from botocore.response import StreamingBody


def main(world_path, job_args):
    with open(world_path, encoding="utf-8") as f:
        world = json.load(f)
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": world.get("region", "eu-west-1"), "AWS_EC2_METADATA_DISABLED": "true"})
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DATA_PATH"):
        os.environ.pop(name, None)
    job = runpy.run_path(world["script"], run_name="dwctl_load_job")
    bucket = {key: open(path, "rb").read() for key, path in world["bucket"].items()}
    messages = list(world.get("messages", []))
    config = job["Config"].from_json(bucket[world["config_key"]].decode("utf-8"))
    statements, calls = {}, []

    def answer(service, operation, params):
        if service == "s3" and operation == "GetObject":
            data = bucket[params["Key"]]
            if params.get("Range", "").startswith("bytes=-"):
                data = data[-int(params["Range"][len("bytes=-"):]):]
            return {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentLength": len(data)}
        if service == "s3" and operation == "PutObject":
            body = params["Body"]
            bucket[params["Key"]] = body if isinstance(body, bytes) else body.read()
            return {"ETag": '"0"'}
        if service == "s3" and operation == "DeleteObject":
            bucket.pop(params["Key"], None)
            return {}
        if service == "s3" and operation == "ListObjectsV2":
            keys = sorted(k for k in bucket if k.startswith(params.get("Prefix", "")))
            return {"Contents": [{"Key": k, "Size": len(bucket[k]), "ETag": '"e%d"' % len(bucket[k])} for k in keys],
                    "IsTruncated": False, "KeyCount": len(keys)}
        if service == "sqs" and operation == "GetQueueAttributes":
            return {"Attributes": {"ApproximateNumberOfMessages": str(len(messages))}}
        if service == "sqs" and operation == "ReceiveMessage":
            got, messages[:] = messages[:params.get("MaxNumberOfMessages", 1)], messages[params.get("MaxNumberOfMessages", 1):]
            return {"Messages": got} if got else {}
        if service == "sqs" and operation in ("DeleteMessageBatch", "ChangeMessageVisibilityBatch"):
            return {"Successful": [{"Id": e["Id"]} for e in params["Entries"]], "Failed": []}
        if service == "sqs" and operation == "ChangeMessageVisibility":
            return {}
        if service == "redshift-data" and operation in ("ExecuteStatement", "BatchExecuteStatement"):
            statement_id = "00000000-0000-0000-0000-%012d" % (len(statements) + 1)
            statements[statement_id] = params.get("Sql") or params.get("Sqls")
            return {"Id": statement_id}
        if service == "redshift-data" and operation == "DescribeStatement":
            return {"Id": params["Id"], "Status": "FINISHED", "HasResultSet": True}
        if service == "redshift-data" and operation == "GetStatementResult":
            current = statements[params["Id"]] == config.queries["ddl_applied"]
            return {"Records": [[{"stringValue": config.ddl_hash}]] if current else [], "TotalNumRows": int(current)}
        if service == "cloudwatch" and operation == "PutMetricData":
            return {}
        if service == "dms" and operation == "DescribeTableStatistics":  # timestamps as botocore parses them
            return {"ReplicationTaskArn": params["ReplicationTaskArn"], "TableStatistics": [
                {k: datetime.datetime.fromisoformat(v) if k.endswith("Time") else v for k, v in entry.items()}
                for entry in world.get("table_statistics", [])]}
        raise AssertionError("the fake AWS has no answer for %s %s" % (service, operation))

    def remember(params, model, context, **_):
        context["dwctl_api_params"] = dict(params)

    def respond(model, params, context, **_):
        service = model.service_model.endpoint_prefix
        api = context["dwctl_api_params"]
        calls.append({"service": service, "operation": model.name,
                      "params": {k: v for k, v in api.items() if k != "Body"}})
        return AWSResponse(None, 200, {}, None), answer(service, model.name, api)

    original_init = botocore.session.Session.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.register("before-parameter-build", remember)
        self.register("before-call", respond)

    def no_network(*_, **__):
        raise AssertionError("the job tried to reach the network")

    botocore.session.Session.__init__ = init
    botocore.endpoint.Endpoint._send = no_network
    try:
        job["main"](job_args)
    finally:
        print(json.dumps({"calls": calls, "bucket": sorted(bucket)}, default=str))


if __name__ == "__main__":
    cut = sys.argv.index("--")
    main(sys.argv[1], sys.argv[cut + 1:])
