"""The rendered freshness alarms and the job's right to feed them: the metric the job publishes
(load_job.FRESHNESS_METRIC, in the namespace it is given) is the one the alarms watch, and the job's role
may publish only there (CloudWatch User Guide, iam-cw-condition-keys-namespace.html: PutMetricData takes
no resource; the cloudwatch:namespace condition limits it). The alarms' plan is checked in the native
Terraform tests (templates/iac/tests/guards.tftest.hcl.j2, run by tests/gates/test_real_terraform.py)."""

from __future__ import annotations

import json

import hcl2
import pytest

from dwctl.render.engine import render
from dwctl.spec.read import parse_spec
from dwctl.warehouse import load_job
from tests.conftest import EXAMPLE


def resources(text: str) -> dict[str, dict]:
    tree = hcl2.loads(text)
    return {f"{kind}.{name}": body for block in tree.get("resource", []) for kind, named in block.items()
            for name, body in named.items()}


def test_the_job_publishes_where_the_alarms_look(rendered):
    monitoring = resources(rendered["iac/monitoring.tf"])
    job = resources(rendered["iac/loader_job.tf"])["aws_glue_job.loader"]
    assert job["default_arguments"][0]["--metric_namespace"] == "${local.metric_namespace}"
    for name in ("aws_cloudwatch_metric_alarm.freshness", "aws_cloudwatch_metric_alarm.table_freshness"):
        alarm = monitoring[name]
        assert alarm["namespace"] == ["${local.metric_namespace}"] and alarm["metric_name"] == [load_job.FRESHNESS_METRIC]
        assert alarm["treat_missing_data"] == ["breaching"] and alarm["statistic"] == ["Maximum"]
    assert 'metric_namespace = "dwctl/${local.name}"' in rendered["iac/monitoring.tf"]


def test_the_job_role_may_publish_only_in_its_namespace(rendered):
    text = rendered["iac/loader_job.tf"]
    statement = text.split('sid       = "PublishFreshnessInOwnNamespace"')[1].split("\n  }\n")[0]
    assert 'actions   = ["cloudwatch:PutMetricData"]' in statement
    assert 'variable = "cloudwatch:namespace"' in statement and "values   = [local.metric_namespace]" in statement


def test_thresholds_come_from_the_spec(example_text):
    text = example_text.replace("  analytics_schema: analytics\n", "  analytics_schema: analytics\n  freshness_minutes: 30\n", 1)
    text = text.replace("    name: products\n", "    name: products\n    freshness_minutes: 1440\n", 1)
    files = render(parse_spec(text, "pipeline.yaml"), "pipeline.yaml")
    tfvars = json.loads(files["iac/terraform.tfvars.json"])
    assert tfvars["freshness_alarm_minutes"] == 30 and tfvars["table_freshness_alarm_minutes"] == {"products": 1440}
    config = json.loads(files["iac/glue_scripts/load_job_config.json"])
    assert config["freshness_own_alarm"] == ["products"]


@pytest.mark.parametrize("where, value", [("warehouse", 4), ("warehouse", 10081), ("table", 0)])
def test_a_threshold_cloudwatch_cannot_alarm_on_is_refused_with_its_line(tmp_path, where, value):
    from click.testing import CliRunner

    from dwctl.cli import cli

    text = EXAMPLE.read_text(encoding="utf-8")
    if where == "warehouse":
        text = text.replace("  analytics_schema: analytics\n", f"  analytics_schema: analytics\n  freshness_minutes: {value}\n", 1)
    else:
        text = text.replace("    name: orders\n", f"    name: orders\n    freshness_minutes: {value}\n", 1)
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["render", "-c", str(spec), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and "freshness_minutes" in result.output and f"{spec}:" in result.output
    assert not (tmp_path / "out").exists()
