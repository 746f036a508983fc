"""Values the spec fixes for the Terraform variables declared in templates/iac/variables.tf.j2.

The .tf files stay generic (every knob a typed, validated variable); this file carries the
spec's choices, so one iac/ tree can later serve several environments with several tfvars.
Every declared variable appears here, so terraform.tfvars.json shows the whole configuration.
"""

from __future__ import annotations

import json

from dwctl.spec.dms_tasks import task_plans
from dwctl.spec.model import Spec

# Knobs the spec does not expose: operators tune them in tfvars. They equal the defaults in
# variables.tf (a test holds the two together).
OPERATIONAL: dict[str, object] = {
    "account_id": None,  # environments.py pins it per environment (provider allowed_account_ids)
    "kms_deletion_window_in_days": 30,
    "https_egress_cidr_blocks": ["0.0.0.0/0"],
    "source_secret_kms_key_arn": None,
    # > VARBYTE_MAX (1,024,000 bytes) and VARCHAR_MAX: a LOB MySQL truncates in limited LOB mode ("LOBs that
    # exceed the maximum LOB size are truncated", CHAP_Tasks.LOBSupport; S3 targets have no full LOB mode)
    # is still longer than its staging column, so COPY refuses its file instead of loading a cut value.
    "dms_lob_max_size_kb": 1001,
    "dms_cdc_max_batch_interval": 60,
    "dms_cdc_min_file_size_kb": 32000,
    "start_replication_task": True,
    "glue_log_retention_days": 365,
    "redshift_log_retention_days": 365,
    "redshift_allowed_cidr_blocks": [],
    "redshift_allowed_security_group_ids": [],
    "alarm_cdc_latency_seconds": 900,
    "alarm_usage_limit_percent": 80,
    "loader_schedule": "cron(*/15 * * * ? *)",
    "loader_max_retries": 1,
    "loader_timeout_minutes": 60,
    "loader_discovery": "queue",
}


def values(spec: Spec) -> dict:
    """Variable name -> value. Keys must match variables.tf (a test holds them together)."""
    lc = spec.landing.lifecycle
    wh = spec.warehouse
    from_spec = {
        "project": spec.project,
        "environment": spec.environment,
        "region": spec.region,
        "tags": dict(spec.tags),
        "vpc_id": spec.network.vpc_id,
        "subnet_ids": list(spec.network.subnet_ids),
        "source_security_group_id": spec.network.source_security_group_id,
        "source_cidr_blocks": list(spec.network.source_cidr_blocks),
        "open_source_ingress": spec.network.open_source_ingress,
        "network_egress": spec.network.egress,
        "s3_endpoint_route_table_ids": list(spec.network.s3_endpoint_route_table_ids),
        "source_engine": spec.source.engine,
        # source.host is not a variable: with secrets_manager_arn, DMS takes host and port from the secret.
        "source_port": spec.source.effective_port,
        "source_database": spec.source.database,
        "source_secret_arn": spec.source.secret_arn,
        "source_ssl_mode": spec.source.ssl_mode,
        "source_certificate_arn": spec.source.certificate_arn,
        "source_ca_bundle_file": spec.source.ca_bundle_file,
        "landing_bucket_name": spec.landing.bucket,
        "landing_prefix": spec.landing.prefix,
        "cdc_path": spec.landing.cdc_path,
        "log_retention_days": spec.landing.log_retention_days,
        "lifecycle_transition_ia_days": lc.transition_to_ia_days,
        "lifecycle_transition_glacier_days": lc.transition_to_glacier_days,
        "lifecycle_expire_days": lc.expire_days,
        "lifecycle_noncurrent_expire_days": lc.noncurrent_expire_days,
        "dms_instance_class": spec.dms.instance_class,
        "dms_allocated_storage": spec.dms.allocated_storage,
        "dms_multi_az": spec.dms.multi_az,
        "dms_engine_version": spec.dms.engine_version,
        "create_dms_account_roles": spec.dms.create_account_roles,
        "dms_log_retention_days": spec.dms.log_retention_days,
        "dms_max_full_load_subtasks": {task.name: task.max_full_load_subtasks for task in task_plans(spec)},
        "glue_database_name": spec.catalog.database,
        "crawler_schedule": spec.catalog.crawler_schedule,
        "redshift_namespace": wh.namespace,
        "redshift_workgroup": wh.workgroup,
        "redshift_base_capacity": wh.base_capacity,
        "redshift_max_capacity": wh.max_capacity,
        "redshift_usage_limit_amount": wh.usage_limit.amount,
        "redshift_usage_limit_period": wh.usage_limit.period,
        "redshift_usage_limit_breach_action": wh.usage_limit.breach_action,
        "redshift_usage_limit_deactivate_amount": wh.usage_limit.deactivate_amount,
        "redshift_database": wh.database,
        "redshift_admin_username": wh.admin_username,
        "redshift_log_exports": list(wh.log_exports),
        "lakeformation_admins": list(spec.governance.admins),
        "manage_lakeformation_settings": spec.governance.manage_data_lake_settings,
        "lakeformation_grantees": grantees(spec),
        "freshness_alarm_minutes": wh.freshness_minutes,
        "table_freshness_alarm_minutes": {t.name: t.freshness_minutes for t in spec.tables
                                          if t.freshness_minutes is not None},
    }
    return {**from_spec, **{k: _copy(v) for k, v in OPERATIONAL.items()}}


def grantees(spec: Spec) -> dict[str, str]:
    """Grant principals keyed by their IAM path (role/Analyst), so .tf files name them without an ARN.

    Keys are stable while the spec's principals are; the same path in two accounts gets `#2`.
    """
    out: dict[str, str] = {}
    for grant in spec.governance.grants:
        if grant.principal in out.values():
            continue
        base = grant.principal.split(":", 5)[5]
        key, n = base, 1
        while key in out:
            n += 1
            key = f"{base}#{n}"
        out[key] = grant.principal
    return out


def _copy(value: object) -> object:
    """A fresh list per call, so no caller can change OPERATIONAL through a returned value."""
    return list(value) if isinstance(value, list) else value


def document(spec: Spec, note: str) -> str:
    """terraform.tfvars.json text; Terraform ignores the "//" comment key."""
    return json.dumps({"//": note, **values(spec)}, indent=2, ensure_ascii=False) + "\n"
