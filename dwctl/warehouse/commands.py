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
@click.option("--retry-quarantined", is_flag=True, help="Offer the quarantined files again (see `dwctl sql quarantine`).")
@click.option("--table-statistics", "statistics_path", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="DMS's table statistics, as `aws dms describe-table-statistics` prints them (one document, or "
                   "a JSON list of them for several tasks): when each table's latest full load began, which the "
                   "load job reads in AWS to tell a reload however its files are named.")
def verify(spec_path: Path, data_dir: Path, database: Path | None, export_dir: Path | None,
           fmt: str, limit: int, retry_quarantined: bool, statistics_path: Path | None) -> None:
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
    statistics = read_statistics(statistics_path) if statistics_path is not None else None
    try:
        con = duckdb.connect(str(database) if database else ":memory:")
    except duckdb.Error as exc:
        raise UsageError(f"{database}: cannot open the DuckDB database: {exc}") from None
    try:
        with tempfile.TemporaryDirectory(prefix="dwctl-verify-") as work:
            verifier = Verifier(spec, con, Path(work), display_name(spec_path))
            merged = verifier.run(data_dir, retry_quarantined=retry_quarantined, statistics=statistics)
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


def read_statistics(path: Path) -> list[dict]:
    """DescribeTableStatistics responses from a file (one, or a list); a bad file is a located error."""
    import json

    from dwctl.errors import UsageError
    from dwctl.warehouse.load_job import JobError, load_start_text

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: not the JSON of `aws dms describe-table-statistics`: {exc}") from None
    pages = doc if isinstance(doc, list) else [doc]
    for n, page in enumerate(pages):
        entries = page.get("TableStatistics") if isinstance(page, dict) else None
        if not isinstance(entries, list):
            raise UsageError(f"{path}: document {n + 1} has no TableStatistics list "
                             "(the output of `aws dms describe-table-statistics`)")
        for i, entry in enumerate(entries):
            where = f"{path}: TableStatistics[{i}]" + (f" of document {n + 1}" if len(pages) > 1 else "")
            if not isinstance(entry, dict) or not entry.get("SchemaName") or not entry.get("TableName"):
                raise UsageError(f"{where}: needs SchemaName and TableName")
            try:
                load_start_text(entry.get("FullLoadStartTime"))
            except (JobError, TypeError, ValueError, OverflowError, OSError) as exc:
                raise UsageError(f"{where}.FullLoadStartTime: {exc}") from None
    return pages


@sql_group.command()
@spec_option
@click.option("--database", "database", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="The DuckDB database of `dwctl sql verify --database`.")
@click.option("--workgroup", help="Or the Redshift Serverless workgroup (through the Redshift Data API).")
@click.option("--secret-arn", help="With --workgroup: the secret the load job uses (stack output).")
@click.option("--skip", "skip", multiple=True, metavar="S3_KEY",
              help="Never load this quarantined file: it is recorded as merged. Repeatable.")
def quarantine(spec_path: Path, database: Path | None, workgroup: str | None, secret_arn: str | None,
               skip: tuple[str, ...]) -> None:
    """List the landed files the load job quarantined, with Redshift's reason; skip some.

    To load them again after a fix: `dwctl sql verify --retry-quarantined` locally, or in AWS start
    the load job once with the argument --retry_quarantined true.
    """
    from dwctl.errors import UsageError
    from dwctl.render.engine import render
    from dwctl.render.job_config import PATH
    from dwctl.spec.read import display_name, load_spec
    from dwctl.warehouse import load_job

    if (database is None) == (workgroup is None):
        raise UsageError("give exactly one of --database (a verify database) or --workgroup (Redshift)")
    spec = load_spec(spec_path)
    config = load_job.Config.from_json(render(spec, display_name(spec_path))[PATH])
    try:
        _quarantine(config, _warehouse(database, workgroup, secret_arn, spec), skip)
    except load_job.JobError as exc:
        from dwctl.errors import ToolError

        raise ToolError(str(exc)) from None


def _quarantine(config, target, skip) -> None:
    from dwctl.warehouse import load_job

    with target as warehouse:
        for key in skip:
            warehouse.batch([load_job.substitute(s, {"s3_key": key}) for s in config.queries["skip_quarantined"]],
                            "dwctl-skip-quarantined")
            click.echo(f"skipped {key}")
        try:
            rows = warehouse.query(config.queries["quarantine_list"])
        except load_job.JobError:
            rows = []  # no warehouse tables yet: nothing was ever quarantined
        click.echo(f"{len(rows)} quarantined file(s)")
        for table, key, etag, when, reason in rows:
            click.echo(f"{table}  {key}  (ETag {etag}, {when})\n    {reason}")


class _warehouse:
    """The job's warehouse interface on a verify database or on Redshift (the Data API)."""

    def __init__(self, database, workgroup, secret_arn, spec):
        self.database, self.workgroup, self.secret_arn, self.spec = database, workgroup, secret_arn, spec
        self.con = None

    def __enter__(self):
        from dwctl.errors import UsageError
        from dwctl.warehouse import load_job

        if self.database is not None:
            import duckdb

            from dwctl.warehouse.verifier import (
                DuckDBWarehouse,
                LocalLanding,
                Transpiler,
            )

            self.con = duckdb.connect(str(self.database))
            return DuckDBWarehouse(self.con, Transpiler(self.con, LocalLanding(self.database.parent, "")))
        if not self.secret_arn:
            raise UsageError("--workgroup needs --secret-arn (the stack's output redshift_admin_secret_arn)")
        try:
            import boto3
        except ImportError:
            raise UsageError("--workgroup needs boto3: pip install boto3") from None
        client = boto3.client("redshift-data", region_name=self.spec.region)
        return load_job.Warehouse(client, self.workgroup, self.spec.warehouse.database, self.secret_arn)

    def __exit__(self, *exc):
        if self.con is not None:
            self.con.close()


def format_rows(columns: list[str], rows: list[tuple]) -> str:
    """A plain aligned text table; NULL shown as NULL."""
    cells = [[("NULL" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])
