"""`dwctl schema`: the spec's JSON Schema (for editors) or its Markdown reference (docs/reference/spec.md)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("-f", "--file", "out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write to this file instead of standard output.")
@click.option("-o", "--output", "old_out", type=click.Path(path_type=Path, dir_okay=False), hidden=True,
              help="Old spelling of --file (-o is the output root everywhere else).")
@click.option("--format", "fmt", type=click.Choice(["json", "markdown"]), default="json", show_default=True,
              help="JSON Schema for editors, or the Markdown reference of the docs site (docs/reference/spec.md).")
def schema(out: Path | None, old_out: Path | None, fmt: str) -> None:
    """Print the JSON Schema of the spec (for yaml-language-server and other editors)."""
    out = out or old_out
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


@click.command("new")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=".")
@click.option("--engine", type=click.Choice(["postgres", "mysql"]), required=True, help="The source database engine.")
@click.option("--source", metavar="PIP-SPEC",
              help="What CI and pre-commit pip-install [default: dwctl==<this version>], e.g. a git URL at a tag.")
@click.option("--force", is_flag=True, help="Replace files that already exist.")
def new(directory: Path, engine: str, source: str | None, force: bool) -> None:
    """Start a project in DIRECTORY: a commented spec, its JSON Schema, .gitignore, pre-commit config, CI workflow."""
    from dwctl.spec import scaffold

    for path in scaffold.write(directory, scaffold.files(engine, source), force=force):
        click.echo(f"wrote {(directory / path).as_posix()}")
    where = "" if directory == Path(".") else f"cd {directory.as_posix()} && "
    click.echo(f"next: edit {scaffold.SPEC} (every value is an example), then `{where}dwctl render && dwctl validate`.")
