"""`dwctl run`: start the load job now (Glue StartJobRun with the job's own arguments), optionally follow it.

The run gets the job's DefaultArguments as Glue holds them (GetJob), plus --tables and
--retry_quarantined when asked: the same arguments the scheduled run gets, whatever StartJobRun
does with arguments it is not given. With --follow, GetJobRun until the run ends, then what it
merged or quarantined, read from the warehouse's load log and quarantine.
"""

from __future__ import annotations

import json
import sys
import time

import click

from dwctl.cli_options import format_option, json_on_failure
from dwctl.operate import deployed
from dwctl.operate.aws import aws_errors

POLL_SECONDS = 15
ENDED = {"STOPPED", "SUCCEEDED", "FAILED", "TIMEOUT", "ERROR"}


def arguments(glue, job_name: str, tables: list[str], retry_quarantined: bool) -> dict[str, str]:
    with aws_errors(f"reading the load job {job_name}"):
        job = glue.get_job(JobName=job_name)["Job"]
    args = dict(job.get("DefaultArguments") or {})
    if tables:
        args["--tables"] = ",".join(tables)
    if retry_quarantined:
        args["--retry_quarantined"] = "true"
    return args


def outcome_queries(spec, started: str) -> dict[str, str]:
    """What a run merged (load log rows) and quarantined since it started (Redshift's GETDATE() is UTC)."""
    from dwctl.render.text import sql_ident, sql_string
    from dwctl.spec import landed_layout as layout

    staging = sql_ident(spec.warehouse.staging_schema)
    since = sql_string(started)
    return {
        "merged": f'SELECT "table_name", COUNT(*) FROM {staging}.{sql_ident(layout.LOAD_LOG_TABLE)} '
                  f'WHERE "loaded_at" >= CAST({since} AS TIMESTAMP) GROUP BY "table_name" ORDER BY "table_name"',
        "quarantined": f'SELECT "table_name", COUNT(*) FROM {staging}.{sql_ident(layout.QUARANTINE_TABLE)} '
                       f'WHERE "quarantined_at" >= CAST({since} AS TIMESTAMP) GROUP BY "table_name" '
                       'ORDER BY "table_name"',
    }


@click.command("run")
@deployed.options
@click.option("--tables", "tables", metavar="A,B", default="", help="Load only these tables (spec names).")
@click.option("--retry-quarantined", is_flag=True, help="Offer the quarantined files again (--retry_quarantined true).")
@click.option("--follow", is_flag=True, help="Wait for the run, show its state, and at the end what it merged "
              "or quarantined; exit 1 unless it succeeded.")
@format_option()
def run_command(spec_path, output_root, env_name, terraform_bin, outputs_file, tables, retry_quarantined, follow,
                fmt):
    """Start the load job now, with its own arguments (optionally only some tables); --follow waits for it."""
    from dwctl.errors import UsageError
    from dwctl.operate.aws import client

    machine = fmt == "json"
    with json_on_failure(machine, env=env_name):
        dep = deployed.load(spec_path, output_root, env_name, terraform_bin, outputs_file)
        chosen = [t for t in tables.split(",") if t]
        names = [t.name for t in dep.spec.tables]
        unknown = [t for t in chosen if t not in names]
        if unknown:
            raise UsageError(f"--tables: no table {', '.join(map(repr, unknown))} in the spec: "
                             f"tables are {', '.join(names)}")
        job_name = dep.output("loader_job_name")
        glue = client("glue", dep.region)
        args = arguments(glue, job_name, chosen, retry_quarantined)
        with aws_errors(f"starting the load job {job_name}"):
            run_id = glue.start_job_run(JobName=job_name, Arguments=args)["JobRunId"]
        say = (lambda text: click.echo(text, err=True)) if machine else click.echo
        say(f"started {job_name} run {run_id}" + (f" for {', '.join(chosen)}" if chosen else ""))
        result = {"ok": True, "env": dep.env, "job": job_name, "run_id": run_id, "arguments": args}
        if follow:
            result.update(wait(glue, job_name, run_id, say))
            result["ok"] = result["state"] == "SUCCEEDED"
            result.update(outcome(dep, result.get("started"), say))
    if machine:
        click.echo(json.dumps(result, indent=2, default=str))
    if not result["ok"]:
        if not machine:
            click.echo(f"the run ended {result['state']}: {result.get('error') or 'no message'}", err=True)
        sys.exit(1)


def wait(glue, job_name: str, run_id: str, say, sleep=None) -> dict:
    sleep = sleep or time.sleep
    shown = None
    while True:
        with aws_errors(f"reading run {run_id}"):
            run = glue.get_job_run(JobName=job_name, RunId=run_id)["JobRun"]
        state = run.get("JobRunState")
        if state != shown:
            say(f"{run_id}: {state}")
            shown = state
        if state in ENDED:
            started = run.get("StartedOn")
            return {"state": state, "seconds": run.get("ExecutionTime"), "error": run.get("ErrorMessage"),
                    "started": _utc(started) if started else None}
        sleep(POLL_SECONDS)


def _utc(when) -> str:
    """A botocore timestamp as the warehouse's UTC text (a naive one is taken as UTC)."""
    import datetime as dt

    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M:%S")


def outcome(dep, started: str | None, say) -> dict:
    """What the run merged and quarantined, per table (partitions summed into their table)."""
    from dwctl.operate.aws import client
    from dwctl.operate.health import units_of
    from dwctl.warehouse import load_job

    if not started:
        return {}
    warehouse = load_job.Warehouse(client("redshift-data", dep.region), dep.output("redshift_workgroup_name"),
                                   dep.output("redshift_database_name"),
                                   dep.output("redshift_admin_password_secret_arn"), timeout=300)
    units = units_of(dep.spec)
    found = {}
    try:
        for kind, sql in outcome_queries(dep.spec, started).items():
            counts = {}
            for unit, n in warehouse.query(sql):
                counts[units.get(unit, unit)] = counts.get(units.get(unit, unit), 0) + int(n)
            found[kind] = counts
    except load_job.JobError as exc:
        say(f"what it merged is unknown: the warehouse did not answer: {str(exc).splitlines()[0][:200]}")
        return {}
    say("merged: " + (", ".join(f"{t} {n} file(s)" for t, n in found["merged"].items()) or "nothing new"))
    if found["quarantined"]:
        say("quarantined: " + ", ".join(f"{t} {n} file(s)" for t, n in found["quarantined"].items())
            + " (`dwctl status` says what to do)")
    return found
