"""`dwctl validate`: every check passing on a fresh render, and each failing (or skipping) for its reason.

Real tools throughout: the shared hashicorp/aws schema, the real terraform on PATH for fmt and
validate (validate on provider-less stacks, since the AWS provider cannot be installed here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dwctl.cli import cli
from tests.conftest import EXAMPLE
from tests.support.tf_fixtures import terraform_version

BOGUS = 'resource "aws_s3_bucket" "by_hand" {\n  bogus_argument = true\n}\n'


def validate(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, ["validate", *args], catch_exceptions=False, env=env)


def checks_of(result) -> dict[str, dict]:
    data = json.loads(result.stdout)
    return {c["name"]: c for c in data["checks"]}


def statuses(result) -> dict[str, str]:
    return {name: c["status"] for name, c in checks_of(result).items()}


@pytest.fixture
def fresh(tmp_path) -> Path:
    root = tmp_path / "out"
    done = CliRunner().invoke(cli, ["render", "-c", str(EXAMPLE), "-o", str(root)], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return root


def args(root: Path, *rest: str, spec: Path = EXAMPLE) -> list[str]:
    return ["-c", str(spec), "-o", str(root), *rest]


def test_fresh_render_passes_every_check_it_can_run(fresh, provider_schema_path, terraform_bin):
    result = validate(*args(fresh, "--provider-schema", str(provider_schema_path)))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["STATUS", "CHECK", "DETAIL"]
    assert [line.split()[0] for line in lines[1:6]] == ["pass", "pass", "pass", "pass", "skip"]
    assert "terraform validate" in lines[5] and "run `dwctl init`" in lines[5]  # the reason it skipped
    assert lines[-1] == "validate: 4 pass, 0 fail, 1 skip"

    as_json = validate(*args(fresh, "--provider-schema", str(provider_schema_path), "--format", "json"))
    assert as_json.exit_code == 0
    data = json.loads(as_json.stdout)
    assert data["ok"] is True and data["counts"] == {"pass": 4, "fail": 0, "skip": 1}
    assert [c["name"] for c in data["checks"]] == ["spec", "rendered", "fmt", "provider schema", "terraform validate"]
    assert "byte for byte what dwctl renders" in data["checks"][2]["detail"]  # no formatter run needed
    tf_files = len(list((fresh / "iac").glob("*.tf")))
    assert data["checks"][3]["detail"] == f"{tf_files} file(s) match {provider_schema_path.as_posix()}"


def test_without_a_schema_or_init_the_schema_check_skips_saying_why(fresh, terraform_bin):
    result = validate(*args(fresh, "--format", "json"))
    assert result.exit_code == 0, result.output
    schema = checks_of(result)["provider schema"]
    assert schema["status"] == "skip"
    assert "no --provider-schema" in schema["detail"] and "not initialised" in schema["detail"]


def test_stale_files_fail_and_are_listed(fresh, provider_schema_path):
    (fresh / "sql" / "02_load_staging.sql").write_text("-- edited by hand\n")
    (fresh / "iac" / "outputs.tf").unlink()
    result = validate(*args(fresh, "--provider-schema", str(provider_schema_path), "--format", "json"))
    assert result.exit_code == 1
    rendered = checks_of(result)["rendered"]
    assert rendered["status"] == "fail" and "run `dwctl render`" in rendered["detail"]
    assert rendered["problems"] == [f"{fresh.as_posix()}/iac/outputs.tf (missing)",
                                    f"{fresh.as_posix()}/sql/02_load_staging.sql (changed)"]
    assert statuses(result)["spec"] == "pass"


def test_unformatted_hcl_fails_fmt_naming_the_file(fresh, provider_schema_path, terraform_bin):
    (fresh / "iac" / "extra.tf").write_text('locals {\n  by_hand   = "x"\n}\n')  # not canonical: extra spaces
    result = validate(*args(fresh, "--provider-schema", str(provider_schema_path)))
    assert result.exit_code == 1
    text = result.stdout
    fmt_line = next(line for line in text.splitlines() if line.startswith("FAIL") and " fmt " in line)
    assert "1 file(s) are not in canonical format" in fmt_line
    assert f"{fresh.as_posix()}/iac/extra.tf" in text
    assert statuses(validate(*args(fresh, "--provider-schema", str(provider_schema_path), "--format", "json"))) == {
        "spec": "pass", "rendered": "pass", "fmt": "fail", "provider schema": "pass", "terraform validate": "skip"}


def test_fmt_runs_terraform_once_a_file_is_not_the_render(fresh, terraform_bin):
    """Files byte for byte the render are canonical by construction (tests/render/test_fmt_property.py);
    a file of your own, or a rendered file edited, sends the whole tree to Terraform's formatter."""
    (fresh / "iac" / "mine.tf").write_text('locals {\n  mine = "x"\n}\n')  # canonical, not rendered
    fmt = checks_of(validate(*args(fresh, "--format", "json")))["fmt"]
    assert fmt["status"] == "pass" and "terraform fmt -check -recursive` finds nothing" in fmt["detail"]
    (fresh / "iac" / "mine.tf").unlink()
    s3 = fresh / "iac" / "s3.tf"
    s3.write_text(s3.read_text().replace(" = ", "     = ", 1))  # still valid HCL, not canonical
    fmt = checks_of(validate(*args(fresh, "--format", "json")))["fmt"]
    assert fmt["status"] == "fail" and fmt["problems"] == [f"{fresh.as_posix()}/iac/s3.tf"], fmt


