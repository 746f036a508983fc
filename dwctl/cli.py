"""The `dwctl` command line: the root group. Each stage's commands live in that stage's package.

Commands are imported only when run (LAZY_COMMANDS), so `dwctl --help` starts as fast as Click
itself: heavy modules (pydantic, jinja2, checkov, python-terraform) load inside the commands.
"""

from __future__ import annotations

import click

from dwctl import __version__

# name -> ("module:function", its short help), one line per command, grouped by the stage that owns it.
# The short help is repeated here so `dwctl --help` imports no command module (a test keeps them equal).
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "schema": ("dwctl.spec.commands:schema", "Print the JSON Schema of the spec (for yaml-language-server and other editors)."),
    "new": ("dwctl.spec.commands:new", "Start a project in DIRECTORY: a commented spec, its JSON Schema, .gitignore, pre-commit config, CI workflow."),
    "render": ("dwctl.render.commands:render", "Render iac/ (Terraform) and sql/ (warehouse SQL) from the spec."),
    "init": ("dwctl.deploy.commands:init", "Initialise Terraform for an environment: its S3 backend (from the spec) and its workspace."),
    "plan": ("dwctl.deploy.commands:plan", "Plan to a saved plan file and summarise it; refuses a stale iac/ unless --render."),
    "apply": ("dwctl.deploy.commands:apply", "Apply exactly the plan `dwctl plan` saved for the environment, after confirmation."),
    "destroy": ("dwctl.deploy.commands:destroy", "Destroy an environment: refused while data is guarded (`protect_data`); asks you to type its name."),
    "output": ("dwctl.deploy.commands:output", "Print the environment's Terraform outputs (--format json: `terraform output -json`)."),
    "check-grants": ("dwctl.deploy.check_grants:check_grants_command", "After apply: fail when IAM_ALLOWED_PRINCIPALS still has permissions on the catalog (grants would not govern)."),
    "smoke": ("dwctl.deploy.smoke:smoke_command", "After apply: prove the deployed stack end to end (DMS, the load job, Redshift, grants), touching no data."),
    "validate": ("dwctl.gates.commands:validate", "Check what is on disk in iac/ and sql/: spec, freshness, fmt, provider schema, terraform validate."),
    "scan": ("dwctl.gates.commands:scan", "Run checkov on the rendered iac/ (or a saved plan) with the spec's skips and their reasons."),
    "test": ("dwctl.gates.tftest:test_command", "Run iac/tests/*.tftest.hcl with `terraform test` (mocked AWS: no credentials, no account)."),
    "tools": ("dwctl.gates.commands:tools", "Check this machine can deploy: Terraform/OpenTofu version, the AWS provider, AWS credentials, checkov."),
    "import": ("dwctl.source.importer:import_command", "Import table definitions from a Postgres or MySQL catalog into the spec."),
    "doctor": ("dwctl.source.doctor:doctor_command", "Check a source database for CDC readiness and drift from the spec (--dsn), or this machine's tools (--tools)."),
    "sql": ("dwctl.warehouse.commands:sql_group", "Check the warehouse SQL that `dwctl render` writes to sql/."),
    "status": ("dwctl.operate.status:status_command", "One screen for the deployed pipeline: DMS tasks, the load job's runs, each table's freshness, the queue."),
    "reload": ("dwctl.operate.reload:reload_command", "Reload one table from the source (DMS ReloadTables on the task holding it), after confirmation."),
    "run": ("dwctl.operate.run:run_command", "Start the load job now, with its own arguments (optionally only some tables); --follow waits for it."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is used (fast --help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            import importlib

            module, attr = LAZY_COMMANDS[name][0].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's command list, with the lazy commands' short help from LAZY_COMMANDS (no imports)."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = [(n, _short_help(LAZY_COMMANDS[n][1], limit) if n in LAZY_COMMANDS
                 else click.Group.get_command(self, ctx, n).get_short_help_str(limit)) for n in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


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


def _short_help(text: str, limit: int) -> str:
    """The first sentence of a help text, cut to `limit` characters (Click's own helper is deprecated)."""
    first = text.split(". ", 1)[0].rstrip(".")
    return first if len(first) <= limit else first[: max(limit - 3, 0)].rstrip() + "..."
