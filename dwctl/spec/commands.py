"""`dwctl schema`: the spec's JSON Schema (for editors) or its Markdown reference (for the README)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("-o", "--output", "out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write to this file instead of standard output.")
@click.option("--format", "fmt", type=click.Choice(["json", "markdown"]), default="json", show_default=True,
              help="JSON Schema for editors, or the Markdown reference used in the README.")
def schema(out: Path | None, fmt: str) -> None:
    """Print the JSON Schema of the spec (for yaml-language-server and other editors)."""
    if fmt == "markdown":
        from dwctl.spec.reference import spec_reference

        text = spec_reference()
    else:
        import json

        from dwctl.spec.model import json_schema

        text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
