"""`dwctl import`: read tables from the source database and merge them into the spec file.

Typing column lists by hand is where specs go wrong; the catalog knows. A table that cannot be
imported is skipped with its reason (spec_merge.plan_table) and the rest merge; the merged text
must then validate as a whole before it replaces the file (atomically), else nothing is written.
The summary is printed only after the write, so nothing reads "added" that is not in the file;
`--dry-run` shows the diff and what would change. Heavy modules load inside the command.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from dwctl.cli_options import spec_option
from dwctl.source.options import timeout_option


@click.command("import")
@click.option("--dsn", "dsn_text", required=True, metavar="DSN",
              help="postgresql://user@host:5432/db or mysql://user@host:3306/db. Password: PGPASSWORD, "
                   "~/.pgpass, MYSQL_PWD, the DSN or a prompt; it is never printed or written.")
@click.option("--schema", help="Source schema (default public) or, for MySQL, database (default the DSN's).")
@click.option("--tables", "tables_text", metavar="A,B", help="Only these tables (default: every table of the schema).")
@spec_option
@click.option("--prune", is_flag=True, help="Remove spec tables of this schema that the source no longer has.")
@click.option("--dry-run", is_flag=True, help="Print the diff and the summary; write nothing.")
@timeout_option
def import_command(dsn_text: str, schema: str | None, tables_text: str | None, spec_path: Path,
                   prune: bool, dry_run: bool, timeout: int) -> None:
    """Import table definitions from a Postgres or MySQL catalog into the spec."""
    import difflib

    from dwctl.errors import SpecError, UsageError
    from dwctl.source.connection import SourceError, connect, parse_dsn
    from dwctl.source.introspect import read_tables, read_unreplicated
    from dwctl.source.spec_merge import merge
    from dwctl.source.yaml_roundtrip import load
    from dwctl.spec.read import parse_spec, read_spec_text

    dsn = parse_dsn(dsn_text)
    name, text = read_spec_text(spec_path, "import merges into an existing spec: pass -c PATH")
    doc = load(text, name)
    source_block = doc.data.get("source") if isinstance(doc.data.get("source"), dict) else {}
    engine, spec_db = source_block.get("engine"), source_block.get("database")
    if isinstance(engine, str) and ("postgres" in engine) != (dsn.family == "postgres"):
        raise UsageError(f"--dsn is a {dsn.family} database but {name} says source.engine: {engine}")
    schema = schema or ("public" if dsn.family == "postgres" else dsn.database)
    if not schema:
        raise UsageError("--schema: name the MySQL database (or put it in the DSN: mysql://user@host/db)")
    only = [t.strip() for t in tables_text.split(",") if t.strip()] if tables_text is not None else None
    if only is not None and not only:
        raise UsageError("--tables: give at least one table name")

    with connect(dsn, timeout) as conn:
        source = read_tables(conn, schema)
        unreplicated = read_unreplicated(conn, schema)
    if not source and not unreplicated and only is None:
        raise SourceError(f"{dsn.masked()}: schema {schema!r} has no tables this user can see "
                          "(wrong --schema, or missing privileges); nothing was changed")
    report = merge(doc.data, source, schema, dsn.family, only=only, prune=prune, unreplicated=unreplicated)

    click.echo(f"import {dsn.masked()} schema {schema} -> {name}")
    if dsn.database and isinstance(spec_db, str) and spec_db != dsn.database:
        click.echo(f"note: the DSN names database {dsn.database}, the spec's source.database is {spec_db}")
    if not report.changed:
        for line in report.lines():
            click.echo(line)
        click.echo(f"{name} is up to date; nothing written" if report.unchanged or not report.skipped
                   else f"nothing imported; {name} not written")
        return
    merged = doc.dump()
    try:
        parse_spec(merged, name)
    except SpecError as exc:
        raise SpecError(["the merged spec would not validate, so nothing was written "
                         "(line numbers refer to the merged text that --dry-run shows):", *exc.problems]) from None
    if dry_run or not doc.exact:
        diff = difflib.unified_diff(text.splitlines(True), merged.splitlines(True), f"a/{name}", f"b/{name}")
        click.echo("".join(line if line.endswith("\n") else line + "\n" for line in diff), nl=False)
    if not doc.exact:
        click.echo("note: this file's indentation could not be reproduced exactly; the diff shows every change")
    if dry_run:
        for line in report.lines(written=False):
            click.echo(line)
        click.echo("dry run: nothing written")
        return
    write_atomically(spec_path, merged)
    for line in report.lines():
        click.echo(line)
    click.echo(f"wrote {name}")


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` in one rename, keeping its permissions; a crash leaves the old file whole."""
    import tempfile

    from dwctl.errors import OutputError

    directory = path.resolve().parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
