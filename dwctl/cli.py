"""The `dwctl` command line: the root group. Each stage's commands live in that stage's package.

Commands are imported only when run (LAZY_COMMANDS), so `dwctl --help` starts as fast as Click
itself: heavy modules (pydantic, jinja2, checkov, python-terraform) load inside the commands.
"""

from __future__ import annotations

import click

from dwctl import __version__

# name -> "module:function", one line per command, grouped by the stage that owns it.
LAZY_COMMANDS: dict[str, str] = {
    "schema": "dwctl.spec.commands:schema",
    "new": "dwctl.spec.commands:new",
    "render": "dwctl.render.commands:render",
    "init": "dwctl.deploy.commands:init",
    "plan": "dwctl.deploy.commands:plan",
    "apply": "dwctl.deploy.commands:apply",
    "destroy": "dwctl.deploy.commands:destroy",
    "output": "dwctl.deploy.commands:output",
    "check-grants": "dwctl.deploy.check_grants:check_grants_command",
    "validate": "dwctl.gates.commands:validate",
    "scan": "dwctl.gates.commands:scan",
    "test": "dwctl.gates.tftest:test_command",
    "tools": "dwctl.gates.commands:tools",
    "import": "dwctl.source.importer:import_command",
    "doctor": "dwctl.source.doctor:doctor_command",
    "sql": "dwctl.warehouse.commands:sql_group",
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
@click.option("--no-color", is_flag=True, help="No colour from dwctl, Terraform or checkov (also NO_COLOR=1).")
@click.option("-v", "--verbose", count=True, help="Print each external command line dwctl runs (stderr).")
@click.pass_context
def cli(ctx: click.Context, no_color: bool, verbose: int) -> None:
    """Render and drive a serverless AWS warehouse from one YAML spec.

    RDS --DMS--> S3 --> Glue --> Redshift Serverless, governed by Lake Formation.
    The spec is -c PATH, else $DWCTL_CONFIG, else the nearest config/pipeline.yaml upward;
    the environment is --env NAME, else $DWCTL_ENV, else the spec's.
    """
    from dwctl.cli_options import no_color_requested, set_verbosity

    if no_color_requested(no_color):
        ctx.color = False
    set_verbosity(verbose)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: `eval "$(dwctl completion bash)"` in ~/.bashrc (zsh: ~/.zshrc;
    fish: `dwctl completion fish > ~/.config/fish/completions/dwctl.fish`)."""
    from click.shell_completion import get_completion_class

    click.echo(get_completion_class(shell)(cli, {}, "dwctl", "_DWCTL_COMPLETE").source())


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
