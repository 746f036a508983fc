"""Options every stage's commands share, so each stage's commands module can import them without
importing the root group (dwctl.cli sits on top and imports the stages lazily)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import click

DEFAULT_SPEC = Path("config/pipeline.yaml")

spec_option = click.option(
    "-c", "--config", "spec_path", type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_SPEC, show_default=True, help="The pipeline spec (YAML).",
)
output_option = click.option(
    "-o", "--output", "output_root", type=click.Path(path_type=Path, file_okay=False),
    default=Path("."), show_default=True, help="Output root: iac/ and sql/ are written under it.",
)


def format_option(*, json_alias: bool = False, choices: tuple[str, ...] = ("text", "json")):
    """`--format text|json`, the same on every command that reports; `--json` is kept where it existed."""

    def decorate(f):
        f = click.option("--format", "fmt", type=click.Choice(choices), default=choices[0], show_default=True,
                         help="Output format; json is one document on stdout, also when the command fails.")(f)
        if json_alias:
            f = click.option("--json", "as_json", is_flag=True, help="Same as --format json (kept for old scripts).")(f)
        return f

    return decorate


@contextmanager
def json_on_failure(enabled: bool, exit_code: int | None = None, **context):
    """With --format json, a failure still prints one JSON document on stdout (the error also goes to stderr)."""
    try:
        yield
    except click.ClickException as exc:
        if enabled:
            doc = {"ok": False, **context, "exit_code": exit_code or exc.exit_code, "error": exc.format_message()}
            if getattr(exc, "detail", None):
                doc["detail"] = exc.detail
            click.echo(json.dumps(doc, indent=2))
        raise
