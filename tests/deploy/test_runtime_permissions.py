"""Every request the stack's identities make at run time, held to IAM's own evaluation logic (issue 20).

The policies are the rendered example's real ones: Terraform applies the stack in memory with the
real hashicorp/aws provider (tests/support/applied_stack.py: every resource's computed attributes
overridden with the ARNs AWS gives, nothing sent anywhere), so the JSON is what the provider's
aws_iam_policy_document and Terraform's jsonencode produce. The requests are:

- the load job's, from its own code: its main() runs with the applied job's default arguments (both
  discovery modes, and smoke mode as `dwctl smoke` starts it: the smoke run's writes, deletes and COPYs),
  and a botocore hook records every call instead of sending it (tests/support/job_calls.py: the AWS
  API is the one boundary stood in for); each call becomes the IAM request the Service
  Authorization Reference defines for it, with the condition keys its headers and parameters set;
  the COPY role's reads come from the COPY statements the job sent and the manifests it wrote;
- the services', from what their guides document they do (each cited beside its request).

tests/support/iam_eval.py decides each request as the IAM User Guide documents (explicit Deny wins;
an Allow is needed in the identity policy or in a resource policy naming the principal; key and
trust policies must allow the principal themselves; IfExists, Null, ArnLike, policy variables). Each
identity has requests that must be allowed and some that must not (so no test passes vacuously).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest

from tests.support import applied_stack, job_calls
from tests.support.iam_eval import Principal, Request, decide
from tests.support.realtf import real_provider_env, terraform  # noqa: F401  (fixture)

ACCOUNT = applied_stack.ACCOUNT
SESSION = "GlueJobRunnerSession"  # any session name: the policies name the role, or ${aws:userid}


# --- the applied stack ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def applied(real_provider_env, rendered, tmp_path_factory):  # noqa: F811
    env = {**real_provider_env, **{k: "http://127.0.0.1:9" for k in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")},
           "NO_PROXY": "", "no_proxy": ""}  # any attempt to reach AWS fails at once, on the loopback
    root = tmp_path_factory.mktemp("applied")
    state, many = applied_stack.applied(env, rendered, root)
    return Stack(state, many, json.loads(rendered["iac/terraform.tfvars.json"]), root / "iac", env)


class Stack:
    """The applied resources, and the policies each request meets."""

    def __init__(self, state: dict, many: set[str], tfvars: dict, iac, env):
        self.state, self.many, self.region, self.iac, self.env = state, many, tfvars["region"], iac, env
        self.key_arn = state["aws_kms_key.this"]["arn"]
        self.landing = state["aws_s3_bucket.landing"]["bucket"]

    def instances(self, prefix: str) -> list[dict]:
        """Every applied instance of one resource ("type.name"), or of a type ("type.")."""
        found = []
        for address, value in self.state.items():
            if address == prefix or (prefix.endswith(".") and address.startswith(prefix)):
                found += (list(value.values()) if isinstance(value, dict) else value) if address in self.many else [value]
        return found

    def policy(self, address: str, attribute: str = "policy") -> dict:
        return json.loads(self.state[address][attribute])

    def role(self, name: str) -> dict:
        return self.state[f"aws_iam_role.{name}"]

    def principal(self, name: str) -> Principal:
        return Principal(ACCOUNT, arn=self.role(name)["arn"])

    def identity(self, name: str) -> list[dict]:
        """The role's inline policies (aws_iam_role_policy) and attached managed ones (none here)."""
        role = self.role(name)
        attached = [a for a in self.instances("aws_iam_role_policy_attachment.") if a["role"] == role["name"]]
        assert not attached, f"managed policies on {name}: add them here"
        return [json.loads(r["policy"]) for r in self.instances("aws_iam_role_policy.") if r["role"] == role["name"]]

    def session(self, name: str) -> dict:
        """The request context of a role session (reference_policies_variables.html: aws:userid is
        "role-id:caller-specified-role-name" for a role)."""
        role = self.role(name)
        return {"aws:userid": f"{role['unique_id']}:{SESSION}", "aws:PrincipalArn": role["arn"],
                "aws:PrincipalAccount": ACCOUNT, "aws:SecureTransport": "true"}

    def resource_policy(self, request: Request) -> tuple[dict | None, bool]:
        """(the resource-based policy the request meets, whether it must allow the principal itself)."""
        arn = request.resource
        if request.action.lower() == "sts:assumerole":
            role = next(r for r in self.instances("aws_iam_role.") if r["arn"] == arn)
            return json.loads(role["assume_role_policy"]), True
        if arn == self.key_arn:
            return self.policy("aws_kms_key.this"), True
        if arn.startswith(f"arn:aws:s3:::{self.landing}"):
            return self.policy("aws_s3_bucket_policy.landing"), False
        if arn.startswith(f"arn:aws:s3:::{self.state['aws_s3_bucket.logs']['bucket']}"):
            return self.policy("aws_s3_bucket_policy.logs"), False
        if arn == self.state["aws_sqs_queue.landed"]["arn"]:
            return self.policy("aws_sqs_queue_policy.landed"), False
        if arn == self.state["aws_sns_topic.alarms"]["arn"]:
            return self.policy("aws_sns_topic_policy.alarms"), False
        if arn.startswith(f"arn:aws:logs:{self.region}:{ACCOUNT}:"):  # an account-level log resource policy
            return self.policy("aws_cloudwatch_log_resource_policy.loader_failures", "policy_document"), False
        return None, False

    def decide(self, request: Request, identity: list[dict]):
        policy, required = self.resource_policy(request)
        return decide(request, identity, policy, resource_policy_required=required)


