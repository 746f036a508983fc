"""`dwctl sql ...`: commands about the warehouse SQL. Heavy imports stay inside the commands."""

from __future__ import annotations

from pathlib import Path

import click

from dwctl.cli_options import spec_option


@click.group("sql")
def sql_group() -> None:
    """Check the warehouse SQL that `dwctl render` writes to sql/."""


@sql_group.command()
@spec_option
@click.option("--data", "data_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Landed DMS files: the bucket root (holding <prefix>/<schema>/<table>/*.parquet) "
                   "or the landing prefix itself (holding <schema>/<table>/*.parquet).")
@click.option("--database", "database", type=click.Path(path_type=Path, dir_okay=False),
              help="Keep the DuckDB database in this file; a later run loads only files not loaded yet.")
@click.option("--export", "export_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Write each analytics table to this folder instead of printing it.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True,
              help="Export format.")
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True,
              help="Rows printed per table.")
def verify(spec_path: Path, data_dir: Path, database: Path | None, export_dir: Path | None,
           fmt: str, limit: int) -> None:
    """Run the rendered load and merge SQL on local DMS files in DuckDB and show the analytics tables.

    The SQL is rendered from the spec in memory, transpiled from Redshift to DuckDB, and run as
    the load job would: new files only (per the load log), full load first, CDC in name order.
    """
    import tempfile

    import duckdb

    from dwctl.errors import UsageError
    from dwctl.spec.read import display_name, load_spec
    from dwctl.warehouse.verifier import Verifier

    spec = load_spec(spec_path)
    try:
        con = duckdb.connect(str(database) if database else ":memory:")
    except duckdb.Error as exc:
        raise UsageError(f"{database}: cannot open the DuckDB database: {exc}") from None
    try:
        with tempfile.TemporaryDirectory(prefix="dwctl-verify-") as work:
            verifier = Verifier(spec, con, Path(work), display_name(spec_path))
            merged = verifier.run(data_dir)
        click.echo("merged: " + ", ".join(f"{t} {n} file(s)" for t, n in merged.items()))
        if export_dir is not None:
            for path in verifier.export(export_dir, fmt):
                click.echo(f"wrote {path}")
            return
        for name in verifier.queries():  # each analytics table, then its history table if it keeps one
            columns, rows = verifier.fetch(name)
            click.echo(f"\n{spec.warehouse.analytics_schema}.{name}: {len(rows)} row(s)")
            click.echo(format_rows(columns, rows[:limit]))
            if len(rows) > limit:
                click.echo(f"... {len(rows) - limit} more (use --export for all)")
    finally:
        con.close()


def format_rows(columns: list[str], rows: list[tuple]) -> str:
    """A plain aligned text table; NULL shown as NULL."""
    cells = [[("NULL" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])
