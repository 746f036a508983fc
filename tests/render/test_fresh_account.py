"""Issue 12: what a first apply on a fresh AWS account needs, and what keeps the pipeline governed
and running afterwards. Each test names the item it covers; the rendered stack is read with hcl2
(checkov's parser), specs go through the real loader. Nothing is mocked.
"""

from __future__ import annotations

import json
import re

import pytest

from dwctl.render.engine import render
from dwctl.render.tfvars import values
from dwctl.spec import aws_names as awsnames
from dwctl.spec.read import parse_spec
from tests.render.test_iac import STACK_FILES, one, resources, tree

NAME = "config/pipeline.yaml"


def render_text(text: str) -> dict[str, str]:
    return render(parse_spec(text, NAME), NAME)


def data_sources(files: dict[str, str], path: str, dtype: str) -> dict[str, dict]:
    out = {}
    for block in tree(files, path).get("data", []):
        out.update(block.get(dtype, {}))
    return out


def preconditions(body: dict) -> list[dict]:
    return [one(p, "condition") and p for p in one(body, "lifecycle").get("precondition", [])]


def squeeze(expression: str) -> str:
    """hcl2 re-spaces expressions; compare them without blanks."""
    return re.sub(r"\s+", "", expression)


def rejected(text: str) -> str:
    with pytest.raises(Exception) as err:
        parse_spec(text, NAME)
    return str(err.value)


# --- 1. DMS account roles ---------------------------------------------------------------------------
def test_1_existing_dms_account_roles_are_looked_up_and_plan_names_the_fix(rendered, example_spec):
    assert example_spec.dms.create_account_roles is False
    lookup = data_sources(rendered, "iac/iam.tf", "aws_iam_roles")["dms_account"]
    assert one(lookup, "count") == "${var.create_dms_account_roles ? 0 : 1}"
    assert one(lookup, "name_regex") == "^dms-(vpc|cloudwatch-logs)-role$"
    subnet_group = resources(rendered, "iac/dms.tf", "aws_dms_replication_subnet_group")["this"]
    task = resources(rendered, "iac/dms.tf", "aws_dms_replication_task")["this"]
    for body, role in ((subnet_group, "dms-vpc-role"), (task, "dms-cloudwatch-logs-role")):
        [check] = [p for p in preconditions(body) if role in one(p, "condition")]
        assert squeeze(one(check, "condition")) == f'${{contains(local.dms_account_roles,"{role}")}}'
        assert "dms.create_account_roles: true" in one(check, "error_message")
    assert values(example_spec)["create_dms_account_roles"] is False


def test_1_a_fresh_account_gets_the_roles_created(example_text):
    files = render_text(example_text.replace("create_account_roles: false", "create_account_roles: true"))
    assert values(parse_spec(example_text.replace("create_account_roles: false", "create_account_roles: true"),
                             NAME))["create_dms_account_roles"] is True
    roles = resources(files, "iac/iam.tf", "aws_iam_role")
    assert one(roles["dms_vpc"], "name") == "dms-vpc-role"
    assert one(roles["dms_cloudwatch_logs"], "name") == "dms-cloudwatch-logs-role"
    assert ('dms_account_roles = var.create_dms_account_roles ? ["dms-vpc-role", "dms-cloudwatch-logs-role"] : '
            in files["iac/iam.tf"])


# --- 2. the task keeps running, and a stopped task alarms ----------------------------------------------
def test_2_the_task_is_restarted_after_changes(rendered, example_spec):
    assert values(example_spec)["start_replication_task"] is True
    document = json.loads(rendered["iac/terraform.tfvars.json"])
    assert document["start_replication_task"] is True