@dataclass
class Check:
    why: str
    request: Request
    identity: list


def evaluate(stack: Stack, checks: list[Check], *, allowed: bool) -> None:
    """Every check decided; the ones that do not come out as `allowed` listed with IAM's reason."""
    wrong = []
    for check in checks:
        decision = stack.decide(check.request, check.identity)
        if bool(decision) != allowed:
            r = check.request
            wrong.append(f"{check.why}: {r.action} on {r.resource} "
                         f"{ {k: v for k, v in r.context.items() if not k.startswith('aws:Principal')} }: {decision.reason}")
    assert not wrong, ("must be allowed" if allowed else "must be denied") + ":\n  " + "\n  ".join(wrong)


def s3_object(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def via_s3(stack: Stack, principal: Principal, action: str, context: dict) -> Request:
    """The KMS request S3 makes with the caller's credentials for an SSE-KMS object (S3 User Guide,
    UsingKMSEncryption.html: kms:GenerateDataKey to write, kms:Decrypt to read; with an S3 Bucket
    Key the encryption context is the bucket's ARN)."""
    return Request(principal, action, stack.key_arn, {**context, "kms:ViaService": f"s3.{stack.region}.amazonaws.com",
                                                      "kms:CallerAccount": ACCOUNT,
                                                      "kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{stack.landing}"})


# --- the load job: its own calls -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def job_run(applied, rendered):
    """The job's calls in both discovery modes (queue, as deployed; listing, as after an outage)."""
    config = rendered["iac/glue_scripts/load_job_config.json"]
    arguments = applied.state["aws_glue_job.loader"]["default_arguments"]
    with pytest.MonkeyPatch.context() as mp:
        queue = job_calls.record(config, arguments, applied.region, mp)
    with pytest.MonkeyPatch.context() as mp:
        listing = job_calls.record(config, arguments, applied.region, mp, "--discovery", "listing")
    return queue, listing


@pytest.fixture(scope="module")
def smoke_run(applied, rendered):
    """The job's calls in smoke mode (`dwctl smoke` starts the job with --mode smoke --smoke_id): the
    uploaded canary is in the bucket, as Terraform puts it beside the config."""
    from dwctl.render import canary

    config = rendered["iac/glue_scripts/load_job_config.json"]
    arguments = applied.state["aws_glue_job.loader"]["default_arguments"]
    uploaded = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": applied.key_arn}  # loader_canary's own settings
    assert applied.state["aws_s3_object.loader_canary"]["kms_key_id"] == applied.key_arn
    objects = {arguments["--smoke_canary_key"]: (rendered[canary.PATH].encode(), uploaded)}
    with pytest.MonkeyPatch.context() as mp:
        return job_calls.record(config, arguments, applied.region, mp, "--mode", "smoke", "--smoke_id", "iamcheck",
                                objects=objects)


def workgroup_arn(stack: Stack, name: str) -> str:
    [arn] = [w["arn"] for w in stack.instances("aws_redshiftserverless_workgroup.") if w["workgroup_name"] == name]
    return arn


def queue_arn(url: str) -> str:
    region, account, name = re.fullmatch(r"https://sqs\.([^.]+)\.amazonaws\.com/(\d+)/(.+)", url).groups()
    return f"arn:aws:sqs:{region}:{account}:{name}"


def job_requests(stack: Stack, calls: list[job_calls.Call]) -> list[tuple[str, Request]]:
    """Each recorded call as the IAM requests it makes (Service Authorization Reference: Amazon S3,
    Amazon SQS, Amazon Redshift Data API; S3 sets s3:prefix from ListObjectsV2's Prefix and the two
    SSE condition keys from PutObject's headers)."""
    me, ctx = stack.principal("loader"), stack.session("loader")
    out = []
    for call in calls:
        p, what = call.params, f"job {call.service} {call.operation}"
        if (call.service, call.operation) == ("s3", "GetObject"):
            out.append((what, Request(me, "s3:GetObject", s3_object(p["Bucket"], p["Key"]), ctx)))
            out.append((what + " (SSE-KMS object)", via_s3(stack, me, "kms:Decrypt", ctx)))
        elif (call.service, call.operation) == ("s3", "PutObject"):
            headers = {k.lower(): v for k, v in call.headers.items()}
            sse = {f"s3:{h}": headers[h] for h in ("x-amz-server-side-encryption",
                                                    "x-amz-server-side-encryption-aws-kms-key-id") if h in headers}
            out.append((what, Request(me, "s3:PutObject", s3_object(p["Bucket"], p["Key"]), {**ctx, **sse})))
            out.append((what + " (SSE-KMS)", via_s3(stack, me, "kms:GenerateDataKey", ctx)))
        elif (call.service, call.operation) == ("s3", "DeleteObject"):
            out.append((what, Request(me, "s3:DeleteObject", s3_object(p["Bucket"], p["Key"]), ctx)))
        elif (call.service, call.operation) == ("s3", "ListObjectsV2"):
            out.append((what, Request(me, "s3:ListBucket", f"arn:aws:s3:::{p['Bucket']}", {**ctx, "s3:prefix": p["Prefix"]})))
        elif call.service == "sqs":
            action = {"ReceiveMessage": "sqs:ReceiveMessage", "DeleteMessageBatch": "sqs:DeleteMessage",
                      "ChangeMessageVisibility": "sqs:ChangeMessageVisibility",
                      "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
                      "GetQueueAttributes": "sqs:GetQueueAttributes"}[call.operation]
            out.append((what, Request(me, action, queue_arn(p["QueueUrl"]), ctx)))
        elif call.service == "redshift-data" and call.operation in ("ExecuteStatement", "BatchExecuteStatement"):
            workgroup = workgroup_arn(stack, p["WorkgroupName"])
            out.append((what, Request(me, f"redshift-data:{call.operation}", workgroup, ctx)))
            if not p.get("SecretArn"):  # temporary credentials of the caller (Redshift Management Guide, data-api-access.html)
                out.append((what + " (temporary credentials)", Request(me, "redshift-serverless:GetCredentials", workgroup, ctx)))
        elif call.service == "redshift-data":  # statements the job started itself: owner = its aws:userid
            out.append((what, Request(me, f"redshift-data:{call.operation}", "*",
                                      {**ctx, "redshift-data:statement-owner-iam-userid": ctx["aws:userid"]})))
        elif (call.service, call.operation) == ("dms", "DescribeTableStatistics"):  # on the task (Service
            # Authorization Reference, AWS Database Migration Service: resource type ReplicationTask)
            out.append((what, Request(me, "dms:DescribeTableStatistics", p["ReplicationTaskArn"], ctx)))
        elif (call.service, call.operation) == ("monitoring", "PutMetricData"):  # resource "*", the namespace
            # as condition key (CloudWatch User Guide, iam-cw-condition-keys-namespace)
            out.append((what, Request(me, "cloudwatch:PutMetricData", "*", {**ctx, "cloudwatch:namespace": p["Namespace"]})))
        else:
            raise AssertionError(f"the job calls {call.service} {call.operation}: map it to its IAM action here")
    return out


def test_the_job_calls_what_its_code_says(job_run):
    """The recording is the job's own: both modes read the config, footers, write manifests and run SQL."""
    for run in job_run:
        operations = {(c.service, c.operation) for c in run.calls}
        assert {("s3", "GetObject"), ("s3", "PutObject"), ("redshift-data", "BatchExecuteStatement")} <= operations
    queue, listing = job_run
    assert ("sqs", "ReceiveMessage") in {(c.service, c.operation) for c in queue.calls}
    assert ("dms", "DescribeTableStatistics") in {(c.service, c.operation) for c in queue.calls}
    assert ("s3", "ListObjectsV2") in {(c.service, c.operation) for c in listing.calls}


def test_every_request_of_the_load_job_is_allowed(applied, job_run):
    """Item 2: the manifests' PutObject carries the stack key's headers, which the bucket requires."""
    identity = applied.identity("loader")
    checks = [Check(why, r, identity) for run in job_run for why, r in job_requests(applied, run.calls)]
    assert [c for c in checks if c.request.action == "s3:PutObject"], "the job writes manifests"
    evaluate(applied, checks, allowed=True)


def test_every_request_of_the_smoke_run_is_allowed(applied, smoke_run):
    """`dwctl smoke`'s run of the job, held to the same policies: it reads the canary, writes and deletes
    under its scratch prefix only, sends its scratch statements; the deletes are the role's only ones."""
    operations = {(c.service, c.operation) for c in smoke_run.calls}
    assert {("s3", "GetObject"), ("s3", "PutObject"), ("s3", "DeleteObject"),
            ("redshift-data", "ExecuteStatement")} <= operations, operations
    checks = [Check(why, r, applied.identity("loader")) for why, r in job_requests(applied, smoke_run.calls)]
    deletes = [c.request.resource for c in checks if c.request.action == "s3:DeleteObject"]
    assert deletes and all("/_dwctl-smoke/iamcheck/" in r for r in deletes), deletes
    evaluate(applied, checks, allowed=True)


def test_the_job_may_delete_only_under_the_smoke_prefix(applied, smoke_run):
    """The role's one delete permission is the smoke scratch prefix: a landed file, a manifest, the
    job's config are refused (the stack's rule, decided by IAM's evaluation, not by the job's guard)."""
    me, ctx, identity = applied.principal("loader"), applied.session("loader"), applied.identity("loader")
    deleted = next(c.params["Key"] for c in smoke_run.calls if c.operation == "DeleteObject")
    manifests = deleted.split("/_dwctl-smoke/")[0]
    arguments = applied.state["aws_glue_job.loader"]["default_arguments"]
    refused = ["raw/public/customers/LOAD00000001.parquet", f"{manifests}/customers/run.manifest",
               arguments["--config_key"], f"{manifests}/_dwctl-smoke"]
    evaluate(applied, [Check(f"delete {key}", Request(me, "s3:DeleteObject", s3_object(applied.landing, key), ctx),
                             identity) for key in refused], allowed=False)


def test_what_the_bucket_refuses_the_job_is_refused(applied, job_run):
    """The deny statements are not vacuous: a manifest without the headers, or with another key, is refused."""
    me, ctx, identity = applied.principal("loader"), applied.session("loader"), applied.identity("loader")
    key = next(c.params["Key"] for c in job_run[0].calls if c.operation == "PutObject")
    obj = s3_object(applied.landing, key)
    other_key = applied.key_arn.rsplit("/", 1)[0] + "/11111111-2222-3333-4444-555555555555"
    checks = [
        Check("no encryption headers", Request(me, "s3:PutObject", obj, ctx), identity),
        Check("SSE-S3", Request(me, "s3:PutObject", obj, {**ctx, "s3:x-amz-server-side-encryption": "AES256"}), identity),
        Check("SSE-KMS, no key named", Request(me, "s3:PutObject", obj, {**ctx, "s3:x-amz-server-side-encryption": "aws:kms"}), identity),
        Check("another key", Request(me, "s3:PutObject", obj, {**ctx, "s3:x-amz-server-side-encryption": "aws:kms",
                                                              "s3:x-amz-server-side-encryption-aws-kms-key-id": other_key}), identity),
        Check("a landed file, not a manifest", Request(me, "s3:PutObject", s3_object(applied.landing, "raw/public/orders/x.parquet"), {
            **ctx, "s3:x-amz-server-side-encryption": "aws:kms", "s3:x-amz-server-side-encryption-aws-kms-key-id": applied.key_arn}), identity),
        Check("another session's statement", Request(me, "redshift-data:GetStatementResult", "*", {
            **ctx, "redshift-data:statement-owner-iam-userid": "AROAOTHERROLE:someone"}), identity),
        Check("plain HTTP", Request(me, "s3:GetObject", s3_object(applied.landing, "raw/public/orders/x.parquet"),
                                    {**ctx, "aws:SecureTransport": "false"}), identity),
    ]
    evaluate(applied, checks, allowed=False)


def test_terraforms_own_uploads_meet_the_bucket_policy(applied):
    """The third writer: Terraform uploads the script and configs with server_side_encryption and kms_key_id
    (aws_s3_object, sent as PutObject's SSE headers). Its identity is the operator's, allowed here; the
    bucket's deny statements must not refuse it."""
    operator = Principal(ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:role/dwctl-test-terraform")
    admin = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]
    objects = applied.instances("aws_s3_object.")
    assert len(objects) >= 3
    checks = [Check(f"terraform uploads {o['key']}", Request(operator, "s3:PutObject", s3_object(o["bucket"], o["key"]), {
        "aws:SecureTransport": "true", "s3:x-amz-server-side-encryption": o["server_side_encryption"],
        "s3:x-amz-server-side-encryption-aws-kms-key-id": o["kms_key_id"]}), admin) for o in objects]
    evaluate(applied, checks, allowed=True)


# --- the load job's logs: Glue writes them with the job role's credentials -------------------------------------
def log_requests(stack: Stack, principal: Principal, group: str, stream: str, context: dict) -> list[Request]:
    """What writing a run's log takes (CloudWatch Logs API: CreateLogGroup and AssociateKmsKey on the
    group, CreateLogStream and PutLogEvents on the stream; Service Authorization Reference, log-group
    ARN "...:log-group:<name>", log-stream ARN "...:log-group:<name>:log-stream:<name>")."""
    arn = f"arn:aws:logs:{stack.region}:{ACCOUNT}:log-group:{group}"
    return [Request(principal, "logs:CreateLogGroup", arn, context),
            Request(principal, "logs:AssociateKmsKey", arn, context),
            Request(principal, "logs:CreateLogStream", f"{arn}:log-stream:{stream}", context),
            Request(principal, "logs:PutLogEvents", f"{arn}:log-stream:{stream}", context)]


def test_the_job_can_log_to_every_group_aws_documents_for_it(applied):
    """Item 6: Glue API, JobRun.LogGroupName (/aws-glue/jobs-<role>-<security configuration>/ with a
    security configuration); Glue Developer Guide, add-job-python.html (/aws-glue/python-jobs/output
    and /errors); and the two groups the stack creates."""
    role = applied.role("loader")["name"]
    secconf = applied.state["aws_glue_security_configuration.this"]["name"]
    groups = [f"/aws-glue/jobs-{role}-{secconf}/output", f"/aws-glue/jobs-{role}-{secconf}/error",
              f"/aws-glue/jobs-{role}-{secconf}/",
              "/aws-glue/python-jobs/output", "/aws-glue/python-jobs/errors", "/aws-glue/python-jobs/error"]
    groups += [g["name"] for g in applied.instances("aws_cloudwatch_log_group.loader")]
    me, ctx, identity = applied.principal("loader"), applied.session("loader"), applied.identity("loader")
    checks = [Check(f"log {group}", r, identity) for group in groups
              for r in log_requests(applied, me, group, "jr_0123456789abcdef", ctx)]
    evaluate(applied, checks, allowed=True)
    foreign = log_requests(applied, me, "/aws-glue/jobs-other-role-other-config/output", "jr_1", ctx) + \
        log_requests(applied, me, "/aws/lambda/anything", "s", ctx)
    evaluate(applied, [Check("another job's or service's group", r, identity) for r in foreign], allowed=False)


def test_the_failure_alarm_points_at_logs_the_run_can_write(rendered):
    """The alarm's advice names where the run's error log is, and the role may write there (above)."""
    alarm = rendered["iac/loader_job.tf"].split('resource "aws_cloudwatch_metric_alarm" "loader_failed"', 1)[1]
    assert "get-job-run" in alarm and "LogGroupName" in alarm and "Error logs" in alarm


# --- the COPY role: Redshift reads what the job's COPY statements name -------------------------------------------
def copies(run: job_calls.FakeAws) -> list[tuple[str, str, bool]]:
    """(s3 url, IAM_ROLE, MANIFEST?) of every COPY the job sent."""
    found = []
    for call in run.calls:
        for sql in call.params.get("Sqls", []) + ([call.params["Sql"]] if "Sql" in call.params else []):
            m = re.match(r"\s*COPY .*?\sFROM '(s3://[^']+)'\s+IAM_ROLE '([^']+)'", sql, re.S)
            if m:
                found.append((m[1], m[2], bool(re.search(r"^MANIFEST$", sql, re.M))))
    return found


def test_every_read_of_the_copy_role_is_allowed(applied, job_run, smoke_run):
    """COPY from a manifest reads it and each file it lists; COPY from a key reads every object under
    that prefix, listing it first (Redshift Database Developer Guide, copy-parameters-data-source-s3.html).
    The smoke run's COPYs too: its canary copies under the scratch prefix."""
    role = applied.role("redshift")
    me = applied.principal("redshift")
    ctx = {"aws:userid": f"{role['unique_id']}:RedshiftSession", "aws:PrincipalAccount": ACCOUNT, "aws:SecureTransport": "true"}
    identity, checks = applied.identity("redshift"), []
    for run in [*job_run, smoke_run]:
        found = copies(run)
        assert found and {r for _, r, _ in found} == {role["arn"]}, "every COPY uses the stack's COPY role"
        for url, _, manifest in found:
            bucket, key = url[5:].split("/", 1)
            reads = [e["url"][5:].split("/", 1) for e in json.loads(run.bodies[key])["entries"]] if manifest else [[bucket, key]]
            if not manifest:
                checks.append(Check("COPY lists its prefix", Request(me, "s3:ListBucket", f"arn:aws:s3:::{bucket}",
                                                                      {**ctx, "s3:prefix": key}), identity))
            for b, k in [[bucket, key]] + (reads if manifest else []):
                checks.append(Check("COPY reads", Request(me, "s3:GetObject", s3_object(b, k), ctx), identity))
            checks.append(Check("COPY decrypts", via_s3(applied, me, "kms:Decrypt", ctx), identity))
    redshift = Principal(ACCOUNT, service="redshift.amazonaws.com")
    checks.append(Check("Redshift assumes the role", Request(redshift, "sts:AssumeRole", role["arn"]), []))
    evaluate(applied, checks, allowed=True)


# --- DMS: the S3 target role ---------------------------------------------------------------------------------
def dms_writes(stack: Stack) -> tuple[dict, dict]:
    """The headers DMS puts on each file, from the applied endpoint (DMS User Guide, CHAP_Target.S3.html:
    EncryptionMode SSE_KMS with ServerSideEncryptionKmsKeyId, the key's ARN, encrypts every object DMS
    writes with that key)."""
    endpoint = stack.state["aws_dms_s3_endpoint.target"]
    sse = {}
    if endpoint["encryption_mode"] == "SSE_KMS":
        sse = {"s3:x-amz-server-side-encryption": "aws:kms",
               "s3:x-amz-server-side-encryption-aws-kms-key-id": endpoint["server_side_encryption_kms_key_id"]}
    return endpoint, sse


def test_every_request_of_the_dms_target_role_is_allowed(applied):
    """Item 4: DMS writes, deletes (a TRUNCATE) and lists files with the role, using the key through S3;
    the role may use the key as the DMS User Guide's key policy example grants the S3 target's role
    (security_iam_resource-based-policy-examples.html): Encrypt, Decrypt, ReEncrypt*, GenerateDataKey*,
    DescribeKey, and CreateGrant/ListGrants/RevokeGrant for AWS resources, with no service condition."""
    endpoint, sse = dms_writes(applied)
    assert endpoint["service_access_role_arn"] == applied.role("dms_s3")["arn"]
    me, ctx, identity = applied.principal("dms_s3"), applied.session("dms_s3"), applied.identity("dms_s3")
    bucket, folder = endpoint["bucket_name"], endpoint["bucket_folder"]
    files = [f"{folder}/public/orders/LOAD00000001.parquet", f"{folder}/public/orders/20240101-120000000.parquet"]
    checks = [Check("DMS writes a file", Request(me, "s3:PutObject", s3_object(bucket, k), {**ctx, **sse}), identity) for k in files]
    checks += [Check("DMS deletes a truncated table's file", Request(me, "s3:DeleteObject", s3_object(bucket, files[0]), ctx), identity),
               Check("test-connection lists the bucket", Request(me, "s3:ListBucket", f"arn:aws:s3:::{bucket}", ctx), identity),
               Check("DMS locates the bucket", Request(me, "s3:GetBucketLocation", f"arn:aws:s3:::{bucket}", ctx), identity),
               Check("S3 encrypts the file", via_s3(applied, me, "kms:GenerateDataKey", ctx), identity)]
    for action in ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
                   "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"):
        checks.append(Check("DMS uses the key (documented)", Request(me, action, applied.key_arn, {**ctx, "kms:CallerAccount": ACCOUNT}), identity))
    for action in ("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"):
        checks.append(Check("a grant for an AWS resource", Request(me, action, applied.key_arn, {
            **ctx, "kms:GrantIsForAWSResource": "true"}), identity))
    dms = Principal(ACCOUNT, service="dms.amazonaws.com")
    checks.append(Check("DMS assumes the role", Request(dms, "sts:AssumeRole", me.arn, {
        "aws:SourceAccount": ACCOUNT, "aws:SourceArn": endpoint["endpoint_arn"]}), []))
    evaluate(applied, checks, allowed=True)
    refused = [Check("SSE-S3", Request(me, "s3:PutObject", s3_object(bucket, files[0]), {**ctx, "s3:x-amz-server-side-encryption": "AES256"}), identity),
               Check("outside its prefix", Request(me, "s3:PutObject", s3_object(bucket, "_dwctl/glue_scripts/load_job.py"), {**ctx, **sse}), identity),
               Check("a grant not for an AWS resource", Request(me, "kms:CreateGrant", applied.key_arn, {
                   **ctx, "kms:GrantIsForAWSResource": "false"}), identity),
               Check("another account's DMS", Request(dms, "sts:AssumeRole", me.arn, {
                   "aws:SourceAccount": "999999999999", "aws:SourceArn": "arn:aws:dms:eu-west-1:999999999999:endpoint:X"}), [])]
    evaluate(applied, refused, allowed=False)


