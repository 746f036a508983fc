"""init / plan / apply / destroy / output: the safety rules, with the real Terraform on PATH (offline).

The rendered AWS stack needs the AWS provider, which cannot be downloaded here, so the Terraform runs
use provider-less fixture stacks shaped like the rendered one (same tfvars, same env files). `plan`,
`init` and `destroy` refuse an iac/ the spec would render differently, so on fixtures those steps run
through dwctl.deploy.actions, the functions the commands call; `apply` and `output` run through the CLI.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dwctl.cli import cli
from dwctl.deploy import actions as deploy
from dwctl.deploy import plan_summary as plansummary
from dwctl.deploy import terraform
from dwctl.errors import ToolError, UsageError
from tests.support.tf_fixtures import (
    ENVIRONMENTS,
    fake_terraform,
    make_project,
    planned,
    read_json,
    spec_text,
    stack_and_driver,
    terraform_version,
)


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


def cli_args(root: Path, *rest: str) -> list[str]:
    return [*rest, "-c", str(root / "spec.yaml"), "-o", str(root)]


@pytest.fixture
def project(tmp_path) -> Path:
    return make_project(tmp_path / "proj")


# --- the commands exist and stay light ----------------------------------------------------------
def test_commands_are_registered_and_import_nothing_heavy():
    result = run("--help")
    for name in ("init", "plan", "apply", "destroy", "output"):
        assert f"\n  {name} " in result.output
    code = ("import sys, dwctl.deploy.commands as m; m.plan, m.apply; "
            "print([x for x in ('python_terraform', 'pydantic', 'jinja2', 'hcl2') if x in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- init / plan / apply / output, per environment ---------------------------------------------
def test_plan_then_apply_exactly_that_plan_per_environment(project):
    stack, code, summary = planned(project, "dev")
    assert code == 2
    assert dict(summary.outputs)["label"] == "create" and summary.changes == ()
    assert (project / "iac/.dwctl/dev/terraform/environment").read_text() == "dev"  # its own data dir
    record = read_json(stack.fingerprint_path("plan"))
    assert record["env"] == "dev" and record["exit_code"] == 2
    assert record["terraform"]["version"] == terraform_version()
    assert "env/dev.tfvars.json" in record["files"] and "main.tf" in record["files"]
    assert (project / "iac/.dwctl/dev/plan.log").read_text().count("Changes to Outputs") == 1
    assert (project / "iac/.dwctl/.gitignore").read_text() == "*\n"  # plans can hold secrets

    refused = run(*cli_args(project, "apply", "--env", "dev"))  # stdin is not a terminal
    assert refused.exit_code == 2
    assert "not a terminal" in refused.output and "pass --yes" in refused.output
    assert stack.plan_path("plan").is_file()

    applied = run(*cli_args(project, "apply", "--env", "dev", "--yes"))
    assert applied.exit_code == 0, applied.output
    assert f"using terraform {terraform_version()} at" in applied.output
    assert "Apply complete!" in applied.output
    assert not stack.plan_path("plan").exists() and not stack.fingerprint_path("plan").exists()  # applied once
    assert "no saved plan for dev" in run(*cli_args(project, "apply", "--env", "dev", "--yes")).output

    out = run(*cli_args(project, "output", "--env", "dev", "--json"))
    assert out.exit_code == 0, out.output
    values = json.loads(out.stdout)
    assert values["label"]["value"] == "shop-dev-dev"
    assert values["capacity"]["value"] == 16 and values["multi_az"]["value"] is False  # dev's overrides
    assert values["account_id"]["value"] == "210987654321"
    assert values["upstream_bucket"]["value"] == "shop-upstream-bucket"

    prod, code, _ = planned(project, "prod")
    assert code == 2
    assert run(*cli_args(project, "apply", "--yes")).exit_code == 0  # --env defaults to the spec's
    prod_values = json.loads(run(*cli_args(project, "output", "--json")).stdout)
    assert prod_values["capacity"]["value"] == 8 and prod_values["label"]["value"] == "shop-prod-prod"
    assert sorted(p.name for p in (project / "iac/terraform.tfstate.d").iterdir()) == ["dev", "prod"]

    _, code, summary = planned(project, "dev")
    assert code == 0 and not summary.has_changes
    again = run(*cli_args(project, "apply", "--env", "dev"))
    assert again.exit_code == 0 and "Nothing to apply." in again.output  # no prompt needed for nothing


def test_pass_through_reaches_terraform(project):
    opts = deploy.Options(lock_timeout="2s", parallelism=3, targets=("data.terraform_remote_state.upstream",),
                          extra=("-var", "project=other"))
    stack, code, summary = planned(project, "dev", opts)
    assert code == 2
    log = (project / "iac/.dwctl/dev/plan.log").read_text()
    assert "-target option" in log  # terraform's own warning about resource targeting
    shown = deploy.driver(stack, terraform.find(), echo=None).show_json(stack.rel("plan.tfplan"))
    assert shown["variables"]["project"]["value"] == "other"
    report = deploy.report(stack, code, summary)
    assert report["env"] == "dev" and report["exit_code"] == 2
    assert report["plan_file"].endswith("iac/.dwctl/dev/plan.tfplan")
    assert json.loads(json.dumps(report))["counts"] == {"create": 0, "update": 0, "replace": 0, "delete": 0}


def test_stale_plans_are_refused_saying_what_changed(project, tmp_path):
    stack, code, _ = planned(project, "dev")
    var_file = project / "iac/env/dev.tfvars.json"
    original = var_file.read_text()
    var_file.write_text(original.replace('"redshift_base_capacity": 16', '"redshift_base_capacity": 24'))
    (project / "iac/extra.tf").write_text("")
    result = run(*cli_args(project, "apply", "--env", "dev", "--yes"))
    assert result.exit_code == 1
    assert "refusing to apply the saved plan for dev: it is stale" in result.output
    assert "env/dev.tfvars.json (changed), extra.tf (added)" in result.output
    assert "Run `dwctl plan --env dev` again." in result.output
    var_file.write_text(original)
    (project / "iac/extra.tf").unlink()

    changed_spec = project / "spec.yaml"
    changed_spec.write_text(changed_spec.read_text().replace("CostCenter: \"4711\"", "CostCenter: \"4712\""))
    result = run(*cli_args(project, "apply", "--env", "dev", "--yes"))
    assert result.exit_code == 1 and "the spec changed" in result.output
    changed_spec.write_text(spec_text())

    other = tmp_path / "bin" / "terraform"
    other.parent.mkdir()
    other.symlink_to(terraform.find().path)
    result = run(*cli_args(project, "apply", "--env", "dev", "--yes", "--terraform-bin", str(other)))
    assert result.exit_code == 1
    assert f"now terraform {terraform_version()} at {other}" in result.output

    stack.plan_path("plan").write_bytes(stack.plan_path("plan").read_bytes() + b"x")
    result = run(*cli_args(project, "apply", "--env", "dev", "--yes"))
    assert result.exit_code == 1 and "plan.tfplan is missing or was modified" in result.output
    assert "Apply complete" not in result.output


def test_commands_need_an_initialised_environment(project):
    result = run(*cli_args(project, "output", "--env", "dev"))
    assert result.exit_code == 1
    assert "environment 'dev' is not initialised" in result.output and "dwctl init --env dev" in result.output
    assert run(*cli_args(project, "apply", "--env", "qa")).output.count("unknown environment 'qa'") == 1


# --- refusing stale iac/, bad binaries, bad backends --------------------------------------------
def test_plan_refuses_iac_the_spec_would_render_differently(project, tmp_path):
    result = run(*cli_args(project, "plan", "--env", "dev"))
    assert result.exit_code == 1  # 2 would mean "changes" to a script reading -detailed-exitcode
    assert re.search(r"/iac is stale: \d+ file\(s\) differ from what .*spec.yaml renders \(iac/", result.output)
    assert "Run `dwctl render` first, or pass --render." in result.output
    assert not (project / "iac/.dwctl/dev/plan.tfplan").exists()
    assert run(*cli_args(project, "plan", "--env", "qa")).exit_code == 1
    assert run(*cli_args(project, "plan", "--no-such-option")).exit_code == 1
    assert run(*cli_args(project, "apply", "--env", "qa")).exit_code == 2  # an unknown environment is a spec error: 2 (plan alone maps it to 1)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "spec.yaml").write_text(spec_text(""))
    assert run(*cli_args(fresh, "init")).exit_code == 1
    assert not (fresh / "iac").exists()  # refused before anything was written


def test_missing_terraform_is_a_clear_error(project, tmp_path):
    result = run(*cli_args(project, "output", "--terraform-bin", str(tmp_path / "nope")))
    assert result.exit_code == 1
    assert "no such executable" in result.output and "developer.hashicorp.com/terraform/install" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run(*cli_args(project, "output"), env={"PATH": str(empty), "DWCTL_TERRAFORM": None})
    assert result.exit_code == 1 and "neither `terraform` nor `tofu` is on PATH" in result.output
    assert "Traceback" not in result.output


def test_s3_backend_needs_a_backend_block_and_a_new_enough_terraform(tmp_path):
    backend = ("\nbackend:\n  bucket: shop-tfstate-123456789012\n  dynamodb_table: shop-tf-locks\n")
    root = make_project(tmp_path / "p", backend + ENVIRONMENTS)
    assert (root / "iac/env/dev.s3.tfbackend").is_file()
    stack, tf = stack_and_driver(root, "dev")
    with pytest.raises(UsageError, match='no .tf file in .* declares `backend "s3" {}`'):
        deploy.init(stack, tf)
    lockfile = make_project(tmp_path / "q", backend.replace("dynamodb_table: shop-tf-locks", "use_lockfile: true")
                            + ENVIRONMENTS)
    stack, tf = stack_and_driver(lockfile, "dev")
    if tf.binary.version < (1, 10, 0):
        with pytest.raises(ToolError, match=r"use_lockfile, which needs Terraform >= 1\.10"):
            deploy.init(stack, tf)
    else:  # new enough: the version check passes and the missing backend block is what stops init
        with pytest.raises(UsageError, match='no .tf file in .* declares `backend "s3" {}`'):
            deploy.init(stack, tf)


# --- destroy --------------------------------------------------------------------------------------
def test_destroy_is_guarded_confirmed_and_complete(tmp_path):
    root = make_project(tmp_path / "p", ENVIRONMENTS + "protect_data: false\n")
    stack, code, _ = planned(root, "dev")
    assert run(*cli_args(root, "apply", "--env", "dev", "--yes")).exit_code == 0
    _, tf = stack_and_driver(root, "dev")
    said: list[str] = []

    (root / "iac/guards.tf").write_text('resource "aws_s3_bucket" "landing" {\n  lifecycle {\n'
                                        '    prevent_destroy = true\n  }\n}\n')
    with pytest.raises(UsageError) as err:
        deploy.destroy(stack, tf, ask=lambda q: "dev", echo=said.append)
    assert "aws_s3_bucket.landing (guards.tf)" in err.value.message and "protect_data: false" in err.value.message
    (root / "iac/guards.tf").unlink()

    with pytest.raises(UsageError, match="pass --yes to destroy dev"):
        deploy.destroy(stack, tf, ask=None, echo=said.append)
    with pytest.raises(deploy.Aborted, match="'prod' is not 'dev'; nothing was destroyed"):
        deploy.destroy(stack, tf, ask=lambda q: "prod", echo=said.append)
    assert json.loads(tf.output(as_json=True))["label"]["value"] == "shop-dev-dev"  # still there

    questions: list[str] = []
    assert deploy.destroy(stack, tf, ask=lambda q: questions.append(q) or "dev", echo=said.append) == 0
    assert "Type the environment name" in questions[0]
    assert json.loads(tf.output(as_json=True)) == {}
    assert not stack.plan_path("destroy").exists()
    log = (root / "iac/.dwctl/dev/destroy.log").read_text()
    assert "-> null" in log and "Apply complete!" in log  # the destroy plan, then applying exactly it
    # Terraform 1.0 lists every output as deleted in any destroy plan; with none left there is nothing
    (root / "iac/main.tf").write_text('variable "project" {\n  default = null\n}\n')
    assert deploy.destroy(stack, tf, yes=True, echo=said.append) == 0 and said[-1] == "Nothing to destroy."


def test_destroy_refuses_while_the_spec_protects_data(tmp_path, monkeypatch):
    (tmp_path / "config").mkdir()
    (tmp_path / "config/pipeline.yaml").write_text(spec_text(""))
    monkeypatch.chdir(tmp_path)
    assert run("render").exit_code == 0
    result = run("destroy", "--yes")
    assert result.exit_code == 2
    assert "refusing to destroy prod: the spec protects its data" in result.output
    assert "set `protect_data: false` in the spec" in result.output
    assert not (tmp_path / "iac/.dwctl/prod/init.json").exists()


# --- Ctrl-C through the CLI -----------------------------------------------------------------------
def test_ctrl_c_reaches_terraform_as_one_sigint_and_dwctl_waits(tmp_path, monkeypatch):
    (tmp_path / "config").mkdir()
    (tmp_path / "config/pipeline.yaml").write_text(spec_text(""))
    monkeypatch.chdir(tmp_path)
    fake = fake_terraform(tmp_path)
    monkeypatch.setenv("FAKE_TF_RECORD", str(tmp_path / "record.json"))
    monkeypatch.setenv("FAKE_TF_SIGNAL_PARENT", "1")  # the stand-in "presses Ctrl-C" at dwctl once started
    result = run("init", "--render", "--terraform-bin", str(fake))
    assert result.exit_code == 130
    record = read_json(tmp_path / "record.json")
    assert record["signals"] == [{"signal": "SIGINT", "sender": os.getpid()}] and record["exited"] == "cleanly"
    assert "rendered:" in result.output  # --render rendered the stale tree first
    assert "asked terraform to stop cleanly" in result.output
    assert "fake terraform: stopping cleanly after SIGINT" in result.output  # streamed after the interrupt
    assert "interrupted: `terraform init` stopped after Ctrl-C" in result.output
    log = (tmp_path / "iac/.dwctl/prod/init.log").read_text()
    assert log == "fake terraform: init started\nfake terraform: stopping cleanly after SIGINT\n"


# --- the plan summary -----------------------------------------------------------------------------
def test_summary_counts_orders_and_flags_data_loss():
    def rc(address, actions, mode="managed"):
        return {"address": address, "mode": mode, "type": address.split(".")[-2], "change": {"actions": actions}}

    plan = {"format_version": "0.2", "resource_changes": [
        rc("aws_s3_bucket.landing", ["delete", "create"]),
        rc("aws_glue_catalog_table.orders", ["delete"]),
        rc("aws_iam_role.dms", ["create", "delete"]),
        rc("aws_redshiftserverless_workgroup.this", ["update"]),
        rc("aws_glue_catalog_table.customers", ["update"]),
        rc("module.x.aws_dms_replication_task.cdc", ["create"]),
        rc("aws_kms_key.landing", ["no-op"]),
        rc("data.aws_caller_identity.current", ["read"], mode="data"),
    ], "output_changes": {"bucket": {"actions": ["update"]}, "same": {"actions": ["no-op"]}}}
    summary = plansummary.summarize(plan)
    assert [(c.action, c.address) for c in summary.changes] == [
        ("create", "module.x.aws_dms_replication_task.cdc"),
        ("update", "aws_glue_catalog_table.customers"),
        ("update", "aws_redshiftserverless_workgroup.this"),
        ("replace", "aws_iam_role.dms"),
        ("replace", "aws_s3_bucket.landing"),
        ("delete", "aws_glue_catalog_table.orders"),
    ]
    assert summary.counts == {"create": 1, "update": 2, "replace": 2, "delete": 1}
    assert [c.address for c in summary.at_risk] == ["aws_s3_bucket.landing", "aws_glue_catalog_table.orders"]
    assert plansummary.headline(summary) == "1 to create, 2 to update, 2 to replace, 1 to delete; 1 output(s) change"
    assert "  replace  aws_s3_bucket.landing   <-- HOLDS DATA" in plansummary.table(summary).splitlines()
    loud = plansummary.warning(summary)
    assert loud.startswith("!! WARNING: DATA LOSS") and "delete   aws_glue_catalog_table.orders" in loud
    assert plansummary.Summary.from_dict(summary.to_dict()) == summary  # survives the fingerprint file
    calm = plansummary.summarize({"resource_changes": [rc("aws_s3_bucket.landing", ["update"])]})
    assert plansummary.warning(calm) == "" and not calm.at_risk
    assert plansummary.headline(plansummary.summarize({})) == "No changes."


def test_rendered_stack_carries_guards_exactly_while_protect_data(tmp_path):
    """The real templates: guards on the data-holding resources, gone with `protect_data: false`."""
    from dwctl.deploy.guards import guards
    from dwctl.render.to_disk import render_to_disk

    found = {}
    for flag in ("true", "false"):
        root = tmp_path / flag
        root.mkdir()
        (root / "spec.yaml").write_text(spec_text(f"protect_data: {flag}\n"))
        assert render_to_disk(root / "spec.yaml", root, echo=lambda _: None) == 0
        found[flag] = guards(root / "iac")
    assert {g.address for g in found["true"]} >= {"aws_s3_bucket.landing"}
    assert all(g.holds_data for g in found["true"])
    assert found["false"] == []