def test_2_a_stopped_task_is_not_silent(rendered):
    alarms = resources(rendered, "iac/monitoring.tf", "aws_cloudwatch_metric_alarm")
    for name in ("dms_cdc_latency_source", "dms_cdc_latency_target"):
        assert one(alarms[name], "treat_missing_data") == "breaching", name
    rule = resources(rendered, "iac/monitoring.tf", "aws_cloudwatch_event_rule")["dms_task"]
    pattern = one(rule, "event_pattern")
    assert "'detail-type': ['DMS Replication Task State Change']" in pattern and "'source': ['aws.dms']" in pattern
    assert "${each.value.replication_task_arn}" in pattern  # one rule per task (issue 14)
    for name in ("dms_cdc_latency_source", "dms_cdc_latency_target"):
        assert one(alarms[name], "for_each") == "${aws_dms_replication_task.this}"
    assert one(rule, "for_each") == "${aws_dms_replication_task.this}"
    target = resources(rendered, "iac/monitoring.tf", "aws_cloudwatch_event_target")["dms_task"]
    assert one(target, "arn") == "${aws_sns_topic.alarms.arn}"
    assert one(target, "for_each") == "${aws_cloudwatch_event_rule.dms_task}"
    assert one(target, "rule") == "${each.value.name}"


# --- 3. Lake Formation settings are optional and checked ------------------------------------------------
def test_3_account_wide_lake_formation_settings_only_when_the_spec_owns_them(rendered, example_spec, example_text):
    settings = resources(rendered, "iac/lakeformation.tf", "aws_lakeformation_data_lake_settings")["this"]
    assert one(settings, "count") == "${var.manage_lakeformation_settings ? 1 : 0}"
    assert example_spec.governance.manage_data_lake_settings is False
    assert values(example_spec)["manage_lakeformation_settings"] is False
    owned = example_text.replace("governance:\n", "governance:\n  manage_data_lake_settings: true\n", 1)
    assert values(parse_spec(owned, NAME))["manage_lakeformation_settings"] is True


def test_3_iam_allowed_principals_are_checked_after_apply(rendered):
    checks = {name: body for block in tree(rendered, "iac/lakeformation.tf")["check"] for name, body in block.items()}
    account = [one(a, "condition") for a in checks["lakeformation_governs_the_catalog"]["assert"]]
    assert any("create_table_default_permissions" in c and "IAM_ALLOWED_PRINCIPALS" in c for c in account)
    assert any("create_database_default_permissions" in c for c in account)
    database = one(one(checks["no_iam_allowed_principals_on_the_database"], "assert"), "condition")
    assert "aws_glue_catalog_database.this.create_table_default_permission" in database
    assert "IAM_ALLOWED_PRINCIPALS" in database
    assert "data.aws_lakeformation_data_lake_settings.current" in account[0]


# --- 4. DMS engine version ------------------------------------------------------------------------------
def test_4_engine_upgrades_by_aws_do_not_diff(rendered):
    instance = resources(rendered, "iac/dms.tf", "aws_dms_replication_instance")["this"]
    assert one(one(instance, "lifecycle"), "ignore_changes") == ["${engine_version}"]


@pytest.mark.parametrize("version, ok", [("3.4.6", False), ("3.3.9", False), ("3.4.7", True), ("3.6.1", True)])
def test_4_engine_version_needs_parquet_op_for_full_load(example_text, version, ok):
    text = example_text.replace('engine_version: "3.5.4"', f'engine_version: "{version}"')
    if ok:
        assert parse_spec(text, NAME).dms.engine_version == version
    else:
        message = rejected(text)
        assert "dms.engine_version" in message and "3.4.7" in message and "IncludeOpForFullLoad" in message


# --- 5. access-log bucket encryption ---------------------------------------------------------------------
def test_5_the_access_log_bucket_uses_sse_s3_and_the_landing_bucket_keeps_kms(rendered):
    sse = resources(rendered, "iac/s3.tf", "aws_s3_bucket_server_side_encryption_configuration")
    logs = one(one(sse["logs"], "rule"), "apply_server_side_encryption_by_default")
    assert logs == {"sse_algorithm": ["AES256"]}
    landing = one(one(sse["landing"], "rule"), "apply_server_side_encryption_by_default")
    assert one(landing, "sse_algorithm") == "aws:kms"