def test_every_request_of_the_dms_source_secret_role_is_allowed(applied):
    """DMS reads the source secret with this role; Secrets Manager decrypts it through KMS for the role
    (Secrets Manager User Guide, security-encryption.html: kms:Decrypt with kms:ViaService secretsmanager).
    The secret's key is AWS managed here (no source_secret_kms_key_arn), so only the identity side is ours."""
    me, ctx, identity = applied.principal("dms_secrets"), applied.session("dms_secrets"), applied.identity("dms_secrets")
    secret = applied.state["aws_dms_endpoint.source"]["secrets_manager_arn"]
    checks = [Check("DMS reads the secret", Request(me, "secretsmanager:GetSecretValue", secret, ctx), identity),
              Check("DMS assumes the role", Request(Principal(ACCOUNT, service="dms.amazonaws.com"), "sts:AssumeRole", me.arn, {
                  "aws:SourceAccount": ACCOUNT, "aws:SourceArn": applied.state["aws_dms_endpoint.source"]["endpoint_arn"]}), [])]
    aws_managed_key = f"arn:aws:kms:{applied.region}:{ACCOUNT}:key/00000000-aaaa-bbbb-cccc-000000000000"
    decision = decide(Request(me, "kms:Decrypt", aws_managed_key, {**ctx, "kms:ViaService": f"secretsmanager.{applied.region}.amazonaws.com"}), identity)
    assert decision, decision.reason
    evaluate(applied, checks, allowed=True)