def test_fmt_reports_hcl_it_cannot_parse(fresh, terraform_bin):
    (fresh / "iac" / "broken.tf").write_text('locals {\n  x =\n}\n')
    fmt = checks_of(validate(*args(fresh, "--format", "json")))["fmt"]
    assert fmt["status"] == "fail"
    assert "cannot parse" in fmt["detail"] and "broken.tf" in fmt["detail"]


def test_a_bogus_argument_written_by_hand_fails_with_file_and_line(fresh, provider_schema_path, terraform_bin):
    (fresh / "iac" / "by_hand.tf").write_text(BOGUS)
    result = validate(*args(fresh, "--provider-schema", str(provider_schema_path), "--format", "json"))
    assert result.exit_code == 1
    schema = checks_of(result)["provider schema"]
    assert schema["status"] == "fail"
    assert schema["problems"] == [
        f'{fresh.as_posix()}/iac/by_hand.tf:2: aws_s3_bucket.by_hand: unknown argument "bogus_argument"']
    assert statuses(result) == {"spec": "pass", "rendered": "pass", "fmt": "pass", "provider schema": "fail",
                                "terraform validate": "skip"}
    text = validate(*args(fresh, "--provider-schema", str(provider_schema_path))).stdout
    assert "by_hand.tf:2: aws_s3_bucket.by_hand: unknown argument" in text


def test_an_unreadable_provider_schema_fails(fresh, tmp_path):
    bad = tmp_path / "schema.json"
    bad.write_text("{}")
    schema = checks_of(validate(*args(fresh, "--provider-schema", str(bad), "--format", "json")))["provider schema"]
    assert schema["status"] == "fail" and "no provider_schemas" in schema["detail"]


