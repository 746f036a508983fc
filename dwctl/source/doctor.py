"""`dwctl doctor`: check that the source database is ready for DMS CDC and still matches the spec.

Prints one row per check (pass / warn / fail) and the fix for each problem; exits 1 when
any check fails, so it can gate a deploy. `--format json` is the same data for machines.
"""

from __future__ import annotations

from pathlib import Path

import click

from dwctl.cli_options import json_failures, spec_option
from dwctl.source.options import timeout_option


@click.command("doctor")
@click.option("--dsn", "dsn_text", metavar="DSN",
              help="postgresql://user@host:5432/db or mysql://user@host:3306/db (password as for dwctl import).")
@spec_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--tools", "check_tools", is_flag=True,
              help="Check this machine's deploy tools instead (Terraform, AWS provider and credentials, checkov).")
@timeout_option
@click.pass_context
@json_failures(lambda p: p["fmt"] == "json")
def doctor_command(ctx: click.Context, dsn_text: str | None, spec_path: Path, fmt: str, check_tools: bool,
                   timeout: int) -> None:
    """Check a source database for CDC readiness and drift from the spec (--dsn), or this machine's tools (--tools)."""
    import sys

    if check_tools:  # `dwctl tools` belongs to the gates stage: reached through the root group, not imported
        root = ctx.find_root()
        return ctx.invoke(root.command.get_command(root, "tools"), fmt=fmt)
    if not dsn_text:
        raise click.UsageError("give --dsn DSN (the source database), or --tools (this machine's deploy tools)")

    from dwctl import report
    from dwctl.errors import UsageError
    from dwctl.source.connection import connect, parse_dsn
    from dwctl.source.doctor_checks import (
        Check,
        mysql_checks,
        partition_checks,
        postgres_checks,
        table_checks,
    )
    from dwctl.spec.read import display_name, load_spec

    dsn = parse_dsn(dsn_text)
    spec = None
    name = display_name(spec_path)
    explicit = ctx.get_parameter_source("spec_path") != click.core.ParameterSource.DEFAULT
    if spec_path.exists() or explicit:
        spec = load_spec(spec_path)
        if spec.source.family != dsn.family:
            raise UsageError(f"--dsn is a {dsn.family} database but {name} says source.engine: {spec.source.engine}")
    with connect(dsn, timeout) as conn:
        from dwctl.spec.dms_tasks import assign

        tasks = len(assign(spec)) if spec is not None else 1
        checks = postgres_checks(conn, tasks) if dsn.family == "postgres" else mysql_checks(conn)
        if spec is None:
            checks.append(Check("spec", "warn", f"{name} not found: table checks skipped", "pass -c PATH"))
        else:
            checks += table_checks(conn, spec) + partition_checks(conn, spec)
    if fmt == "json":
        click.echo(report.to_json(checks, dsn=dsn.masked()))
    else:
        click.echo(f"dwctl doctor {dsn.masked()}" + (f" against {name}" if spec else ""))
        click.echo(report.to_text(checks))
    sys.exit(1 if any(c.status == "fail" for c in checks) else 0)

