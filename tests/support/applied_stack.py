"""The rendered stack as Terraform would apply it, every attribute known: its real policies, offline.

The policy documents (data.aws_iam_policy_document) are rendered by the real hashicorp/aws provider
and the key policy by Terraform itself (jsonencode), but only once the ARNs they name are known,
and those come from AWS at apply time. So `terraform test` applies the stack with the real provider
(the offline mirror of tests/support/realtf.py) and an `override_resource` for every managed
resource: Terraform never calls the provider for those (no AWS request, nothing leaves the
machine), and takes their computed attributes from the overrides. The ARNs are the ones AWS gives
each kind of resource, built from the resource's own planned name (ARN formats: Service
Authorization Reference, "Resource types defined by <service>"), so a policy naming a log group
names the group the service really writes to. The data sources that would call AWS are overridden
as an account ready for the stack (the same answers as the rendered guards' mocks).

Two `terraform test` runs: the first plans and reads every resource's name (known at plan), the
second applies with the overrides built from them; a helper module then writes the applied
resources' attributes to a JSON file (a local-exec provisioner: the test framework keeps no state).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import hcl2

from tests.support.realtf import OFFLINE_PROVIDER, init, terraform, write_iac

ACCOUNT = "123456789012"
PARTITION = "aws"
# The data sources Terraform's provider computes locally; every other one would call AWS.
LOCAL_DATA = {"aws_iam_policy_document", "aws_partition", "aws_service_principal"}

WRITER = '''variable "document" {
  type      = string
  sensitive = true
}

variable "path" {
  type = string
}

resource "terraform_data" "write" {
  input = var.path

  provisioner "local-exec" {
    command     = "printf '%s' \\"$DOCUMENT\\" > \\"$OUT\\""
    environment = { DOCUMENT = var.document, OUT = var.path }
  }
}
'''

# The attribute holding each kind's name, and the computed attributes AWS returns, as a function of
# (name, region, a stable unique id).
NAME_ATTRIBUTE = {
    "aws_iam_role": "name", "aws_s3_bucket": "bucket", "aws_sqs_queue": "name", "aws_sns_topic": "name",
    "aws_cloudwatch_log_group": "name", "aws_cloudwatch_event_rule": "name",
    "aws_redshiftserverless_workgroup": "workgroup_name", "aws_redshiftserverless_namespace": "namespace_name",
    "aws_glue_catalog_database": "name", "aws_glue_job": "name", "aws_glue_crawler": "name",
    "aws_glue_workflow": "name", "aws_glue_trigger": "name", "aws_glue_security_configuration": "name",
    "aws_glue_catalog_table": "name",
    "aws_dms_replication_instance": "replication_instance_id", "aws_dms_endpoint": "endpoint_id",
    "aws_dms_s3_endpoint": "endpoint_id", "aws_dms_replication_task": "replication_task_id",
    "aws_dms_replication_subnet_group": "replication_subnet_group_id", "aws_dms_certificate": "certificate_id",
    "aws_security_group": "name", "aws_kms_key": None, "aws_kms_alias": "name",
    "aws_cloudwatch_metric_alarm": "alarm_name",
}


def computed(rtype: str, name: str | None, region: str, seed: str) -> dict:
    """What AWS returns for a new resource of this kind (ARN formats from the Service Authorization Reference)."""
    ident = str(uuid.UUID(hashlib.sha256(seed.encode()).hexdigest()[:32]))
    short = hashlib.sha256(seed.encode()).hexdigest()[:17]
    a = f"arn:{PARTITION}"
    return {
        "aws_iam_role": lambda: {"arn": f"{a}:iam::{ACCOUNT}:role/{name}", "id": name,
                                 "unique_id": "AROA" + short.upper()[:17]},
        "aws_s3_bucket": lambda: {"arn": f"{a}:s3:::{name}", "id": name},
        "aws_sqs_queue": lambda: {"arn": f"{a}:sqs:{region}:{ACCOUNT}:{name}",
                                  "id": f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{name}",
                                  "url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{name}"},
        "aws_sns_topic": lambda: {"arn": f"{a}:sns:{region}:{ACCOUNT}:{name}", "id": f"{a}:sns:{region}:{ACCOUNT}:{name}"},
        # AWS reports a group's ARN with a trailing ":*", which the provider removes.
        "aws_cloudwatch_log_group": lambda: {"arn": f"{a}:logs:{region}:{ACCOUNT}:log-group:{name}", "id": name},
        "aws_cloudwatch_event_rule": lambda: {"arn": f"{a}:events:{region}:{ACCOUNT}:rule/{name}", "id": name},
        "aws_kms_key": lambda: {"arn": f"{a}:kms:{region}:{ACCOUNT}:key/{ident}", "key_id": ident, "id": ident},
        "aws_redshiftserverless_workgroup": lambda: {"arn": f"{a}:redshift-serverless:{region}:{ACCOUNT}:workgroup/{ident}",
                                                     "id": name, "workgroup_id": ident},
        "aws_redshiftserverless_namespace": lambda: {
            "arn": f"{a}:redshift-serverless:{region}:{ACCOUNT}:namespace/{ident}", "id": name, "namespace_id": ident,
            "admin_password_secret_arn": f"{a}:secretsmanager:{region}:{ACCOUNT}:secret:redshift!{name}-admin-AbCdEf"},
        "aws_glue_catalog_database": lambda: {"arn": f"{a}:glue:{region}:{ACCOUNT}:database/{name}",
                                              "id": f"{ACCOUNT}:{name}", "create_table_default_permission": []},
        "aws_glue_job": lambda: {"arn": f"{a}:glue:{region}:{ACCOUNT}:job/{name}", "id": name},
        "aws_glue_crawler": lambda: {"arn": f"{a}:glue:{region}:{ACCOUNT}:crawler/{name}", "id": name},
        "aws_glue_workflow": lambda: {"arn": f"{a}:glue:{region}:{ACCOUNT}:workflow/{name}", "id": name},
        "aws_glue_trigger": lambda: {"arn": f"{a}:glue:{region}:{ACCOUNT}:trigger/{name}", "id": name},
        "aws_glue_security_configuration": lambda: {"id": name},
        "aws_dms_replication_instance": lambda: {"replication_instance_arn": f"{a}:dms:{region}:{ACCOUNT}:rep:{short.upper()}"},
        "aws_dms_endpoint": lambda: {"endpoint_arn": f"{a}:dms:{region}:{ACCOUNT}:endpoint:{short.upper()}"},
        "aws_dms_s3_endpoint": lambda: {"endpoint_arn": f"{a}:dms:{region}:{ACCOUNT}:endpoint:{short.upper()}"},
        "aws_dms_replication_task": lambda: {"replication_task_arn": f"{a}:dms:{region}:{ACCOUNT}:task:{short.upper()}"},
        "aws_dms_certificate": lambda: {"certificate_arn": f"{a}:dms:{region}:{ACCOUNT}:cert:{short.upper()}"},
        "aws_security_group": lambda: {"id": "sg-" + short, "arn": f"{a}:ec2:{region}:{ACCOUNT}:security-group/sg-{short}"},
        "aws_cloudwatch_metric_alarm": lambda: {"arn": f"{a}:cloudwatch:{region}:{ACCOUNT}:alarm:{name}", "id": name},
    }.get(rtype, lambda: {})()


def hcl_value(value) -> str:
    return json.dumps(value)  # JSON literals are HCL literals


def managed_resources(iac: Path) -> list[tuple[str, str, bool]]:
    """(type, name, has count or for_each) of every resource block of the rendered stack."""
    found = []
    for path in sorted(iac.glob("*.tf")):
        for block in hcl2.loads(path.read_text(encoding="utf-8")).get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    found.append((rtype, name, "count" in body or "for_each" in body))
    return found


def data_sources(iac: Path) -> list[tuple[str, str]]:
    found = []
    for path in sorted(iac.glob("*.tf")):
        for block in hcl2.loads(path.read_text(encoding="utf-8")).get("data", []):
            for dtype, named in block.items():
                found += [(dtype, name) for name in named]
    return found


def ready_account(iac: Path, tfvars: dict) -> str:
    """override_data blocks: an account ready for the stack, as the rendered guards mock it."""
    admins = tfvars["lakeformation_admins"]
    terraform_role = f"arn:aws:iam::{ACCOUNT}:role/dwctl-test-terraform"
    answers = {
        "aws_caller_identity": {"account_id": ACCOUNT, "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/dwctl-test-terraform/test"},
        "aws_iam_session_context": {"issuer_arn": terraform_role},
        "aws_iam_roles": {"names": ["dms-cloudwatch-logs-role", "dms-vpc-role"]},
        "aws_lakeformation_data_lake_settings": {"admins": [terraform_role, *admins],
                                                 "create_database_default_permissions": [],
                                                 "create_table_default_permissions": []},
        "aws_route_table": {"route_table_id": "rtb-00000000000000001", "routes": [
            {"cidr_block": "0.0.0.0/0", "nat_gateway_id": "nat-00000000000000001", "transit_gateway_id": "",
             "network_interface_id": ""}]},
        "aws_iam_role": {}, "aws_iam_user": {},
    }
    blocks = []
    for dtype, name in data_sources(iac):
        if dtype in LOCAL_DATA:
            continue
        if dtype == "aws_subnet":  # one zone per subnet: the workgroup's three-zone guard holds
            for i, subnet in enumerate(tfvars["subnet_ids"]):
                blocks.append(override("override_data", f'data.{dtype}.{name}["{subnet}"]',
                                       {"availability_zone_id": f"euw1-az{i + 1}"}))
            continue
        assert dtype in answers, f"data source {dtype} calls AWS: give it an answer here"
        blocks.append(override("override_data", f"data.{dtype}.{name}", answers[dtype]))
    return "".join(blocks)


def override(kind: str, target: str, values: dict, during: str = "apply") -> str:
    lines = "".join(f"    {k} = {hcl_value(v)}\n" for k, v in sorted(values.items()))
    return f"{kind} {{\n  target          = {target}\n  override_during = {during}\n  values = {{\n{lines}  }}\n}}\n\n"


def run_test(env: dict, iac: Path, name: str, body: str, out: Path) -> dict:
    """Run one test file (and only it) whose last run writes `document` to `out`; returns it parsed."""
    (iac / "tests" / f"{name}.tftest.hcl").write_text(body, encoding="utf-8")
    init(env, iac)  # installs the test file's helper module
    done = terraform(env, iac, "test", f"-filter=tests/{name}.tftest.hcl", check=False)
    assert done.returncode == 0 and out.is_file(), f"terraform test ({name}):\n{done.stdout}\n{done.stderr}"
    return json.loads(out.read_text(encoding="utf-8"))


def writer_run(source_run: str, output: str, out: Path) -> str:
    return f'''run "write" {{
  command = apply

  module {{
    source = "./tests/writer"
  }}

  variables {{
    document = run.{source_run}.{output}
    path     = {hcl_value(str(out))}
  }}
}}
'''


def every_instance(address: str, many: bool, attribute: str) -> str:
    """An expression mapping instance key -> attribute ("" for a single instance)."""
    if many:
        return f"{{ for key, r in {address} : tostring(key) => r.{attribute} }}"
    return f'{{ "" = {address}.{attribute} }}'


def applied(env: dict, files: dict[str, str], root: Path) -> tuple[dict, set[str]]:
    """{address: attributes} of every managed resource of the rendered stack, as applied (a list or a
    map of instances for a resource with count or for_each), and the addresses that have those."""
    # prevent_destroy (protect_data) would stop the test framework's in-memory destroy; nothing else differs.
    iac = write_iac({path: text.replace("prevent_destroy = true", "prevent_destroy = false") for path, text in files.items()}, root)
    for old in (iac / "tests").glob("*.tftest.hcl"):
        old.unlink()  # the guards run on their own elsewhere
    (iac / "tests" / "writer").mkdir(parents=True, exist_ok=True)
    (iac / "tests" / "writer" / "main.tf").write_text(WRITER, encoding="utf-8")
    (iac / "zz_offline_override.tf").write_text(OFFLINE_PROVIDER, encoding="utf-8")
    tfvars = json.loads((iac / "terraform.tfvars.json").read_text(encoding="utf-8"))
    region = tfvars["region"]
    resources = managed_resources(iac)
    account = ready_account(iac, tfvars)

    # 1. The names, known at plan.
    named = [(t, n, many) for t, n, many in resources if NAME_ATTRIBUTE.get(t)]
    entries = "".join(f'    {hcl_value(f"{t}.{n}")} = {every_instance(f"{t}.{n}", many, NAME_ATTRIBUTE[t])}\n'
                      for t, n, many in named)
    (iac / "zz_names.tf").write_text(f'output "zz_names" {{\n  value = jsonencode({{\n{entries}  }})\n}}\n',
                                     encoding="utf-8")
    # Planned without the provider too (nothing it could ask AWS), the names being configuration; the
    # provider still validates each resource's arguments, so the stand-in ARNs are well formed.
    planned = "".join(override("override_resource", f"{t}.{n}", computed(t, f"dwctl-{n}", region, n), "plan")
                      for t, n, _ in resources)
    names = run_test(env, iac, "zz_names", account + planned + 'run "plan" {\n  command = plan\n}\n\n'
                     + writer_run("plan", "zz_names", root / "names.json"), root / "names.json")
    (iac / "zz_names.tf").unlink()

    # 2. Apply with every resource's computed attributes overridden.
    overrides = []
    for rtype, name, many in resources:
        address = f"{rtype}.{name}"
        if address in names:
            for key, resource_name in names[address].items():
                target = f'{address}[{hcl_value(key) if not key.isdigit() else key}]' if many else address
                overrides.append(override("override_resource", target, computed(rtype, resource_name, region, target)))
        else:
            overrides.append(override("override_resource", address, computed(rtype, None, region, address)))
    entries = "".join(f'    {hcl_value(f"{t}.{n}")} = {t}.{n}\n' for t, n, _ in resources)
    (iac / "zz_state.tf").write_text(f'output "zz_state" {{\n  sensitive = true\n  value     = jsonencode({{\n{entries}  }})\n}}\n',
                                     encoding="utf-8")
    state = run_test(env, iac, "zz_state", account + "".join(overrides) + 'run "apply" {\n  command = apply\n}\n\n'
                     + writer_run("apply", "zz_state", root / "state.json"), root / "state.json")
    (iac / "zz_state.tf").unlink()
    return state, {f"{t}.{n}" for t, n, many in resources if many}