def test_a_bad_spec_fails_with_its_located_problems(fresh, tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(EXAMPLE.read_text().replace("project: shop", "project: Not A Name", 1))
    result = validate(*args(fresh, "--format", "json", spec=spec))
    assert result.exit_code == 1
    checks = checks_of(result)
    assert checks["spec"]["status"] == "fail"
    assert any(p.startswith(f"{spec.as_posix()}:") and ": project: " in p for p in checks["spec"]["problems"])
    assert checks["rendered"]["status"] == "skip" and "does not load" in checks["rendered"]["detail"]
    text = validate(*args(fresh, spec=spec)).stdout
    assert "FAIL    spec" in text and "project:" in text


def test_missing_terraform_skips_and_a_bad_explicit_binary_fails(fresh, tmp_path):
    env = {"PATH": str(tmp_path / "empty"), "DWCTL_TERRAFORM": None}
    skipped = checks_of(validate(*args(fresh, "--format", "json"), env=env))
    assert skipped["fmt"]["status"] == "skip" and "no terraform binary" in skipped["fmt"]["detail"]
    assert "Install Terraform" in skipped["fmt"]["detail"]

    result = validate(*args(fresh, "--terraform-bin", str(tmp_path / "nope"), "--format", "json"))
    assert result.exit_code == 1
    assert checks_of(result)["fmt"]["status"] == "fail"
    assert "no such executable" in checks_of(result)["fmt"]["detail"]


# --- terraform validate and the installed providers' schema, on provider-less stacks --------------
def test_terraform_validate_runs_after_dwctl_init_and_names_file_and_line(tmp_path, terraform_bin):
    from dwctl.deploy import actions as deploy
    from tests.support.tf_fixtures import make_project, stack_and_driver

    root = make_project(tmp_path / "proj")  # a provider-less stack shaped like the rendered one
    stack, tf = stack_and_driver(root, "prod")
    deploy.init(stack, tf, echo=lambda _: None)  # what `dwctl init` does: iac/.dwctl/prod/terraform
    spec = root / "spec.yaml"
    ok = checks_of(validate(*args(root, "--format", "json", spec=spec)))
    assert ok["terraform validate"]["status"] == "pass", ok["terraform validate"]
    assert f"terraform {terraform_version()}" in ok["terraform validate"]["detail"]
    # the installed schema (here terraform's builtin provider, for terraform_remote_state) is used
    assert ok["provider schema"]["status"] == "pass", ok["provider schema"]
    assert "`terraform providers schema -json`" in ok["provider schema"]["detail"]
    assert ok["rendered"]["status"] == "fail"  # a fixture, not a rendering: checked on its own

    (root / "iac" / "broken.tf").write_text('output "broken" {\n  value = var.missing\n}\n')
    result = validate(*args(root, "--format", "json", spec=spec))
    assert result.exit_code == 1
    check = checks_of(result)["terraform validate"]
    assert check["status"] == "fail"
    assert len(check["problems"]) == 1
    assert check["problems"][0].startswith(
        f"{root.as_posix()}/iac/broken.tf:2: Reference to undeclared input variable")
    schema = checks_of(result)["provider schema"]
    assert schema["status"] == "fail" and any("broken.tf:2:" in p for p in schema["problems"])


def test_plain_terraform_init_counts_as_initialised(tmp_path, terraform_bin):
    root = tmp_path / "out"
    iac = root / "iac"
    iac.mkdir(parents=True)
    (iac / "main.tf").write_text('locals {\n  a = 1\n}\n\noutput "a" {\n  value = local.b\n}\n')
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    for command in (["init", "-input=false"], ["workspace", "new", "prod"]):  # leaves iac/.terraform/
        done = subprocess.run(["terraform", *command, "-no-color"], cwd=iac, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    checks = checks_of(validate(*args(root, "--format", "json")))
    check = checks["terraform validate"]
    assert check["status"] == "fail"
    assert check["problems"][0].startswith(f"{iac.as_posix()}/main.tf:6: Reference to undeclared local value")
    assert checks["provider schema"]["status"] == "skip"
    assert "uses no providers" in checks["provider schema"]["detail"]


def test_the_command_module_stays_light():
    code = ("import sys, dwctl.gates.commands as m; m.validate, m.scan; print([x for x in "
            "('checkov', 'python_terraform', 'pydantic', 'jinja2', 'hcl2', 'dwctl.gates.validate') if x in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    helped = CliRunner().invoke(cli, ["--help"])
    assert "\n  validate " in helped.output and "\n  scan " in helped.output


# --- CI integration files: every dwctl command line in them parses -------------------------------
def parses(line: str) -> list[str]:
    """Parse a `dwctl ...` command line with the real Click commands (without running it)."""
    import shlex

    import click

    words = shlex.split(line)
    assert words[0] == "dwctl", line
    group_ctx = cli.make_context("dwctl", words[1:], resilient_parsing=False)
    command = cli.get_command(group_ctx, words[1])
    assert command is not None, line
    with click.Context(command, info_name=words[1]):
        command.make_context(words[1], words[2:])
    return words


def test_pre_commit_hooks_run_real_dwctl_commands():
    import yaml

    from tests.conftest import ROOT

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == ["dwctl-render-check", "dwctl-validate", "dwctl-scan"]
    for hook in hooks:
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        words = parses(hook["entry"] + " -c config/pipeline.yaml")  # how a user points a hook at a spec
        assert words[1] == hook["id"].split("-")[1]


def test_example_workflow_runs_the_gates_and_uploads_sarif():
    import yaml

    from tests.conftest import ROOT

    workflow = yaml.safe_load((ROOT / "examples" / "github-actions.yml").read_text())
    steps = workflow["jobs"]["gates"]["steps"]
    commands = [parses(s["run"]) for s in steps if str(s.get("run", "")).startswith("dwctl ")]
    assert [c[1] for c in commands] == ["render", "validate", "test", "scan"]
    assert "--check" in commands[0]
    scan_words = commands[3]
    out_dir = scan_words[scan_words.index("--output-dir") + 1]
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif"))
    assert upload["with"]["sarif_file"] == f"{out_dir}/results_sarif.sarif"  # the name dwctl scan writes
    assert "sarif" in scan_words and "failure()" in upload["if"]
    assert workflow["permissions"]["security-events"] == "write"


def test_the_schema_check_gives_the_same_result_forked_or_in_process(fresh, provider_schema_path):
    """validate runs the provider-schema check in a forked child beside the render (when no other thread
    runs); a thread running forces it in-process. Same checks either way, failures and problems included."""
    import threading

    from dwctl.gates import validate as gates

    (fresh / "iac" / "by_hand.tf").write_text(BOGUS)
    run = lambda: gates.run_checks(EXAMPLE, fresh, provider_schema=provider_schema_path)  # noqa: E731
    assert threading.active_count() == 1, "the forked path needs a single-threaded process"
    forked = run()
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        in_process = run()
    finally:
        stop.set()
        other.join()
    assert forked == in_process
    schema = next(c for c in forked if c.name == "provider schema")
    assert schema.status == "fail" and any("by_hand.tf:2" in p for p in schema.problems), schema