# --- 6. DMS events through EventBridge -------------------------------------------------------------------
def test_6_eventbridge_may_publish_dms_events_to_the_encrypted_topic(rendered):
    assert "aws_dms_event_subscription" not in "".join(rendered[p] for p in STACK_FILES)
    topic = data_sources(rendered, "iac/monitoring.tf", "aws_iam_policy_document")["alarms_topic"]
    [events] = [s for s in topic["statement"] if one(one(s, "principals"), "identifiers") == ["events.amazonaws.com"]]
    assert one(events, "actions") == ["SNS:Publish"]
    condition = one(events, "condition")
    assert one(condition, "variable") == "aws:SourceArn"
    assert squeeze(one(condition, "values")) == squeeze(
        "${concat([for rule in aws_cloudwatch_event_rule.dms_task : rule.arn], ['${aws_cloudwatch_event_rule.dms_instance.arn}'])}")
    policy = one(resources(rendered, "iac/kms.tf", "aws_kms_key")["this"], "policy")
    assert re.search(r'Principal = \{ Service = "events\.amazonaws\.com" \}\s+Action\s+= \["kms:GenerateDataKey\*", '
                     r'"kms:Decrypt"\]', rendered["iac/kms.tf"]), policy


# --- 7. names and combinations AWS rejects ---------------------------------------------------------------
def derived_names(files: dict[str, str]) -> set[str]:
    """Every literal suffix the .tf files put after local.name (directly or through local.loader_name)."""
    text = "".join(t for p, t in files.items() if p.endswith(".tf"))
    loader = re.search(r'loader_name\s+= "\$\{local\.name\}([^"]*)"', text)[1]
    direct = set(re.findall(r'"(?:alias/)?\$\{local\.name\}(-[a-z0-9-]+)(?:"|\$\{local\.account_id\}")', text))
    via_loader = {loader + s for s in re.findall(r'"(?:/aws/events/)?\$\{local\.loader_name\}(-[a-z0-9-]+)"', text)}
    return direct | via_loader | {loader}


def test_7_every_name_the_stack_derives_has_its_aws_limit_listed(rendered):
    listed = {d.suffix for d in awsnames.DERIVED}
    assert derived_names(rendered) - listed == set()
    assert {"-landing-", "-access-logs-", "-dms-source-secret", "-load-merge-failed"} <= derived_names(rendered)


def test_7_a_derived_name_over_the_limit_is_refused_with_the_limit(example_text):
    project = "shop-analytics-warehouse-abcdefg"  # 32 characters, the most a project may have
    assert len(project) == 32
    text = example_text.replace("project: shop", f"project: {project}").replace(
        "environment: prod", "environment: productionstage1")
    message = rejected(text)
    assert "environment" in message and "AWS allows 64" in message and "IAM role" in message
    assert f"{project}-productionstage1-dms-source-secret" in message


def test_7_every_accepted_spec_derives_names_within_the_limits(example_text):
    for environment in ("p", "prod", "productionst", "productionstage1"):
        text = example_text.replace("environment: prod", f"environment: {environment}")
        try:
            spec = parse_spec(text, NAME)
        except Exception:
            continue
        stem = f"{spec.project}-{spec.environment}"
        assert all(len(stem + d.suffix) <= d.limit for d in awsnames.DERIVED)


def test_7_an_environment_beside_the_spec_is_checked_too(example_text):
    project = "shop-analytics-warehouse-abcdefg"
    text = example_text.replace("project: shop", f"project: {project}").replace(
        "environment: prod", "environment: p") + "environments:\n  productionstage1: {}\n"
    message = rejected(text)
    assert "environments.productionstage1" in message and "AWS allows 64" in message


def test_7_the_project_variable_refuses_a_double_hyphen(rendered):
    pattern = re.search(r'regex\("([^"]+)", var\.project\)', rendered["iac/variables.tf"])[1]
    assert re.match(pattern, "shop-data") and not re.match(pattern, "shop--data") and not re.match(pattern, "shop-")


def test_7_glacier_instant_retrieval_comes_30_days_after_standard_ia(example_text, rendered):
    text = example_text.replace("transition_to_ia_days: 30", "transition_to_ia_days: 60").replace(
        "transition_to_glacier_days: 180", "transition_to_glacier_days: 89")
    message = rejected(text)
    assert "transition_to_glacier_days" in message and "30 days after" in message
    ok = text.replace("transition_to_glacier_days: 89", "transition_to_glacier_days: 90")
    assert parse_spec(ok, NAME).landing.lifecycle.transition_to_glacier_days == 90
    rule = resources(rendered, "iac/s3.tf", "aws_s3_bucket_lifecycle_configuration")["landing"]
    [check] = preconditions(rule)
    assert squeeze(one(check, "condition")) == "${var.lifecycle_transition_glacier_days>=var.lifecycle_transition_ia_days+30}"


