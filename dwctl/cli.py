"""The `dwctl` command line: thin Click commands that call plain functions.

Heavy modules (pydantic, jinja2, checkov, python-terraform) are imported inside the
commands that need them, so `dwctl --help` starts as fast as Click itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dwctl import __version__

DEFAULT_SPEC = Path("config/pipeline.yaml")

spec_option = click.option(
    "-c", "--config", "spec_path", type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_SPEC, show_default=True, help="The pipeline spec (YAML).",
)
output_option = click.option(
    "-o", "--output", "output_root", type=click.Path(path_type=Path, file_okay=False),
    default=Path("."), show_default=True, help="Output root: iac/ and sql/ are written under it.",
)


# Commands that live in their own modules: name -> "module:function", imported only when run.
LAZY_COMMANDS: dict[str, str] = {
    "init": "dwctl.deploy_cli:init",
    "plan": "dwctl.deploy_cli:plan",
    "apply": "dwctl.deploy_cli:apply",
    "destroy": "dwctl.deploy_cli:destroy",
    "output": "dwctl.deploy_cli:output",
    "import": "dwctl.dbimport:import_command",
    "doctor": "dwctl.doctor:doctor_command",
    "sql": "dwctl.sqlcli:sql_group",
    "validate": "dwctl.gates:validate",
    "scan": "dwctl.gates:scan",
    "test": "dwctl.tftest:test_command",
    "check-grants": "dwctl.lfgrants:check_grants_command",
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is used (fast --help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            import importlib

            module, attr = LAZY_COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dwctl")
def cli() -> None:
    """Render and drive a serverless AWS warehouse from one YAML spec.

    RDS --DMS--> S3 --> Glue --> Redshift Serverless, governed by Lake Formation.
    """


@cli.command()
@spec_option
@output_option
@click.option("--check", is_flag=True, help="Write nothing; exit 1 (with a diff) if the output is stale.")
@click.option("--diff", "show_diff", is_flag=True, help="Write nothing; print a unified diff of what would change.")
def render(spec_path: Path, output_root: Path, check: bool, show_diff: bool) -> None:
    """Render iac/ (Terraform) and sql/ (warehouse SQL) from the spec."""
    from dwctl.workflow import render_to_disk

    sys.exit(render_to_disk(spec_path, output_root, check=check, show_diff=show_diff, echo=click.echo))


@cli.command()
@click.option("-o", "--output", "out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write to this file instead of standard output.")
@click.option("--format", "fmt", type=click.Choice(["json", "markdown"]), default="json", show_default=True,
              help="JSON Schema for editors, or the Markdown reference used in the README.")
def schema(out: Path | None, fmt: str) -> None:
    """Print the JSON Schema of the spec (for yaml-language-server and other editors)."""
    if fmt == "markdown":
        from dwctl.docs import spec_reference

        text = spec_reference()
    else:
        import json

        from dwctl.spec import json_schema

        text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
