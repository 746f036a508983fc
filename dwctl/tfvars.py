"""Values the spec fixes for the Terraform variables declared in templates/iac/variables.tf.j2.

The .tf files stay generic (every knob a typed, validated variable); this file carries the
spec's choices, so one iac/ tree can later serve several environments with several tfvars.
"""

from __future__ import annotations

import json

from dwctl.spec import Spec


def values(spec: Spec) -> dict:
    """Variable name -> value. Keys must match variables.tf (a test holds them together)."""
    lc = spec.landing.lifecycle
    wh = spec.warehouse
    return {
        "project": spec.project,
        "environment": spec.environment,
        "region": spec.region,
        "tags": dict(spec.tags),
        "vpc_id": spec.network.vpc_id,
        "subnet_ids": list(spec.network.subnet_ids),
        "source_security_group_id": spec.network.source_security_group_id,
        "source_cidr_blocks": list(spec.network.source_cidr_blocks),
        "source_engine": spec.source.engine,
        "source_host": spec.source.host,
        "source_port": spec.source.effective_port,
        "source_database": spec.source.database,
        "source_secret_arn": spec.source.secret_arn,
        "source_ssl_mode": spec.source.ssl_mode,
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
        "glue_database_name": spec.catalog.database,
        "crawler_schedule": spec.catalog.crawler_schedule,
        "redshift_namespace": wh.namespace,
        "redshift_workgroup": wh.workgroup,
        "redshift_base_capacity": wh.base_capacity,
        "redshift_usage_limit_amount": wh.usage_limit.amount,
        "redshift_usage_limit_period": wh.usage_limit.period,
        "redshift_usage_limit_breach_action": wh.usage_limit.breach_action,
        "redshift_database": wh.database,
        "redshift_admin_username": wh.admin_username,
        "redshift_log_exports": list(wh.log_exports),
        "lakeformation_admins": list(spec.governance.admins),
    }


def document(spec: Spec, note: str) -> str:
    """terraform.tfvars.json text; Terraform ignores the "//" comment key."""
    return json.dumps({"//": note, **values(spec)}, indent=2, ensure_ascii=False) + "\n"