def test_the_replication_task_starts_after_the_notification_path_exists(applied):
    """Item 5, decided by Terraform's own graph of the rendered stack: each task depends on the bucket's
    EventBridge notification, the rule, its target and the queue policy, so no file lands before its
    event can reach the queue."""
    done = terraform(applied.env, applied.iac, "graph")
    edges = re.findall(r'"\[root\] ([^"]+?)(?: \(expand\))?" -> "\[root\] ([^"]+?)(?: \(expand\))?"', done.stdout)
    if not edges:  # Terraform 1.7+ prints resource addresses without the [root] prefix
        edges = re.findall(r'"([a-z_0-9.\[\]"\\-]+)" -> "([a-z_0-9.\[\]"\\-]+)"', done.stdout)
    needs: dict[str, set] = {}
    for a, b in edges:
        needs.setdefault(a, set()).add(b)

    def upstream(node, seen=None):
        seen = set() if seen is None else seen
        for nxt in needs.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                upstream(nxt, seen)
        return seen

    before = upstream("aws_dms_replication_task.this")
    assert before, done.stdout[:2000]
    for resource in ("aws_s3_bucket_notification.landing", "aws_cloudwatch_event_rule.landed",
                     "aws_cloudwatch_event_target.landed", "aws_sqs_queue_policy.landed"):
        assert resource in before, f"the replication task does not wait for {resource}"


