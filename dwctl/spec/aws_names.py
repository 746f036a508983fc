"""Names the stack derives from <project>-<environment>, with the length AWS allows for each.

The spec checks these before anything renders, so a long project or environment name fails with
the limit in the message instead of at apply, after half the stack exists. A test holds this list
and the templates together (every "${local.name}..." name in iac/ is listed here).
"""

from __future__ import annotations

from typing import NamedTuple


class Derived(NamedTuple):
    suffix: str  # appended to "<project>-<environment>"
    limit: int  # longest name AWS accepts
    what: str  # the kind of resource, for the message


# IAM role names: 64 characters (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
# EventBridge rule names: 64 (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html).
# DMS replication instance identifiers: 63, no "--", no trailing hyphen
# (https://docs.aws.amazon.com/dms/latest/APIReference/API_CreateReplicationInstance.html).
# The others allow 255 or more; they are listed so the test can tell a new name was not forgotten.
DERIVED: tuple[Derived, ...] = (
    # S3 bucket names: 63 (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html),
    # 12 of them the account id that follows.
    Derived("-access-logs-", 63 - 12, "S3 access-log bucket (before the 12-digit account id)"),
    Derived("-landing-", 63 - 12, "S3 landing bucket, unless landing.bucket is set (before the account id)"),
    Derived("-dms-s3-target", 64, "IAM role"),
    Derived("-dms-source-secret", 64, "IAM role"),
    Derived("-redshift", 64, "IAM role"),
    Derived("-glue-crawler", 64, "IAM role"),
    Derived("-lakeformation", 64, "IAM role"),
    Derived("-glue-loader", 64, "IAM role"),
    Derived("-load-merge-failed", 64, "EventBridge rule"),
    Derived("-dms-task-events", 64, "EventBridge rule"),
    Derived("-dms-instance-events", 64, "EventBridge rule"),
    Derived("-landed", 64, "EventBridge rule (and SQS queue, limit 80)"),
    Derived("-dms", 63, "DMS replication instance"),
    Derived("-source", 255, "DMS endpoint"),
    Derived("-landing", 255, "DMS endpoint"),
    Derived("-source-ca", 255, "DMS certificate"),
    Derived("-full-load-and-cdc", 255, "DMS replication task"),
    Derived("-glue", 255, "Glue security configuration"),
    Derived("-landing-drift", 255, "Glue crawler"),
    Derived("-load-merge", 255, "Glue job"),
    Derived("-load-merge-schedule", 255, "Glue trigger"),
    Derived("-load-merge-failed-runs", 512, "CloudWatch Logs metric filter"),
    Derived("-load-merge-failures", 255, "CloudWatch Logs resource policy"),
    Derived("-pipeline-alarms", 256, "SNS topic"),
    Derived("-dms-cdc-latency-source", 255, "CloudWatch alarm"),
    Derived("-dms-cdc-latency-target", 255, "CloudWatch alarm"),
    Derived("-dms-cpu", 255, "CloudWatch alarm"),
    Derived("-dms-free-storage", 255, "CloudWatch alarm"),
    Derived("-redshift-compute", 255, "CloudWatch alarm"),
    Derived("-freshness", 255, "CloudWatch alarm (per table: -freshness-<table>, 255 with the table's name)"),
    Derived("-data", 250, "KMS alias (after alias/)"),
)


def too_long(project: str, environment: str) -> list[str]:
    """One sentence per derived name longer than AWS allows, naming the resource and the limit."""
    stem = f"{project}-{environment}"
    return [f"the {d.what} name {stem + d.suffix!r} is {len(stem + d.suffix)} characters, AWS allows {d.limit}"
            for d in DERIVED if len(stem + d.suffix) > d.limit]
