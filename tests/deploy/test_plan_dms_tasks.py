"""`dwctl plan` and DMS tasks (issue 14): a table moved to another task is called out (its full load restarts),
read from a real `terraform show -json` plan; and the instance-size warning reaches the command's output."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dwctl.cli import cli
from dwctl.deploy import plan_summary as plansummary
from dwctl.spec.dms_tasks import assign
from dwctl.spec.read import parse_spec
from tests.support.many_tables import many_tables_text
from tests.support.realtf import real_provider_env, terraform  # noqa: F401  (fixture)
from tests.support.tf_fixtures import ENVIRONMENTS, make_project

ARN = "arn:aws:dms:eu-west-1:123456789012"


def task_mappings(text: str) -> dict[str, str]:
    """Task -> table_mappings JSON with one selection rule per table, grouped as dwctl groups the spec."""
    spec = parse_spec(text, "test.yaml")
    return {task: json.dumps({"rules": [
        {"rule-type": "selection", "rule-id": str(i + 1), "rule-name": f"select-{t.schema_}-{t.name}",
         "rule-action": "include", "object-locator": {"schema-name": t.schema_, "table-name": t.name}}
        for i, t in enumerate(tables)]}) for task, tables in assign(spec).items()}


BEFORE = many_tables_text(6, extras={2: "    task: big\n", 4: "    task: big\n"})
AFTER = many_tables_text(6, extras={2: "    task: big\n", 3: "    task: big\n"})  # t0004 back, t0003 in

CONFIG = """terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

provider "aws" {
  region                      = "eu-west-1"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}

variable "mappings" {
  type = map(string)
}

resource "aws_dms_replication_task" "this" {
  for_each                 = var.mappings
  replication_task_id      = "shop-prod-${each.key}"
  migration_type           = "full-load-and-cdc"
  replication_instance_arn = "%(arn)s:rep:INSTANCE"
  source_endpoint_arn      = "%(arn)s:endpoint:SOURCE"
  target_endpoint_arn      = "%(arn)s:endpoint:TARGET"
  table_mappings           = each.value
}
""" % {"arn": ARN}


def state_with(mappings: dict[str, str]) -> dict:
    """A Terraform state holding one applied task per entry (as an apply would have left it)."""
    instances = [{"index_key": task, "schema_version": 0, "attributes": {
        "id": f"shop-prod-{task}", "replication_task_id": f"shop-prod-{task}", "migration_type": "full-load-and-cdc",
        "replication_instance_arn": f"{ARN}:rep:INSTANCE", "source_endpoint_arn": f"{ARN}:endpoint:SOURCE",
        "target_endpoint_arn": f"{ARN}:endpoint:TARGET", "table_mappings": value,
        "replication_task_arn": f"{ARN}:task:{task.upper()}", "tags": {}, "tags_all": {}}}
        for task, value in mappings.items()]
    return {"version": 4, "terraform_version": "1.11.0", "serial": 1, "outputs": {},
            "lineage": "00000000-0000-4000-8000-000000000014",
            "resources": [{"mode": "managed", "type": "aws_dms_replication_task", "name": "this",
                           "provider": 'provider["registry.terraform.io/hashicorp/aws"]', "instances": instances}]}


def test_a_table_moved_between_tasks_is_called_out_from_a_real_plan(real_provider_env, tmp_path):
    """The real provider plans the move offline: the state says what was applied, -refresh=false keeps
    Terraform from asking AWS, and `show -json` is the document `dwctl plan` reads."""
    (tmp_path / "main.tf").write_text(CONFIG)
    (tmp_path / "terraform.tfstate").write_text(json.dumps(state_with(task_mappings(BEFORE))))
    (tmp_path / "after.tfvars.json").write_text(json.dumps({"mappings": task_mappings(AFTER)}))
    terraform(real_provider_env, tmp_path, "init", "-input=false")
    terraform(real_provider_env, tmp_path, "plan", "-refresh=false", "-input=false", "-var-file=after.tfvars.json",
              "-out=move.tfplan")
    plan = json.loads(terraform(real_provider_env, tmp_path, "show", "-json", "move.tfplan").stdout)
    summary = plansummary.summarize(plan)
    assert summary.moves == (plansummary.Move("public.t0003", "full-load-and-cdc", "big"),
                             plansummary.Move("public.t0004", "big", "full-load-and-cdc"))
    assert {c.address: c.action for c in summary.changes} == {'aws_dms_replication_task.this["big"]': "update",
                                                              'aws_dms_replication_task.this["full-load-and-cdc"]':
                                                              "update"}
    loud = plansummary.warning(summary)
    assert "2 table(s) move to another DMS task, so their FULL LOAD RESTARTS" in loud
    assert "public.t0003: task full-load-and-cdc -> big" in loud and "DATA LOSS" not in loud
    assert plansummary.Summary.from_dict(json.loads(json.dumps(summary.to_dict()))) == summary


def test_added_tables_and_new_tasks_are_no_moves():
    """A table new to the source, or a whole new task, is a first full load, not a restart."""
    before, after = task_mappings(many_tables_text(3)), task_mappings(many_tables_text(4, extras={3: "    task: x\n"}))
    plan = {"resource_changes": [
        {"address": f'aws_dms_replication_task.this["{task}"]', "mode": "managed", "type": "aws_dms_replication_task",
         "name": "this", "index": task, "change": {"actions": ["create"] if task not in before else ["update"],
                                                   "before": {"table_mappings": before[task]} if task in before else None,
                                                   "after": {"table_mappings": after[task]}}}
        for task in after]}
    summary = plansummary.summarize(plan)
    assert summary.moves == () and plansummary.warning(summary) == ""


def test_plan_warns_when_the_environment_instance_is_small_for_its_tasks(tmp_path: Path):
    """dev runs dms.t3.small (2 vCPUs, 2 GiB): 300 tables in 3 default tasks are too many for it."""
    project = make_project(tmp_path / "proj", ENVIRONMENTS)
    (project / "spec.yaml").write_text(many_tables_text(300) + ENVIRONMENTS)
    result = CliRunner().invoke(cli, ["plan", "--env", "dev", "-c", str(project / "spec.yaml"), "-o", str(project)])
    assert result.exit_code == 1  # the fixture iac/ is stale for this spec: plan stops after the warnings
    assert ("warning: dev: dms.t3.small is too small for 300 table(s) in 3 DMS task(s): each task may keep 1 GiB"
            in result.output)
    assert "together they load 24 tables or segments at once" in result.output
    prod = CliRunner().invoke(cli, ["plan", "-c", str(project / "spec.yaml"), "-o", str(project)])
    assert "warning: prod: dms.t3.medium is too small for 300 table(s) in 3 DMS task(s)" in prod.output