# --- the crawler ---------------------------------------------------------------------------------------------
def test_every_request_of_the_crawler_is_allowed(applied):
    """The crawler lists and reads each S3 target with its role, reads the catalog, writes its log
    (group and stream names: glue.tf), and Lake Formation vends it credentials."""
    crawler = applied.state["aws_glue_crawler.this"]
    assert crawler["role"] == applied.role("crawler")["arn"]
    me, ctx, identity = applied.principal("crawler"), applied.session("crawler"), applied.identity("crawler")
    checks = []
    for target in crawler["s3_target"]:
        bucket, prefix = target["path"][5:].split("/", 1)
        checks += [Check("list the target", Request(me, "s3:ListBucket", f"arn:aws:s3:::{bucket}", {**ctx, "s3:prefix": prefix}), identity),
                   Check("read a file", Request(me, "s3:GetObject", s3_object(bucket, prefix + "20240101-000000000.parquet"), ctx), identity)]
    checks.append(Check("decrypt a file", via_s3(applied, me, "kms:Decrypt", ctx), identity))
    database = applied.state["aws_glue_catalog_database.this"]
    catalog = f"arn:aws:glue:{applied.region}:{ACCOUNT}:catalog"
    for table in applied.instances("aws_glue_catalog_table."):
        table_arn = f"arn:aws:glue:{applied.region}:{ACCOUNT}:table/{database['name']}/{table['name']}"
        for resource in (catalog, database["arn"], table_arn):  # GetTable needs all three (Service Authorization Reference, AWS Glue)
            checks.append(Check("read the catalog", Request(me, "glue:GetTable", resource, ctx), identity))
    group = applied.state["aws_cloudwatch_log_group.crawler"]["name"]
    checks += [Check("crawler log", r, identity) for r in log_requests(applied, me, group, crawler["name"], ctx)]
    checks.append(Check("Lake Formation credentials", Request(me, "lakeformation:GetDataAccess", "*", ctx), identity))
    checks.append(Check("Glue assumes the role", Request(Principal(ACCOUNT, service="glue.amazonaws.com"), "sts:AssumeRole",
                                                          me.arn, {"aws:SourceAccount": ACCOUNT}), []))
    evaluate(applied, checks, allowed=True)
    writes = [Check("the log-only crawler writes the catalog", Request(me, "glue:UpdateTable", f"arn:aws:glue:{applied.region}:{ACCOUNT}:table/{database['name']}/orders", ctx), identity),
              Check("the crawler writes a file", Request(me, "s3:PutObject", s3_object(applied.landing, "raw/public/orders/x.parquet"), ctx), identity)]
    evaluate(applied, writes, allowed=False)


