"""`dwctl test`: run the stack's native Terraform tests (iac/tests/*.tftest.hcl) against a mocked AWS.

The tests use `mock_provider "aws"`: Terraform loads the real provider for its schema and plans in
memory, so no credentials and no AWS account are needed (only the provider, from the registry or a
mirror the Terraform CLI config names). They get their own data directory and no backend, so they
never touch an environment's state or workspace.
"""

from __future__ import annotations

import os
import subprocess

import click

from dwctl.cli_options import output_option, spec_option

MIN_VERSION = (1, 7, 0)  # mock_provider and override_data


@click.command("test")
@spec_option
@output_option
@click.option("--terraform-bin", metavar="PATH",
              help="Terraform binary [default: $DWCTL_TERRAFORM, then terraform, then tofu on PATH].")
@click.option("--render", "render", is_flag=True,
              help="Render iac/ from the spec first instead of refusing when it is stale.")
def test_command(spec_path, output_root, terraform_bin, render):
    """Run iac/tests/*.tftest.hcl with `terraform test` (mocked AWS: no credentials, no account)."""
    from dwctl.deploy import actions as deploy
    from dwctl.deploy import terraform
    from dwctl.errors import ToolError
    from dwctl.spec.read import load_spec

    spec = load_spec(spec_path)
    deploy.ensure_rendered(spec, spec_path, output_root, render=render, echo=lambda t: click.echo(t, err=True))
    iac = (output_root / "iac").resolve()
    binary = terraform.find(terraform_bin)
    if binary.version < MIN_VERSION:
        raise ToolError(f"{binary.describe()} cannot run these tests: mock_provider needs Terraform >= 1.7.")
    click.echo(f"dwctl: testing {iac} with {binary.describe()}", err=True)
    env = {**os.environ, "TF_DATA_DIR": str(iac / ".dwctl" / "test" / "terraform"), "TF_IN_AUTOMATION": "1",
           "AWS_EC2_METADATA_DISABLED": "true"}  # the mocks need no AWS; make sure nothing asks it
    for args in (["init", "-backend=false", "-input=false"], ["test"]):
        done = subprocess.run([binary.path, *args, "-no-color"], cwd=iac, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True)
        click.echo(done.stdout, nl=False)
        if done.returncode != 0:
            click.echo(done.stderr, nl=False, err=True)
            raise ToolError(f"`{binary.name} {args[0]}` failed in {iac} (exit {done.returncode})")
