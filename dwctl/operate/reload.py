"""`dwctl reload TABLE`: DMS reloads one table (each partition of a partitioned one) from the source,
on the task that holds it; the load job recognises the reload's files and replaces the table's rows.

ReloadTables (AWS DMS User Guide, CHAP_Tasks.ReloadTables): the task must be running and keeps
running; "You can reload up to 10 tables from a task", so partitions go 10 per call.
"""

from __future__ import annotations

import sys
import time

import click

from dwctl.operate import deployed
from dwctl.operate.aws import aws_errors

RELOAD_LIMIT = 10
POLL_SECONDS = 15
SILENT_POLLS = 20  # polls without any statistics of the table before following stops (5 minutes)
DONE = "Table completed"
FAILED = ("Table error", "Table cancelled")


def interactive() -> bool:
    """Someone can answer the confirmation (stdin is a terminal)."""
    return sys.stdin.isatty()


def source_tables(table) -> list[dict]:
    """What DMS selects for a spec table: the table itself, or each of its partitions (source spellings)."""
    return [{"SchemaName": table.schema_, "TableName": name} for name in table.source_tables]


def spellings(table) -> list[str]:
    """The names DMS may report the table's statistics under: its source tables', or after the rename
    rule, the landed ones (the DMS User Guide does not say which DescribeTableStatistics shows)."""
    return sorted({*table.source_tables, table.name, *table.part_names})


def holding_task(spec, name: str) -> str:
    from dwctl.spec.dms_tasks import assign

    return next(task for task, tables in assign(spec).items() if name in {t.name for t in tables})


def explain(table, task: str, rows: int | None) -> str:
    """What the reload does and costs, said before asking."""
    what = ", ".join(f"{t['SchemaName']}.{t['TableName']}" for t in source_tables(table))
    size = f" (its last full load moved {rows:,} rows)" if rows else ""
    return (f"DMS task {task} reads {what} again from the source{size}, in full, while CDC goes on, and lands it "
            f"as new full-load files; the load job then replaces the rows of {table.name} in the warehouse with them "
            "(rows gone at the source are deleted; history keeps a version per row). Cost: one full read of the "
            "table at the source (load on the database for its duration), S3 storage for one more copy, and one "
            "full merge in Redshift.")


def progress_line(stats: list[dict]) -> str:
    return "; ".join(f"{s['schema']}.{s['table']}: {s['state']}, {s['full_load_rows'] or 0:,} rows"
                     + (" (reloaded)" if s["reloaded"] else "") for s in stats)


@click.command("reload")
@click.argument("table_name", metavar="TABLE")
@deployed.options
@click.option("-y", "--yes", is_flag=True, help="Do not ask; required when stdin is not a terminal.")
@click.option("--no-wait", is_flag=True, help="Start the reload and return; do not follow its progress.")
def reload_command(table_name, spec_path, output_root, env_name, terraform_bin, outputs_file, yes, no_wait):
    """Reload one table from the source (DMS ReloadTables on the task holding it), after confirmation.

    Then follows its progress (DescribeTableStatistics) until DMS has loaded it again; the load job's
    next run merges the reload and replaces the table's rows.
    """
    from dwctl.deploy.actions import Aborted
    from dwctl.errors import NotReady, UsageError
    from dwctl.operate.aws import client
    from dwctl.operate.health import table_statistics

    dep = deployed.load(spec_path, output_root, env_name, terraform_bin, outputs_file)
    names = [t.name for t in dep.spec.tables]
    if table_name not in names:
        raise UsageError(f"no table {table_name!r} in the spec: one of {', '.join(names)}")
    table = dep.spec.table(table_name)
    task = holding_task(dep.spec, table_name)
    arn = dep.output("dms_replication_task_arns").get(task)
    if arn is None:
        raise NotReady(f"the {dep.env} stack has no DMS task {task!r} (which holds {table_name}): apply the current "
                       f"render first (`dwctl plan --env {dep.env}`, `dwctl apply --env {dep.env}`).")
    dms = client("dms", dep.region)
    with aws_errors(f"reading the DMS task {task}"):
        found = dms.describe_replication_tasks(Filters=[{"Name": "replication-task-arn", "Values": [arn]}],
                                               WithoutSettings=True)["ReplicationTasks"]
    status = found[0]["Status"] if found else "not found"
    if status != "running":
        raise NotReady(f"DMS task {task} is {status}: DMS reloads tables only of a running task (DMS User Guide, "
                       "Reloading tables during a task). Resume it first (`dwctl status` says how).")
    wanted = source_tables(table)
    before = table_statistics(dms, arn, spellings(table))
    rows = sum(s["full_load_rows"] or 0 for s in before) or None
    click.echo(explain(table, task, rows), err=True)
    if not yes:
        if not interactive():
            raise UsageError("standard input is not a terminal, so nobody can confirm: pass --yes to reload.")
        if not click.confirm(f"Reload {table_name} in {dep.env}?", default=False, err=True):
            raise Aborted("aborted: nothing was reloaded.")
    for start in range(0, len(wanted), RELOAD_LIMIT):
        with aws_errors(f"starting the reload of {table_name}"):
            dms.reload_tables(ReplicationTaskArn=arn, TablesToReload=wanted[start:start + RELOAD_LIMIT],
                              ReloadOption="data-reload")
    click.echo(f"reload of {table_name} started on DMS task {task}")
    if no_wait:
        return
    follow(dms, arn, spellings(table), table_name, dep.env, before)


def follow(dms, arn, wanted: list[str], table_name, env, before, sleep=None):
    """Poll the table statistics until every table is loaded again (or failed), printing each change. The
    reload has begun once a table leaves "Table completed" or its full load's end time moves (a table
    reloaded before is already completed and marked reloaded before this reload starts)."""
    from dwctl.errors import ToolError
    from dwctl.operate.health import table_statistics

    sleep = sleep or time.sleep
    names = set(wanted)
    ended = {s["table"]: s["full_load_end"] for s in before}
    expected = len(before)
    shown, begun, silent = None, False, 0
    while True:
        sleep(POLL_SECONDS)
        stats = [s for s in table_statistics(dms, arn, sorted(names)) if s["table"] in names]
        if not stats:
            silent += 1
            if silent >= SILENT_POLLS:
                click.echo(f"DMS reports no table statistics for {table_name}: follow it with `dwctl status --env "
                           f"{env} --watch`.")
                return
            continue
        line = progress_line(stats)
        if line != shown:
            click.echo(line)
            shown = line
        failed = [s for s in stats if s["state"] in FAILED]
        if failed:
            raise ToolError(f"the reload of {table_name} failed in DMS ({progress_line(failed)}): read the task's "
                            f"log, fix the cause and reload again.")
        begun = begun or any(s["state"] != DONE or s["full_load_end"] != ended.get(s["table"]) for s in stats)
        if begun and len(stats) >= expected and all(s["state"] == DONE for s in stats):
            click.echo(f"DMS reloaded {table_name}; the load job's next run merges it (now: `dwctl run --env {env} "
                       f"--tables {table_name} --follow`).")
            return