# --- 8. Redshift Serverless subnets ------------------------------------------------------------------------
def test_8_two_subnets_are_refused(example_text):
    text = example_text.replace("    - subnet-0a1b2c3d4e5f60003\n", "")
    assert "network.subnet_ids" in rejected(text) and "at least 3" in rejected(text)


def test_8_the_workgroup_checks_the_availability_zones_of_its_subnets(rendered):
    subnets = data_sources(rendered, "iac/redshift.tf", "aws_subnet")["workgroup"]
    assert one(subnets, "for_each") == "${toset(var.subnet_ids)}"
    workgroup = resources(rendered, "iac/redshift.tf", "aws_redshiftserverless_workgroup")["this"]
    [check] = preconditions(workgroup)
    assert squeeze(one(check, "condition")) == "${length(local.workgroup_zones)>=local.workgroup_zones_need}"
    assert "availability_zone_id" in rendered["iac/redshift.tf"]


# --- 9. Glue column names -----------------------------------------------------------------------------------
def test_9_catalog_columns_are_declared_as_glue_stores_them(rendered, example_spec):
    tables = resources(rendered, "iac/glue.tf", "aws_glue_catalog_table")
    for name, body in tables.items():
        columns = [one(c, "name") for c in one(body, "storage_descriptor")["columns"]]
        assert columns == [c.lower() for c in columns], name
        assert columns[0] == "op"


# --- 10. network prerequisites --------------------------------------------------------------------------
def test_10_the_source_security_group_admits_dms(rendered, example_text):
    rule = resources(rendered, "iac/dms.tf", "aws_vpc_security_group_ingress_rule")["source_from_dms"]
    assert one(rule, "security_group_id") == "${var.source_security_group_id}"
    assert one(rule, "referenced_security_group_id") == "${aws_security_group.dms.id}"
    assert (one(rule, "from_port"), one(rule, "to_port")) == ("${var.source_port}", "${var.source_port}")
    assert 'count = var.source_security_group_id != null && var.open_source_ingress ? 1 : 0' in rendered["iac/dms.tf"]
    off = example_text.replace("  source_security_group_id: sg-0a1b2c3d4e5f60099\n",
                               "  source_security_group_id: sg-0a1b2c3d4e5f60099\n  open_source_ingress: false\n")
    assert values(parse_spec(off, NAME))["open_source_ingress"] is False


def test_10_egress_to_aws_apis_is_an_explicit_checked_choice(rendered, example_text):
    assert values(parse_spec(example_text, NAME))["network_egress"] == "nat"
    checks = {n: b for block in tree(rendered, "iac/network.tf")["check"] for n, b in block.items()}
    conditions = [one(a, "condition") for a in checks["private_subnets_reach_aws_apis"]["assert"]]
    assert any("subnets_with_default_route" in c for c in conditions)
    assert any("subnets_with_s3_endpoint" in c for c in conditions)
    endpoint = resources(rendered, "iac/network.tf", "aws_vpc_endpoint")["s3"]
    assert one(endpoint, "vpc_endpoint_type") == "Gateway"
    assert one(endpoint, "route_table_ids") == "${var.s3_endpoint_route_table_ids}"
    chosen = example_text.replace("  source_security_group_id: sg-0a1b2c3d4e5f60099\n",
                                  "  source_security_group_id: sg-0a1b2c3d4e5f60099\n  egress: endpoints\n"
                                  "  s3_endpoint_route_table_ids: [rtb-0a1b2c3d4e5f60001]\n")
    got = values(parse_spec(chosen, NAME))
    assert (got["network_egress"], got["s3_endpoint_route_table_ids"]) == ("endpoints", ["rtb-0a1b2c3d4e5f60001"])


# --- 12. cost and retention ---------------------------------------------------------------------------------
def test_12_the_workgroup_has_a_capacity_ceiling(rendered, example_text):
    workgroup = resources(rendered, "iac/redshift.tf", "aws_redshiftserverless_workgroup")["this"]
    assert one(workgroup, "max_capacity") == "${var.redshift_max_capacity}"
    text = example_text.replace("  base_capacity: 8\n", "  base_capacity: 32\n  max_capacity: 16\n")
    assert "warehouse.max_capacity" in rejected(text) and "at least base_capacity" in rejected(text)


