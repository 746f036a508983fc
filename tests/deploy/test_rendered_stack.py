"""init / plan / apply / output / destroy on the rendered stack itself, not a provider-less fixture.

Two halves, both with the real Terraform core and the real hashicorp/aws provider from the offline
mirror (tests/support/realtf.py), and nothing reaching beyond the loopback: fake credentials, no
metadata endpoint, and every proxy variable pointing at a closed loopback port.

- The guarded destroy is refused by Terraform itself: `dwctl init` of the rendered example, then
  dwctl's destroy plan (`-refresh=false`, so no AWS read) against a state holding the landing
  bucket. With `protect_data: true` Terraform stops with its own "Instance cannot be destroyed";
  with `protect_data: false` the same plan deletes the bucket, and `dwctl destroy` gets as far as
  asking for confirmation. The provider is configured offline by an override file, as a CI job with
  no account would (skip_credentials_validation, skip_requesting_account_id, skip_metadata_api_check).
- apply, output and destroy: `dwctl test` runs a native test that plans, applies (in memory,
  `mock_provider "aws"`), checks the outputs a user wires next, and destroys what it applied.
  The AWS API is the one boundary mocked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dwctl.cli import cli
from dwctl.deploy import actions as deploy
from dwctl.deploy import terraform
from dwctl.errors import ToolError
from dwctl.spec.read import load_spec
from tests.conftest import EXAMPLE
from tests.support.mock_apply import lifecycle_test
from tests.support.realtf import OFFLINE_PROVIDER, real_provider_env  # noqa: F401  (fixture)

BUCKET = "shop-prod-landing-123456789012"
PROVIDER = 'provider["registry.terraform.io/hashicorp/aws"]'


@pytest.fixture
def offline(real_provider_env, monkeypatch):  # noqa: F811
    """The real-provider environment, with every proxy on a closed loopback port: an attempt to reach
    AWS fails at once instead of leaving the machine."""
    env = {**real_provider_env, **{k: "http://127.0.0.1:9" for k in ("HTTPS_PROXY", "HTTP_PROXY",
                                                                        "https_proxy", "http_proxy")}}
    env["NO_PROXY"] = env["no_proxy"] = ""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def project(root: Path, *, protect_data: bool) -> Path:
    """root/spec.yaml (the bundled example) rendered by `dwctl render` into root/iac."""
    root.mkdir(parents=True)
    text = EXAMPLE.read_text(encoding="utf-8") + ("" if protect_data else "\nprotect_data: false\n")
    (root / "spec.yaml").write_text(text, encoding="utf-8")
    done = CliRunner().invoke(cli, ["render", "-c", str(root / "spec.yaml"), "-o", str(root)])
    assert done.exit_code == 0, done.output
    return root


def holding_the_landing_bucket(root: Path, stack: deploy.Stack) -> None:
    """The environment's local state (workspace `prod`), as after an apply: the landing bucket in it."""
    state = {"version": 4, "terraform_version": "1.5.0", "serial": 1, "lineage": "dwctl-test-lineage",
             "outputs": {"landing_bucket_name": {"value": BUCKET, "type": "string"}},
             "resources": [{"mode": "managed", "type": "aws_s3_bucket", "name": "landing", "provider": PROVIDER,
                            "instances": [{"schema_version": 0, "attributes": {"id": BUCKET, "bucket": BUCKET}}]}]}
    path = root / "iac" / "terraform.tfstate.d" / stack.env.workspace / "terraform.tfstate"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state), encoding="utf-8")


def initialised(root: Path):
    (root / "iac" / "zz_offline_override.tf").write_text(OFFLINE_PROVIDER, encoding="utf-8")
    stack = deploy.stack_for(load_spec(root / "spec.yaml"), root, None)
    tf = deploy.driver(stack, terraform.find(), echo=None)
    deploy.init(stack, tf, echo=lambda _: None)
    holding_the_landing_bucket(root, stack)
    return stack, tf


def test_terraform_itself_refuses_to_destroy_the_guarded_stack(offline, tmp_path):
    root = project(tmp_path / "guarded", protect_data=True)
    stack, tf = initialised(root)
    assert stack.env.workspace == "prod" and (stack.dir / "init.json").is_file()
    with pytest.raises(ToolError) as refused:  # dwctl's own refusal bypassed: Terraform's is the one tested
        deploy.plan(stack, tf, deploy.Options(extra=("-refresh=false",)), kind="destroy")
    detail = refused.value.detail
    assert "Error: Instance cannot be destroyed" in detail and "on s3.tf line" in detail
    assert "aws_s3_bucket.landing has lifecycle.prevent_destroy set" in detail
    assert not stack.plan_path("destroy").exists(), "no destroy plan is left to apply"
    out = CliRunner().invoke(cli, ["output", "--json", "-c", str(root / "spec.yaml"), "-o", str(root)])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["landing_bucket_name"]["value"] == BUCKET  # `dwctl output` reads the same state


def test_without_protect_data_the_same_destroy_plan_deletes_the_bucket(offline, tmp_path):
    root = project(tmp_path / "unguarded", protect_data=False)
    stack, tf = initialised(root)
    code, summary = deploy.plan(stack, tf, deploy.Options(extra=("-refresh=false",)), kind="destroy")
    assert code == 2 and "aws_s3_bucket.landing" in json.dumps(summary.to_dict())
    done = CliRunner().invoke(cli, ["destroy", "-c", str(root / "spec.yaml"), "-o", str(root), "--", "-refresh=false"])
    assert done.exit_code != 0
    assert "pass --yes to destroy prod" in done.output, done.output  # planned by Terraform, stopped for confirmation


LIFECYCLE_RUNS = '''
run "plan" {
  command = plan
}

run "apply" {
  command = apply

  assert {
    condition     = output.loader_job_name == "shop-prod-load-merge" && output.redshift_workgroup_name == "shop-prod"
    error_message = "The outputs a user wires next must name the applied job and workgroup."
  }

  assert {
    condition     = output.glue_database_name == aws_glue_catalog_database.this.name && output.redshift_database_name == "shop"
    error_message = "The catalog and database outputs must name what was applied."
  }

  assert {
    condition     = length(aws_redshiftdata_statement.loader_grant) == 6 && !contains(keys(aws_glue_job.loader.default_arguments), "--secret_arn")
    error_message = "The load job must get its own database user and no admin secret."
  }
}
'''


def test_dwctl_test_applies_the_rendered_stack_reads_its_outputs_and_destroys_it(offline, tmp_path, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # the mocks need no credentials at all
        monkeypatch.delenv(key)
    root = project(tmp_path / "lifecycle", protect_data=False)
    tests = root / "iac" / "tests"
    (tests / "lifecycle.tftest.hcl").write_text(
        lifecycle_test((tests / "guards.tftest.hcl").read_text(encoding="utf-8"), LIFECYCLE_RUNS), encoding="utf-8")
    done = CliRunner().invoke(cli, ["test", "-c", str(root / "spec.yaml"), "-o", str(root)], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    block = done.output.split("tests/lifecycle.tftest.hcl... in progress", 1)[1]
    assert re.findall(r'run "(\w+)"\.\.\. (\w+)', block) == [("plan", "pass"), ("apply", "pass")], done.output
    assert "tests/lifecycle.tftest.hcl... tearing down\ntests/lifecycle.tftest.hcl... pass" in block
    assert "left the following resources in state" not in done.output  # the destroy removed all it applied