# --- Lake Formation --------------------------------------------------------------------------------------------
def test_lake_formation_can_assume_its_role_and_read_the_registered_prefix(applied):
    """Item 7: Lake Formation assumes the registration role as its documented trust policy allows
    (registration-role.html: the service, no condition), and the role reads the registered location."""
    registered = applied.state["aws_lakeformation_resource.landing"]
    assert registered["role_arn"] == applied.role("lakeformation")["arn"]
    me, ctx, identity = applied.principal("lakeformation"), applied.session("lakeformation"), applied.identity("lakeformation")
    bucket, prefix = registered["arn"].split(":::", 1)[1].split("/", 1)
    lakeformation = Principal(ACCOUNT, service="lakeformation.amazonaws.com")
    checks = [Check("Lake Formation assumes the role (no source keys documented)", Request(lakeformation, "sts:AssumeRole", me.arn), []),
              Check("list the location", Request(me, "s3:ListBucket", f"arn:aws:s3:::{bucket}", {**ctx, "s3:prefix": prefix + "/public/orders/"}), identity),
              Check("read a file", Request(me, "s3:GetObject", s3_object(bucket, prefix + "/public/orders/x.parquet"), ctx), identity),
              Check("decrypt it", via_s3(applied, me, "kms:Decrypt", ctx), identity)]
    evaluate(applied, checks, allowed=True)
    evaluate(applied, [Check("another service", Request(Principal(ACCOUNT, service="glue.amazonaws.com"), "sts:AssumeRole", me.arn), [])],
             allowed=False)


