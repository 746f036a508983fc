"""The load job against its real runtime: Glue Python shell 3.9 with the boto3/botocore Glue preinstalls.

AWS Glue Developer Guide, add-job-python.html, "Supported libraries for Python shell jobs": Python 3.9
has boto3 1.21.21 / botocore 1.24.21 (library set analytics) or botocore 1.23.5 (none); glue_version does
not change them. `make setup-test` builds both under .venv-glue/ (tests/support/glue_runtime.py, which says
how Python 3.9 is found). Where they are missing the tests fail under CI=true and skip, with the reason,
elsewhere.

What decides here is botocore's own service model at the runtime's version, not dwctl's code:
- every AWS call in the job's source (found by reading the code, tests/support/glue_calls.py) must be an
  operation, with parameters, that the runtime's botocore knows, with the models the job ships loaded
  the way the job loads them;
- the shipped job's main() runs under that Python and botocore with the arguments the rendered Terraform
  gives the job plus Glue's own, through botocore's whole request path (validation, serialization,
  endpoint), AWS being faked only where the request would leave for the network (tests/support/glue_main_runner.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import hcl2
import pytest

from dwctl.render.engine import BOTOCORE_DATA_PATH, table_view
from tests.conftest import ROOT
from tests.support import dms_files, glue_runtime

SUPPORT = ROOT / "tests" / "support"
BUCKET = "shop-prod-landing-123456789012"
QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/shop-prod-landed"
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/0b4f7f64-9c55-4a40-9d1b-2f0e2bb1b2a1"
# Values for the references in the rendered job's default_arguments (a real apply fills them in).
REFERENCES = {"--landing_bucket": BUCKET, "--queue_url": QUEUE, "--workgroup": "shop-prod", "--database": "shop",
              "--copy_role_arn": "arn:aws:iam::123456789012:role/shop-prod-redshift", "--kms_key_arn": KEY_ARN,
              "--dms_task_arns": "arn:aws:dms:eu-west-1:123456789012:task:SHOPPRODFULLLOADANDCDC"}
# What Glue itself adds to a run's arguments (the job ignores them).
GLUE_OWN = ["--JOB_ID", "j_0123456789abcdef", "--JOB_RUN_ID", "jr_0123456789abcdef", "--JOB_NAME", "shop-prod-load-merge",
            "--job-bookmark-option", "job-bookmark-disable", "--TempDir", "s3://aws-glue-temporary-123456789012-eu-west-1/admin"]


@pytest.fixture(scope="module", params=sorted(glue_runtime.RUNTIMES))
def runtime(request) -> Path:
    python = glue_runtime.python_of(request.param)
    if python is None:
        reason = f"Glue runtime ({request.param}): {glue_runtime.missing_reason()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI must run the runtime tests)")
        pytest.skip(reason)
    return python


@pytest.fixture(scope="module")
def shipped(rendered, tmp_path_factory) -> Path:
    """The rendered glue_scripts/ folder, written out."""
    out = tmp_path_factory.mktemp("rendered")
    for path, text in rendered.items():
        if path.startswith("iac/glue_scripts/"):
            (out / path).parent.mkdir(parents=True, exist_ok=True)
            (out / path).write_text(text, encoding="utf-8")
    return out / "iac" / "glue_scripts"


def check_calls(runtime: Path, models: Path) -> dict:
    out = subprocess.run([str(runtime), str(SUPPORT / "glue_check_calls.py"),
                          str(ROOT / "dwctl" / "warehouse" / "load_job.py"), str(models)],
                         capture_output=True, text=True, timeout=120, env=_clean_env())
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    return env


def test_every_aws_call_of_the_job_fits_the_runtime_botocore(runtime, rendered, tmp_path):
    models = tmp_path / "botocore_data"
    for path, text in rendered.items():
        if path.startswith(BOTOCORE_DATA_PATH + "/"):
            (models / path[len(BOTOCORE_DATA_PATH) + 1:]).parent.mkdir(parents=True, exist_ok=True)
            (models / path[len(BOTOCORE_DATA_PATH) + 1:]).write_text(text, encoding="utf-8")
    result = check_calls(runtime, models)
    assert result["botocore"] in {pins[1].split("==")[1] for pins in glue_runtime.RUNTIMES.values()}
    assert result["problems"] == []
    found = {(c["service"], c["method"]) for c in result["calls"]}
    # the reading of the code found the job's calls (a broken reader would find none and pass)
    assert {("redshift-data", "batch_execute_statement"), ("s3", "put_object"), ("sqs", "receive_message")} <= found
    execute = [c for c in result["calls"] if c["method"] == "execute_statement"]
    assert execute and all("WorkgroupName" in c["keywords"] for c in execute)


def test_the_runtime_botocore_alone_refuses_the_workgroup(runtime, tmp_path):
    """Why the job ships a model: without it, the runtime's botocore refuses every Data API call to a
    Serverless workgroup (the first deployment's first call)."""
    (tmp_path / "none").mkdir()
    problems = check_calls(runtime, tmp_path / "none")["problems"]
    # (botocore 1.23.5 also still requires ClusterIdentifier, a provisioned cluster's)
    assert problems and all("unknown parameter WorkgroupName" in p or "required parameter ClusterIdentifier" in p
                            for p in problems)
    assert any("batch_execute_statement" in p for p in problems)


def job_arguments(rendered) -> list[str]:
    """The job's default arguments as the rendered Terraform gives them, references filled in."""
    job = next(block["aws_glue_job"]["loader"] for block in hcl2.loads(rendered["iac/loader_job.tf"])["resource"]
               if "aws_glue_job" in block)
    args = []
    for name, value in job["default_arguments"][0].items():
        if "${" in str(value):
            value = {"--config_key": "_dwctl/glue_scripts/load_job_config.json",
                     "--manifest_prefix": "raw/_dwctl_manifests",
                     "--visibility_timeout": "3900", "--discovery": "queue", "--metric_namespace": "dwctl/shop-prod",
                     "--smoke_canary_key": "_dwctl/glue_scripts/smoke_canary.json",
                     "--botocore_data_prefix": "_dwctl/glue_scripts/botocore_data"}.get(name) or REFERENCES[name]
        args += [name, str(value)]
    return args


def run_main(runtime: Path, rendered, example_spec, tmp_path: Path, *, ship_models: bool = True,
             drop_argument: str | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    """main() with one new CDC file of `customers` on the queue, as Glue starts it."""
    args = job_arguments(rendered)
    assert args[args.index("--discovery") + 1] == "queue"
    bucket, prefix = {}, {args[i]: args[i + 1] for i in range(0, len(args), 2)}
    for path, text in rendered.items():
        if path.startswith("iac/glue_scripts/"):
            local = tmp_path / path
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(text, encoding="utf-8")
            key = "_dwctl/glue_scripts/" + path[len("iac/glue_scripts/"):]
            if ship_models or not path.startswith(BOTOCORE_DATA_PATH):
                bucket[key] = str(local)
    view = table_view(example_spec, example_spec.table("customers"))
    landed = dms_files.write(tmp_path / "landed.parquet", view, [dms_files.change("I", "2024-01-01 12:00:00.000000", 1)])
    key = f"{view.s3_prefix}/{dms_files.cdc_name(0)}"
    bucket[key] = str(landed)
    body = {"detail-type": "Object Created", "source": "aws.s3",
            "detail": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": landed.stat().st_size, "etag": "e1"},
                       "reason": "PutObject"}}
    # DMS's table statistics: customers' full load began before the CDC row (its first load)
    statistics = [{"SchemaName": "public", "TableName": "customers", "FullLoadStartTime": "2024-01-01T11:00:00+00:00",
                   "FullLoadEndTime": "2024-01-01T11:05:00+00:00", "FullLoadReloaded": False, "TableState": "Table completed"}]
    world = {"script": str(tmp_path / "iac/glue_scripts/load_job.py"), "bucket": bucket, "region": "eu-west-1",
             "config_key": prefix["--config_key"], "table_statistics": statistics,
             "messages": [{"MessageId": "m1", "ReceiptHandle": "r1", "Body": json.dumps(body)}]}
    (tmp_path / "world.json").write_text(json.dumps(world))
    if drop_argument:
        cut = args.index(drop_argument)
        args = args[:cut] + args[cut + 2:]
    out = subprocess.run([str(runtime), str(SUPPORT / "glue_main_runner.py"), str(tmp_path / "world.json"), "--",
                          *GLUE_OWN, *args], capture_output=True, text=True, timeout=300, env=_clean_env(),
                         cwd=tmp_path)
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "{}"
    return out, json.loads(last)


def test_main_runs_and_merges_under_the_runtime(runtime, rendered, example_spec, tmp_path):
    out, seen = run_main(runtime, rendered, example_spec, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    ops = [(c["service"], c["operation"]) for c in seen["calls"]]
    assert ("s3", "GetObject") in ops and ("sqs", "ReceiveMessage") in ops
    batches = [c["params"] for c in seen["calls"] if c["operation"] == "BatchExecuteStatement"]
    assert batches and all(b["WorkgroupName"] == "shop-prod" and "SecretArn" not in b for b in batches)
    assert any("customers" in " ".join(b["Sqls"]) for b in batches)
    models = [c["params"]["Key"] for c in seen["calls"] if c["operation"] == "GetObject"
              and c["params"]["Key"].startswith("_dwctl/glue_scripts/botocore_data/")]
    assert models, "the runtime's botocore lacks WorkgroupName, so the job must have loaded the shipped model"
    deleted = [e["ReceiptHandle"] for c in seen["calls"] if c["operation"] == "DeleteMessageBatch"
               for e in c["params"]["Entries"]]
    assert deleted == ["r1"]  # merged, so its message is done
    assert any(k.startswith("raw/_dwctl_manifests/") for k in seen["bucket"])
    puts = [c["params"] for c in seen["calls"] if c["operation"] == "PutObject"]
    assert puts and all(p["ServerSideEncryption"] == "aws:kms" and p["SSEKMSKeyId"] == KEY_ARN for p in puts)
    statistics = [c["params"] for c in seen["calls"] if c["operation"] == "DescribeTableStatistics"]
    assert statistics == [{"ReplicationTaskArn": REFERENCES["--dms_task_arns"], "MaxRecords": 500}], \
        "after discovery, the job read when each table's full load began, with the runtime's own dms model"


def test_without_the_shipped_model_main_stops_with_the_fix(runtime, rendered, example_spec, tmp_path):
    out, seen = run_main(runtime, rendered, example_spec, tmp_path, ship_models=False,
                         drop_argument="--botocore_data_prefix")
    assert out.returncode != 0
    assert "has no WorkgroupName" in out.stderr and "dwctl apply" in out.stderr
    assert not [c for c in seen["calls"] if c["service"] == "redshift-data"]