def test_12_redshift_log_groups_exist_before_redshift_makes_them(rendered):
    groups = resources(rendered, "iac/redshift.tf", "aws_cloudwatch_log_group")["redshift"]
    assert one(groups, "name") == "/aws/redshift/${var.redshift_namespace}/${each.value}"
    assert one(groups, "retention_in_days") == "${var.redshift_log_retention_days}"
    assert one(groups, "kms_key_id") == "${aws_kms_key.this.arn}"
    namespace = resources(rendered, "iac/redshift.tf", "aws_redshiftserverless_namespace")["this"]
    assert one(namespace, "depends_on") == ["${aws_cloudwatch_log_group.redshift}"]


# --- 14. smaller ---------------------------------------------------------------------------------------------
def test_14_outputs_do_not_index_a_list_that_may_be_empty(rendered):
    assert "endpoint[0]" not in rendered["iac/outputs.tf"]
    assert "try(one(aws_redshiftserverless_workgroup.this.endpoint).address, null)" in rendered["iac/outputs.tf"]


def test_14_the_deploying_docs_lead_with_s3_native_locking():
    from tests.conftest import ROOT

    page = (ROOT / "docs" / "deploying.md").read_text(encoding="utf-8")
    backend = page[page.index("backend:                      # remote state"):]
    assert backend.index("use_lockfile: true") < backend.index("dynamodb_table")


# --- 11. least privilege (the IaC side) -----------------------------------------------------------------------
def test_11_the_log_only_crawler_cannot_write_the_catalog(rendered):
    crawler = data_sources(rendered, "iac/iam.tf", "aws_iam_policy_document")["crawler"]
    [glue] = [s for s in crawler["statement"] if one(s, "sid") == "CrawlTheGlueDatabase"]
    writes = [a for a in one(glue, "actions") if re.match(r"glue:(Create|Update|Delete|BatchCreate|BatchDelete)", a)]
    assert writes == []
    grants = resources(rendered, "iac/lakeformation.tf", "aws_lakeformation_permissions")
    assert one(grants["crawler_database"], "permissions") == ["DESCRIBE"]
    assert one(grants["crawler_tables"], "permissions") == ["DESCRIBE", "SELECT"]


def test_11_landed_files_decrypt_only_through_s3(rendered):
    landing_read = data_sources(rendered, "iac/iam.tf", "aws_iam_policy_document")["landing_read"]
    [decrypt] = [s for s in landing_read["statement"] if one(s, "sid") == "DecryptLandedFiles"]
    condition = one(decrypt, "condition")
    assert (one(condition, "variable"), one(condition, "values")) == (
        "kms:ViaService", ["s3.${local.region}.${local.dns_suffix}"])


def test_11_the_landing_bucket_refuses_uploads_not_encrypted_with_kms(rendered):
    policy = data_sources(rendered, "iac/s3.tf", "aws_iam_policy_document")["landing"]
    [deny] = [s for s in policy["statement"] if one(s, "sid") == "DenyUploadsNotEncryptedWithKms"]
    assert one(deny, "effect") == "Deny" and one(deny, "actions") == ["s3:PutObject"]
    condition = one(deny, "condition")
    assert (one(condition, "test"), one(condition, "variable"), one(condition, "values")) == (
        "StringNotEquals", "s3:x-amz-server-side-encryption", ["aws:kms"])  # a missing header is refused (issue 20)


# --- 13. prerequisites outside the stack ---------------------------------------------------------------------
def test_13_grantees_of_this_account_are_looked_up_at_plan(rendered):
    roles = data_sources(rendered, "iac/lakeformation.tf", "aws_iam_role")["grantee"]
    assert "local.grantees_here" in one(roles, "for_each") and ":role" in one(roles, "for_each")
    users = data_sources(rendered, "iac/lakeformation.tf", "aws_iam_user")["grantee"]
    assert ":user" in one(users, "for_each")
    assert "split(\":\", arn)[4] == local.account_id" in rendered["iac/lakeformation.tf"]