# --- services writing to the stack's queue, logs and topic ---------------------------------------------------------
def service(name: str) -> Principal:
    return Principal(ACCOUNT, service=name)


def test_eventbridge_queues_landed_files_and_only_from_its_rule(applied):
    """EventBridge sends to the queue as events.amazonaws.com with the rule as aws:SourceArn
    (EventBridge User Guide, eb-use-resource-based.html, Amazon SQS permissions); SSE-SQS needs no key."""
    rule = applied.state["aws_cloudwatch_event_rule.landed"]["arn"]
    queue = applied.state["aws_sqs_queue.landed"]
    assert applied.state["aws_cloudwatch_event_target.landed"]["arn"] == queue["arn"] and queue["sqs_managed_sse_enabled"]
    send = Request(service("events.amazonaws.com"), "sqs:SendMessage", queue["arn"], {"aws:SourceArn": rule, "aws:SourceAccount": ACCOUNT})
    evaluate(applied, [Check("the landed-files rule", send, [])], allowed=True)
    other = Request(send.principal, send.action, send.resource, {"aws:SourceArn": rule + "-other", "aws:SourceAccount": ACCOUNT})
    evaluate(applied, [Check("another rule", other, [])], allowed=False)


def test_eventbridge_records_failed_runs_in_the_failures_log(applied):
    """EventBridge writes to a CloudWatch Logs target under the account's log resource policy
    (eb-use-resource-based.html, CloudWatch Logs permissions: events.amazonaws.com and delivery.logs.amazonaws.com)."""
    rule = applied.state["aws_cloudwatch_event_rule.loader_failed"]["arn"]
    group = applied.state["aws_cloudwatch_log_group.loader_failures"]["name"]
    checks = []
    for name in ("events.amazonaws.com", "delivery.logs.amazonaws.com"):
        ctx = {"aws:SourceArn": rule, "aws:SourceAccount": ACCOUNT}
        checks += [Check(name, r, []) for r in log_requests(applied, service(name), group, "run", ctx)
                   if r.action in ("logs:CreateLogStream", "logs:PutLogEvents")]
    evaluate(applied, checks, allowed=True)


