"""`dwctl status`: one screen for the whole deployed pipeline; exit 0 healthy, 1 when something needs action."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time

import click

from dwctl.cli_options import color_wanted, format_option, json_on_failure
from dwctl.operate import deployed

WATCH_SECONDS = 30


def gather(dep, now: dt.datetime, sleep=time.sleep):
    """Read everything status shows (AWS calls only) into health.Facts."""
    from dwctl.operate import health
    from dwctl.operate.aws import client
    from dwctl.warehouse import load_job

    facts = health.Facts(dep.env, now)
    cloudwatch = client("cloudwatch", dep.region)
    facts.instance, facts.tasks = health.read_dms(
        client("dms", dep.region), cloudwatch, dep.output("dms_replication_instance_arn"),
        dep.output("dms_replication_instance_id"), dep.output("dms_replication_task_arns"), now)
    facts.job = health.read_job(client("glue", dep.region), dep.output("loader_job_name"))
    warehouse = load_job.Warehouse(client("redshift-data", dep.region), dep.output("redshift_workgroup_name"),
                                   dep.output("redshift_database_name"),
                                   dep.output("redshift_admin_password_secret_arn"), sleep=sleep, timeout=300)
    try:
        facts.tables = health.read_warehouse(warehouse, dep.spec)
    except load_job.JobError as exc:
        facts.warehouse_error = str(exc).splitlines()[0][:300]
        facts.tables = [{"table": t.name, "newest_change_at": None, "held": 0, "quarantined": 0, "rows": None}
                        for t in dep.spec.tables]
    for row in facts.tables:
        row["age_seconds"] = health.age_seconds(row["newest_change_at"], now)
    facts.queue = health.read_queue(client("sqs", dep.region), cloudwatch, dep.output("loader_queue_url"),
                                    dep.output("loader_queue_name"), now)
    return facts


def judge(dep, facts):
    from dwctl.operate import health
    from dwctl.spec.dms_tasks import assign

    spec = dep.spec
    holder = {t.name: task for task, tables in assign(spec).items() for t in tables}
    by_source = {(t.schema_, name): t.name for t in spec.tables for name in {*t.source_tables, t.name, *t.part_names}}
    return health.assess(
        facts, latency_limit=float(dep.threshold("cdc_latency_seconds", 900)),
        freshness_minutes=int(dep.threshold("freshness_minutes", spec.warehouse.freshness_minutes)),
        own_freshness=dict(dep.threshold("table_freshness_minutes",
                                         {t.name: t.freshness_minutes for t in spec.tables if t.freshness_minutes})),
        holder=holder, names={"by_source": by_source, "workgroup": dep.outputs.get("redshift_workgroup_name"),
                              "secret_arn": dep.outputs.get("redshift_admin_password_secret_arn")})


# --- the screen ---------------------------------------------------------------------------------------
def _table(header: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    return [(indent + "  ".join(str(c).ljust(w) for c, w in zip(row, widths))).rstrip() for row in [header, *rows]]


def _n(value) -> str:
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def screen(facts, findings, color: bool) -> str:
    from dwctl.operate.health import duration

    bad = lambda text: click.style(text, fg="red", bold=True) if color else text  # noqa: E731
    good = lambda text: click.style(text, fg="green") if color else text  # noqa: E731
    lines = [f"{facts.env}: status at {facts.now.strftime('%Y-%m-%d %H:%M:%S')} UTC", ""]
    status = facts.instance.get("status", "?")
    lines.append(f"DMS instance {facts.instance.get('id')}: {good(status) if status == 'available' else bad(status)}")
    lines += _table(["TASK", "STATUS", "CDC LATENCY SOURCE", "TARGET"], [
        [t["name"], t["status"], _latency(t["latency_source"]), _latency(t["latency_target"])] for t in facts.tasks])
    stats = [s | {"task": t["name"]} for t in facts.tasks for s in t["table_statistics"]]
    if stats:
        lines += _table(["SOURCE TABLE", "STATE", "FULL LOAD ENDED", "TOOK", "ROWS", "INSERTS", "UPDATES", "DELETES",
                         "RELOADED"], [
            [f"{s['schema']}.{s['table']}", s["state"] or "-", s["full_load_end"] or "-", _took(s),
             _n(s["full_load_rows"]), _n(s["inserts"]), _n(s["updates"]), _n(s["deletes"]),
             "yes" if s["reloaded"] else "no"] for s in stats])
    lines += ["", f"Load job {facts.job.get('name')}: last {len(facts.job.get('runs', []))} run(s)"]
    lines += _table(["RUN", "STATE", "STARTED", "DURATION", "ERROR"], [
        [r["id"], r["state"], r["started"] or "-", duration(r["seconds"]) if r["seconds"] is not None else "-",
         (r["error"] or "").splitlines()[0][:80] if r["error"] else ""] for r in facts.job.get("runs", [])])
    lines += ["", "Tables" + (f" (warehouse: {facts.warehouse_error})" if facts.warehouse_error else "")]
    lines += _table(["TABLE", "FRESHNESS", "NEWEST CHANGE (UTC)", "HELD", "QUARANTINED", "ROWS"], [
        [r["table"], duration(r["age_seconds"]) if r["age_seconds"] is not None else "none merged",
         r["newest_change_at"] or "-", _n(r["held"]), _n(r["quarantined"]), _n(r["rows"])] for r in facts.tables])
    q = facts.queue
    oldest = duration(q["oldest_seconds"]) if q.get("oldest_seconds") is not None else "-"
    lines += ["", f"Queue {q.get('name')}: {q.get('waiting')} waiting, {q.get('in_flight')} in flight, oldest {oldest}"]
    notes = [f for f in findings if f.level == "note"]
    actions = [f for f in findings if f.level == "action"]
    lines.append("")
    lines += [f"note: {f.what}" for f in notes]
    if not actions:
        lines.append(good("healthy: nothing needs action"))
    for f in actions:
        lines.append(bad(f"needs action: {f.what}"))
        lines.append(f"  -> {f.action}")
    return "\n".join(lines)


def _took(stat: dict) -> str:
    from dwctl.operate.health import duration

    if not (stat["full_load_start"] and stat["full_load_end"]):
        return "-"
    start, end = (dt.datetime.strptime(stat[k], "%Y-%m-%dT%H:%M:%SZ") for k in ("full_load_start", "full_load_end"))
    return duration((end - start).total_seconds())


def _latency(value) -> str:
    from dwctl.operate.health import duration

    return "no data" if value is None else duration(value)


def document(facts, findings) -> dict:
    actions = [f for f in findings if f.level == "action"]
    return {"ok": not actions, "env": facts.env, "at": facts.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dms": {"instance": facts.instance, "tasks": facts.tasks}, "job": facts.job, "tables": facts.tables,
            "warehouse_error": facts.warehouse_error, "queue": facts.queue,
            "actions": [{"what": f.what, "action": f.action} for f in actions],
            "notes": [f.what for f in findings if f.level == "note"]}


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


@click.command("status")
@deployed.options
@click.option("--watch", is_flag=True, help=f"Show it again every --interval seconds until Ctrl-C "
              f"(each refresh runs a few warehouse queries).")
@click.option("--interval", type=click.IntRange(min=5), default=WATCH_SECONDS, show_default=True,
              help="Seconds between refreshes with --watch.")
@format_option()
def status_command(spec_path, output_root, env_name, terraform_bin, outputs_file, watch, interval, fmt):
    """One screen for the deployed pipeline: DMS tasks, the load job's runs, each table's freshness, the queue.

    Exit 0 when healthy; 1 when something needs action, each named with the action that fixes it.
    """
    from dwctl.errors import UsageError

    machine = fmt == "json"
    if watch and machine:
        raise UsageError("--watch redraws a screen and --format json prints one document: give one of them")
    with json_on_failure(machine, env=env_name):
        dep = deployed.load(spec_path, output_root, env_name, terraform_bin, outputs_file)
    # Styled always: click.echo drops the colour unless stdout is a terminal (and on --no-color / NO_COLOR).
    color = not machine
    while True:
        with json_on_failure(machine, env=dep.env):
            facts = gather(dep, now_utc())
            findings = judge(dep, facts)
        code = 1 if any(f.level == "action" for f in findings) else 0
        if machine:
            click.echo(json.dumps(document(facts, findings), indent=2, default=str))
        else:
            if watch and color_wanted():
                click.clear()
            click.echo(screen(facts, findings, color))
        if not watch:
            sys.exit(code)
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            sys.exit(code)
        if not color_wanted():
            click.echo("")
