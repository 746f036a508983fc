"""The rendered stack under the real Terraform on PATH and the real hashicorp/aws provider (offline).

- `terraform init` + `terraform validate` of the example and of the every-feature spec: the
  provider's own validators run (enums, regexes, conflicts), which no schema copy can.
- `terraform test` with `mock_provider "aws"` (Terraform plans in memory; the provider's schema is
  real, its API answers are mocked: the AWS API is the one external boundary here). Each run proves
  one guard of issue 12 stops a plan that would fail or mis-govern on a real account, and that the
  example plans cleanly when the account is as the guards want it.
"""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from dwctl.cli import cli
from tests.conftest import EXAMPLE
from tests.realtf import init, real_provider_env, terraform, write_iac  # noqa: F401  (fixture)
from tests.test_scan import every_feature

IDENTITY = "arn:aws:iam::123456789012:role/terraform"
ADMIN = "arn:aws:iam::123456789012:role/DataPlatformAdmin"

# What AWS would answer for the account the guards want: both DMS account roles present, the
# Terraform identity and the spec's admin are Lake Formation admins, no IAMAllowedPrincipals
# defaults, three subnets in three zones (the mock gives each subnet its own random zone id), each
# routing 0.0.0.0/0 through a NAT gateway.
MOCK = f'''
mock_provider "aws" {{
  mock_data "aws_caller_identity" {{
    defaults = {{
      account_id = "123456789012"
      arn        = "arn:aws:sts::123456789012:assumed-role/terraform/ci"
    }}
  }}
  mock_data "aws_partition" {{
    defaults = {{
      partition  = "aws"
      dns_suffix = "amazonaws.com"
    }}
  }}
  mock_data "aws_iam_session_context" {{
    defaults = {{
      issuer_arn = "{IDENTITY}"
    }}
  }}
  mock_data "aws_iam_policy_document" {{
    defaults = {{
      json = "{{}}"
    }}
  }}
  mock_data "aws_iam_roles" {{
    defaults = {{
      names = ["dms-cloudwatch-logs-role", "dms-vpc-role"]
    }}
  }}
  mock_data "aws_route_table" {{
    defaults = {{
      route_table_id = "rtb-0a1b2c3d4e5f60001"
      routes         = [{{ cidr_block = "0.0.0.0/0", nat_gateway_id = "nat-0a1b2c3d4e5f60001", transit_gateway_id = "", network_interface_id = "" }}]
    }}
  }}
  mock_data "aws_lakeformation_data_lake_settings" {{
    defaults = {{
      admins = ["{IDENTITY}", "{ADMIN}"]
    }}
  }}
}}
'''