def test_cloudwatch_logs_can_use_the_key_for_every_log_group_of_the_stack(applied):
    """CloudWatch Logs encrypts a group with its key as logs.<region>.amazonaws.com, with the group's ARN
    as encryption context (CloudWatch Logs User Guide, encrypt-log-data-kms.html)."""
    logs = service(f"logs.{applied.region}.amazonaws.com")
    checks = []
    for group in applied.instances("aws_cloudwatch_log_group."):
        assert group["kms_key_id"] == applied.key_arn, group["name"]
        arn = f"arn:aws:logs:{applied.region}:{ACCOUNT}:log-group:{group['name']}"
        for action in ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:GenerateDataKey", "kms:DescribeKey"):
            checks.append(Check(group["name"], Request(logs, action, applied.key_arn, {"kms:EncryptionContext:aws:logs:arn": arn}), []))
    assert len(checks) >= 5 * 6
    evaluate(applied, checks, allowed=True)
    elsewhere = Request(logs, "kms:Decrypt", applied.key_arn, {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:eu-west-1:999999999999:log-group:x"})
    evaluate(applied, [Check("another account's group", elsewhere, [])], allowed=False)


def test_alarms_and_dms_events_reach_the_encrypted_topic(applied):
    """CloudWatch publishes alarms as cloudwatch.amazonaws.com, EventBridge DMS events as events.amazonaws.com;
    both need kms:GenerateDataKey* and kms:Decrypt on the topic's key (SNS Developer Guide, sns-key-management.html)."""
    topic = applied.state["aws_sns_topic.alarms"]["arn"]
    checks = []
    for alarm in applied.instances("aws_cloudwatch_metric_alarm."):
        assert topic in alarm["alarm_actions"], alarm["alarm_name"]
        ctx = {"aws:SourceArn": alarm["arn"], "aws:SourceAccount": ACCOUNT}
        checks.append(Check(alarm["alarm_name"], Request(service("cloudwatch.amazonaws.com"), "sns:Publish", topic, ctx), []))
    for rule in applied.instances("aws_cloudwatch_event_rule.dms_instance") + applied.instances("aws_cloudwatch_event_rule.dms_task"):
        checks.append(Check(rule["name"], Request(service("events.amazonaws.com"), "sns:Publish", topic,
                                                  {"aws:SourceArn": rule["arn"], "aws:SourceAccount": ACCOUNT}), []))
    for name in ("cloudwatch.amazonaws.com", "events.amazonaws.com"):
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            checks.append(Check(f"{name} encrypts for the topic", Request(service(name), action, applied.key_arn), []))
    assert len(checks) > 6
    evaluate(applied, checks, allowed=True)
    stranger = Request(service("events.amazonaws.com"), "sns:Publish", topic, {"aws:SourceArn": "arn:aws:events:eu-west-1:123456789012:rule/other"})
    evaluate(applied, [Check("another rule", stranger, [])], allowed=False)


def test_s3_server_access_logs_reach_the_log_bucket(applied):
    """S3 writes access logs as logging.s3.amazonaws.com with the source bucket as aws:SourceArn
    (S3 User Guide, enable-server-access-logging.html); the log bucket is SSE-S3 (no key)."""
    logging = applied.state["aws_s3_bucket_logging.landing"]
    bucket = applied.state["aws_s3_bucket.logs"]["bucket"]
    put = Request(service("logging.s3.amazonaws.com"), "s3:PutObject", s3_object(bucket, logging["target_prefix"] + "2024/01/01/log"),
                  {"aws:SourceArn": applied.state["aws_s3_bucket.landing"]["arn"], "aws:SourceAccount": ACCOUNT, "aws:SecureTransport": "true"})
    evaluate(applied, [Check("access log", put, [])], allowed=True)
