"""`dwctl init | plan | apply | destroy | output`: Click wiring only; the rules live in dwctl.deploy.

Imported by `dwctl --help`, so only click and dwctl.cli are imported at module level.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dwctl.cli_options import (
    color_wanted,
    env_option,
    format_option,
    json_on_failure,
    output_option,
    spec_option,
)


def _common(f):
    f = click.option("--terraform-bin", metavar="PATH",
                     help="Terraform/OpenTofu binary [default: $DWCTL_TERRAFORM, then terraform, then tofu on PATH].")(f)
    f = env_option("Environment: picks its tfvars, backend config and workspace")(f)
    return spec_option(output_option(f))


def _lock(f):
    return click.option("--lock-timeout", metavar="DURATION", help="Passed to terraform as -lock-timeout (e.g. 5m).")(f)


def _parallelism(f):
    return click.option("--parallelism", type=click.IntRange(min=1), help="Passed to terraform as -parallelism.")(f)


def _targets(f):
    return click.option("--target", "targets", multiple=True, metavar="ADDRESS",
                        help="Passed to terraform as -target (repeatable).")(f)


def _extra(f):
    return click.argument("extra", nargs=-1, type=click.UNPROCESSED, metavar="[-- TERRAFORM ARGS]")(f)


def _render(f):
    return click.option("--render", "render", is_flag=True,
                        help="Render iac/ from the spec first instead of refusing when it is stale.")(f)


def _yes(f):
    return click.option("-y", "--yes", is_flag=True, help="Do not ask; required when stdin is not a terminal.")(f)


def _err(text: str) -> None:
    click.echo(text, err=True)


def _loud(text: str) -> None:
    click.secho(text, err=True, fg="red", bold=True)


def _setup(spec_path: Path, root: Path, env_name: str | None, terraform_bin: str | None, *,
           render: bool | None = None, machine: bool = False, destroying: bool = False, sizing: bool = False,
           spec=None):
    """Spec (loaded here unless given) -> environment -> fresh iac/ (for commands that read the
    configuration) -> binary -> driver. With `sizing`, warn first when the environment's DMS
    instance class is small for its tasks."""
    from dwctl.deploy import actions as deploy
    from dwctl.deploy import terraform
    from dwctl.errors import NotReady
    from dwctl.spec.read import load_spec

    spec = load_spec(spec_path) if spec is None else spec
    stack = deploy.stack_for(spec, root, env_name)
    if sizing:
        from dwctl.render.environments import env_spec
        from dwctl.spec.dms_sizing import warnings

        for line in warnings(env_spec(spec, stack.env.name)):
            _err(f"warning: {stack.env.name}: {line}")
    if render is not None:
        deploy.ensure_rendered(spec, spec_path, root, render=render, echo=_err)
    if not stack.iac.is_dir():
        raise NotReady(f"{stack.iac} does not exist: run `dwctl render` first.")
    if destroying:
        deploy.refuse_guarded(stack)
    binary = terraform.find(terraform_bin)
    terraform.require_stack_version(binary, stack.iac)
    _err(f"dwctl: {stack.env.name}: using {binary.describe()}")
    tf = deploy.driver(stack, binary, color=color_wanted() and not machine, stdout_to_stderr=machine)
    return stack, tf


def _options(lock_timeout=None, parallelism=None, targets=(), extra=()):
    from dwctl.deploy.actions import Options

    return Options(lock_timeout=lock_timeout, parallelism=parallelism, targets=tuple(targets), extra=tuple(extra))


@click.command()
@_common
@_render
@_lock
@_extra
def init(spec_path, output_root, env_name, terraform_bin, render, lock_timeout, extra):
    """Initialise Terraform for an environment: its S3 backend (from the spec) and its workspace.

    Anything after `--` goes to `terraform init` (e.g. `-- -upgrade` or `-- -migrate-state`).
    """
    from dwctl.deploy import actions as deploy

    stack, tf = _setup(spec_path, output_root, env_name, terraform_bin, render=render)
    deploy.init(stack, tf, _options(lock_timeout, extra=extra), echo=click.echo)


class _DetailedExitCommand(click.Command):
    """Exit 2 must mean "changes" (as `terraform plan -detailed-exitcode`), so every error exits 1."""

    def make_context(self, *args, **kwargs):
        return _exit_1_on_error(super().make_context, *args, **kwargs)

    def invoke(self, ctx):
        return _exit_1_on_error(super().invoke, ctx)


def _exit_1_on_error(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except click.ClickException as exc:
        if exc.exit_code == 2:
            exc.exit_code = 1
        raise


@click.command(cls=_DetailedExitCommand)
@_common
@_render
@format_option(json_alias=True)
@_lock
@_parallelism
@_targets
@_extra
def plan(spec_path, output_root, env_name, terraform_bin, render, fmt, as_json, lock_timeout, parallelism, targets,
         extra):
    """Plan to a saved plan file and summarise it; refuses a stale iac/ unless --render.

    Exit code as `terraform plan -detailed-exitcode`: 0 no changes, 2 changes, 1 any error
    (including a stale iac/ or a bad spec).
    Deletes or replaces of data-holding resources are flagged. Apply it with `dwctl apply`.
    With --format json, terraform's own output goes to stderr and stdout holds one JSON document.
    """
    import json

    from dwctl.deploy import actions as deploy
    from dwctl.spec.read import load_spec

    machine = as_json or fmt == "json"
    with json_on_failure(machine, exit_code=1):
        spec = load_spec(spec_path)
        stack, tf = _setup(spec_path, output_root, env_name, terraform_bin, render=render, machine=machine,
                           sizing=True, spec=spec)
        code, summary = deploy.plan(stack, tf, _options(lock_timeout, parallelism, targets, extra), spec=spec)
    planfile = stack.plan_path("plan")
    if machine:
        click.echo(json.dumps({"ok": True, **deploy.report(stack, code, summary)}, indent=2))
    else:
        click.echo("")
        deploy.show_summary(stack, summary, click.echo, _loud)
        click.echo(f"Saved plan: {planfile}\nApply exactly this plan with `dwctl apply --env {stack.env.name}`.")
    sys.exit(code)


@click.command()
@_common
@_yes
@_lock
@_parallelism
@_extra
def apply(spec_path, output_root, env_name, terraform_bin, yes, lock_timeout, parallelism, extra):
    """Apply exactly the plan `dwctl plan` saved for the environment, after confirmation.

    Refuses a stale plan (the spec, iac/ files, terraform binary or environment changed since).
    """
    from dwctl.deploy import actions as deploy

    stack, tf = _setup(spec_path, output_root, env_name, terraform_bin)
    confirm = (lambda q: click.confirm(q, default=False, err=True)) if sys.stdin.isatty() else None
    deploy.apply(stack, tf, _options(lock_timeout, parallelism, extra=extra), yes=yes, confirm=confirm,
                 echo=click.echo, warn=_loud)


@click.command()
@_common
@_render
@_yes
@_lock
@_parallelism
@_targets
@_extra
def destroy(spec_path, output_root, env_name, terraform_bin, render, yes, lock_timeout, parallelism, targets, extra):
    """Destroy an environment: refused while data is guarded (`protect_data`); asks you to type its name."""
    from dwctl.deploy import actions as deploy

    stack, tf = _setup(spec_path, output_root, env_name, terraform_bin, render=render, destroying=True)
    ask = (lambda q: click.prompt(q, err=True)) if sys.stdin.isatty() else None
    deploy.destroy(stack, tf, _options(lock_timeout, parallelism, targets, extra), yes=yes, ask=ask,
                   echo=click.echo, warn=_loud)


@click.command()
@_common
@format_option(json_alias=True)
def output(spec_path, output_root, env_name, terraform_bin, fmt, as_json):
    """Print the environment's Terraform outputs (--format json: `terraform output -json`)."""
    from dwctl.deploy import actions as deploy

    machine = as_json or fmt == "json"
    with json_on_failure(machine):
        stack, tf = _setup(spec_path, output_root, env_name, terraform_bin, machine=machine)
        text = deploy.output(stack, tf, as_json=machine)
    click.echo(text, nl=False)