def test_14_an_environment_in_another_account_is_warned_about_what_still_names_the_first(tmp_path, example_text):
    from click.testing import CliRunner

    from dwctl.cli import cli

    other = "210987654321"
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(example_text + f'environments:\n  dev:\n    account_id: "{other}"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["render", "-c", str(spec), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if line.startswith("warning: environments.dev:")]
    fields = [re.search(r"but (\S+) is in account 123456789012", line)[1] for line in warned]
    assert fields == ["source.secret_arn", "source.certificate_arn", "governance.admins[0]",
                      "governance.grants[0].principal", "governance.grants[1].principal",
                      "governance.grants[2].principal"]
    fixed = example_text + (f'environments:\n  dev:\n    account_id: "{other}"\n    source:\n'
                            f'      secret_arn: arn:aws:secretsmanager:eu-west-1:{other}:secret:shop/dms-AbCdEf\n'
                            f'      certificate_arn: arn:aws:dms:eu-west-1:{other}:cert:rds-ca-rsa2048-g1\n'
                            f'    governance:\n      admins: [arn:aws:iam::{other}:role/DataPlatformAdmin]\n')
    spec.write_text(fixed, encoding="utf-8")
    result = CliRunner().invoke(cli, ["render", "-c", str(spec), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if line.startswith("warning:")] == [
        line for line in warned if "grants" in line]


# --- 13. the DMS certificate from the CA bundle -----------------------------------------------------------------
CA_SPEC = ("  certificate_arn: arn:aws:dms:eu-west-1:123456789012:cert:rds-ca-rsa2048-g1   # the imported RDS CA bundle",
           "  ca_bundle_file: certs/rds-global-bundle.pem")


def test_13_the_stack_imports_the_ca_bundle_when_the_spec_names_its_file(example_text):
    text = example_text.replace(*CA_SPEC)
    spec = parse_spec(text, NAME)
    got = values(spec)
    assert (got["source_ca_bundle_file"], got["source_certificate_arn"]) == ("certs/rds-global-bundle.pem", None)
    files = render(spec, NAME)
    certificate = resources(files, "iac/dms.tf", "aws_dms_certificate")["source"]
    assert one(certificate, "certificate_pem") == '${file("${path.module}/../${var.source_ca_bundle_file}")}'
    source = resources(files, "iac/dms.tf", "aws_dms_endpoint")["source"]
    assert one(source, "certificate_arn") == "${local.source_certificate_arn}"


@pytest.mark.parametrize("path", ["../etc/ca.pem", "/etc/ca.pem", "certs/../../ca.pem", "certs/ca.crt", "./ca.pem"])
def test_13_the_ca_bundle_path_stays_relative_and_inside(example_text, path):
    message = rejected(example_text.replace(CA_SPEC[0], f"  ca_bundle_file: {path}"))
    assert "source.ca_bundle_file" in message


def test_13_one_certificate_source_only(example_text):
    text = example_text.replace(CA_SPEC[0], CA_SPEC[0] + "\n" + CA_SPEC[1])
    assert "certificate_arn or ca_bundle_file, not both" in rejected(text)


def test_11_dms_lists_the_landing_bucket_as_its_prerequisites_show(rendered):
    dms = data_sources(rendered, "iac/iam.tf", "aws_iam_policy_document")["dms_s3"]
    [listing] = [s for s in dms["statement"] if "s3:ListBucket" in one(s, "actions")]
    assert one(listing, "resources") == ["${aws_s3_bucket.landing.arn}"] and "condition" not in listing


def test_12_a_hard_usage_limit_deactivates_above_the_soft_one(example_text, rendered):
    assert values(parse_spec(example_text, NAME))["redshift_usage_limit_deactivate_amount"] is None
    text = example_text.replace("    breach_action: emit-metric\n", "    breach_action: emit-metric\n"
                                "    deactivate_amount: 192\n")
    spec = parse_spec(text, NAME)
    assert values(spec)["redshift_usage_limit_deactivate_amount"] == 192
    stop = resources(render(spec, NAME), "iac/redshift.tf", "aws_redshiftserverless_usage_limit")["compute_stop"]
    assert one(stop, "breach_action") == "deactivate"
    assert one(stop, "amount") == "${var.redshift_usage_limit_deactivate_amount}"
    too_low = text.replace("deactivate_amount: 192", "deactivate_amount: 96")
    assert "warehouse.usage_limit.deactivate_amount" in rejected(too_low) and "must exceed amount" in rejected(too_low)