RUNS = '''
run "example_plans_with_the_guards_satisfied" {
  command = plan

  assert {
    condition     = aws_dms_replication_task.this.start_replication_task
    error_message = "the task must be restarted after changes"
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.dms_cdc_latency_source.treat_missing_data == "breaching"
    error_message = "a stopped task must alarm"
  }
  assert {
    condition     = length(aws_lakeformation_data_lake_settings.this) == 0
    error_message = "the example does not own the account-wide Lake Formation settings"
  }
  assert {
    condition     = aws_glue_catalog_table.customers.storage_descriptor[0].columns[0].name == "op"
    error_message = "Glue stores column names in lower case"
  }
}

run "no_dms_vpc_role" {
  command = plan
  override_data {
    target = data.aws_iam_roles.dms_account
    values = { names = [] }
  }
  expect_failures = [aws_dms_replication_subnet_group.this]
}

run "no_dms_cloudwatch_logs_role" {
  command = plan
  override_data {
    target = data.aws_iam_roles.dms_account
    values = { names = ["dms-vpc-role"] }
  }
  expect_failures = [aws_dms_replication_task.this]
}

run "subnets_in_one_zone" {
  command = plan
  override_data {
    target = data.aws_subnet.workgroup
    values = { availability_zone_id = "euw1-az1" }
  }
  expect_failures = [aws_redshiftserverless_workgroup.this]
}

run "iam_allowed_principals_by_default" {
  command = plan
  override_data {
    target = data.aws_lakeformation_data_lake_settings.current
    values = {
      admins                          = ["__IDENTITY__", "__ADMIN__"]
      create_table_default_permissions = [{ principal = "IAM_ALLOWED_PRINCIPALS", permissions = ["ALL"] }]
    }
  }
  expect_failures = [check.lakeformation_governs_the_catalog]
}

run "terraform_identity_is_no_lake_formation_admin" {
  command = plan
  override_data {
    target = data.aws_lakeformation_data_lake_settings.current
    values = { admins = ["__ADMIN__"] }
  }
  expect_failures = [check.lakeformation_governs_the_catalog]
}

run "private_subnets_without_nat" {
  command = plan
  override_data {
    target = data.aws_route_table.subnet
    values = { route_table_id = "rtb-0a1b2c3d4e5f60001", routes = [] }
  }
  expect_failures = [check.private_subnets_reach_aws_apis]
}

run "endpoints_without_the_s3_gateway" {
  command = plan
  variables {
    network_egress = "endpoints"
  }
  expect_failures = [check.private_subnets_reach_aws_apis]
}

run "endpoints_with_the_s3_gateway" {
  command = plan
  variables {
    network_egress              = "endpoints"
    s3_endpoint_route_table_ids = ["rtb-0a1b2c3d4e5f60001"]
  }
  assert {
    condition     = length(aws_vpc_endpoint.s3) == 1 && aws_vpc_endpoint.s3[0].vpc_endpoint_type == "Gateway"
    error_message = "the S3 gateway endpoint is made on the listed route tables"
  }
}

run "double_hyphen_in_the_project" {
  command   = plan
  variables {
    project = "shop--x"
  }
  expect_failures = [var.project]
}

run "glacier_too_soon_after_standard_ia" {
  command = plan
  variables {
    lifecycle_transition_ia_days      = 60
    lifecycle_transition_glacier_days = 80
  }
  expect_failures = [aws_s3_bucket_lifecycle_configuration.landing]
}

run "engine_too_old_for_op_in_full_load" {
  command = plan
  variables {
    dms_engine_version = "3.4.6"
  }
  expect_failures = [var.dms_engine_version]
}

run "two_subnets" {
  command = plan
  variables {
    subnet_ids = ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]
  }
  expect_failures = [var.subnet_ids]
}
'''.replace("__IDENTITY__", IDENTITY).replace("__ADMIN__", ADMIN)


def validate(env: dict[str, str], iac) -> dict:
    init(env, iac)
    done = terraform(env, iac, "validate", "-json", check=False)
    return json.loads(done.stdout)


def test_the_example_validates_with_the_real_provider(real_provider_env, rendered, tmp_path):
    result = validate(real_provider_env, write_iac(rendered, tmp_path))
    assert result["valid"], result["diagnostics"]
    assert result["diagnostics"] == []  # no deprecation warnings either
    lock = (tmp_path / "iac" / ".terraform.lock.hcl").read_text()
    version = re.search(r'provider "registry.terraform.io/hashicorp/aws" \{\s+version\s+= "([0-9.]+)"', lock)[1]
    major, minor = map(int, version.split(".")[:2])
    assert (5, 100) <= (major, minor) < (7, 0), version


def test_the_every_feature_spec_validates_with_the_real_provider(real_provider_env, example_text, tmp_path):
    spec = tmp_path / "everything.yaml"
    spec.write_text(every_feature(example_text), encoding="utf-8")
    out = tmp_path / "out"
    rendered = CliRunner().invoke(cli, ["render", "-c", str(spec), "-o", str(out)], catch_exceptions=False)
    assert rendered.exit_code == 0, rendered.output
    main = (out / "iac" / "main.tf").read_text()
    assert 'backend "s3" {}' in main  # -backend=false below: validate needs no state bucket
    tfvars = json.loads((out / "iac" / "terraform.tfvars.json").read_text())
    assert tfvars["create_dms_account_roles"] and tfvars["manage_lakeformation_settings"] and tfvars["cdc_path"]
    result = validate(real_provider_env, out / "iac")
    assert result["valid"], result["diagnostics"]
    assert [d for d in result["diagnostics"] if d["severity"] == "error"] == []


def test_the_guards_stop_plans_that_would_fail_on_aws(real_provider_env, rendered, tmp_path):
    iac = write_iac(rendered, tmp_path)
    (iac / "tests").mkdir()
    (iac / "tests" / "guards.tftest.hcl").write_text(MOCK + RUNS, encoding="utf-8")
    init(real_provider_env, iac)
    done = terraform(real_provider_env, iac, "test", check=False)
    results = dict(re.findall(r'run "([a-z_]+)"\.\.\. (pass|fail|skip)', done.stdout))
    expected = re.findall(r'^run "([a-z_]+)"', RUNS, re.M)
    assert results == {name: "pass" for name in expected}, done.stdout + done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    assert EXAMPLE.name == "pipeline.yaml"  # the runs use the example's terraform.tfvars.json
