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
    "validate": "dwctl.gates.commands:validate",
    "scan": "dwctl.gates.commands:scan",
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
def cli() -> None:
    """Render and drive a serverless AWS warehouse from one YAML spec.

    RDS --DMS--> S3 --> Glue --> Redshift Serverless, governed by Lake Formation.
    """


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
