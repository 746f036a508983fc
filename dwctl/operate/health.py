"""`dwctl status`'s facts, read from AWS, and the judgement of them: what is healthy, what needs action.

Gathering (the `read_*` functions) only calls AWS and returns plain dicts; `assess` turns them into
findings, each with the action that fixes it, so the judgement is tested without AWS at all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from dwctl.operate.aws import aws_errors

LATENCY_WINDOW = dt.timedelta(minutes=15)  # a task's CDC latency: the newest 1-minute maximum in this window
JOB_RUNS = 5  # the load job's last runs shown
ROW_COUNT_BATCH = 100  # tables counted per statement (the Data API takes 100 KB per statement)
RUNNING_TASK = "running"
# Task states that pass by themselves (CHAP_Monitoring, "Task status"): no action, a note.
TRANSITIONAL = {"creating", "starting", "stopping", "modifying", "moving", "deleting", "testing"}
FAILED_RUNS = {"FAILED", "TIMEOUT", "ERROR"}


@dataclass
class Finding:
    level: str  # "action" (exit 1) or "note"
    what: str
    action: str = ""


@dataclass
class Facts:
    """Everything status shows, as plain data (also its --format json)."""

    env: str
    now: dt.datetime
    instance: dict = field(default_factory=dict)
    tasks: list = field(default_factory=list)
    job: dict = field(default_factory=dict)
    tables: list = field(default_factory=list)
    warehouse_error: str | None = None
    queue: dict = field(default_factory=dict)


# --- reading ------------------------------------------------------------------------------------------
def task_resource_id(arn: str) -> str:
    """CloudWatch names a DMS task by the last part of its ARN (the stack's latency alarms do the same,
    templates/iac/monitoring.tf.j2)."""
    return arn.split(":")[-1]


def read_dms(dms, cloudwatch, instance_arn: str, instance_id: str, tasks: dict[str, str], now: dt.datetime):
    """The instance's status and, per task, its status, CDC latency and table statistics."""
    with aws_errors("reading the DMS replication instance"):
        found = dms.describe_replication_instances(
            Filters=[{"Name": "replication-instance-arn", "Values": [instance_arn]}])["ReplicationInstances"]
    instance = {"id": instance_id, "status": found[0]["ReplicationInstanceStatus"] if found else "not found"}
    out = []
    for name, arn in sorted(tasks.items()):
        with aws_errors(f"reading the DMS task {name}"):
            described = dms.describe_replication_tasks(
                Filters=[{"Name": "replication-task-arn", "Values": [arn]}], WithoutSettings=True)["ReplicationTasks"]
        task = described[0] if described else {}
        out.append({
            "name": name, "arn": arn, "status": task.get("Status", "not found"),
            "stop_reason": task.get("StopReason"), "failure": task.get("LastFailureMessage"),
            "latency_source": latency(cloudwatch, "CDCLatencySource", instance_id, arn, now),
            "latency_target": latency(cloudwatch, "CDCLatencyTarget", instance_id, arn, now),
            "table_statistics": table_statistics(dms, arn) if task else [],
        })
    return instance, out


def latency(cloudwatch, metric: str, instance_id: str, task_arn: str, now: dt.datetime) -> float | None:
    """The newest 1-minute Maximum of a task metric (AWS/DMS, dimensions ReplicationInstanceIdentifier and
    ReplicationTaskIdentifier: DMS User Guide, CHAP_Monitoring, task metrics); None without data."""
    with aws_errors(f"reading {metric}"):
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/DMS", MetricName=metric, StartTime=now - LATENCY_WINDOW, EndTime=now, Period=60,
            Statistics=["Maximum"],
            Dimensions=[{"Name": "ReplicationInstanceIdentifier", "Value": instance_id},
                        {"Name": "ReplicationTaskIdentifier", "Value": task_resource_id(task_arn)}])["Datapoints"]
    return max(points, key=lambda p: p["Timestamp"])["Maximum"] if points else None


def table_statistics(dms, task_arn: str, names: list[str] | None = None) -> list[dict]:
    """DescribeTableStatistics, every page (MaxRecords 500, the API's largest); `names` filters on table-name."""
    kwargs = {"ReplicationTaskArn": task_arn, "MaxRecords": 500}
    if names:
        kwargs["Filters"] = [{"Name": "table-name", "Values": sorted(set(names))}]
    rows = []
    while True:
        with aws_errors("reading the DMS table statistics"):
            page = dms.describe_table_statistics(**kwargs)
        rows += [{"schema": s.get("SchemaName"), "table": s.get("TableName"), "state": s.get("TableState"),
                  "full_load_rows": s.get("FullLoadRows"), "full_load_start": _iso(s.get("FullLoadStartTime")),
                  "full_load_end": _iso(s.get("FullLoadEndTime")), "inserts": s.get("Inserts"),
                  "updates": s.get("Updates"), "deletes": s.get("Deletes"), "reloaded": s.get("FullLoadReloaded"),
                  "error_rows": s.get("FullLoadErrorRows")} for s in page.get("TableStatistics", [])]
        if not page.get("Marker"):
            return rows
        kwargs["Marker"] = page["Marker"]


def read_job(glue, job_name: str) -> dict:
    with aws_errors(f"reading the runs of the load job {job_name}"):
        runs = glue.get_job_runs(JobName=job_name, MaxResults=JOB_RUNS)["JobRuns"]
    return {"name": job_name, "runs": [{
        "id": r["Id"], "state": r.get("JobRunState"), "started": _iso(r.get("StartedOn")),
        "completed": _iso(r.get("CompletedOn")), "seconds": r.get("ExecutionTime"),
        "error": r.get("ErrorMessage")} for r in sorted(runs, key=lambda r: r.get("StartedOn"), reverse=True)]}


def read_queue(sqs, cloudwatch, url: str, name: str, now: dt.datetime) -> dict:
    """Depth (GetQueueAttributes) and the age of the oldest message (AWS/SQS ApproximateAgeOfOldestMessage,
    dimension QueueName: Amazon SQS Developer Guide, sqs-available-cloudwatch-metrics)."""
    with aws_errors("reading the landed-file queue"):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SQS", MetricName="ApproximateAgeOfOldestMessage", StartTime=now - LATENCY_WINDOW,
            EndTime=now, Period=60, Statistics=["Maximum"],
            Dimensions=[{"Name": "QueueName", "Value": name}])["Datapoints"]
    oldest = max(points, key=lambda p: p["Timestamp"])["Maximum"] if points else None
    return {"name": name, "waiting": int(attributes.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)), "oldest_seconds": oldest}


def warehouse_queries(spec) -> dict[str, object]:
    """The statements status runs on the warehouse: the job's own freshness query, quarantine counts per
    table (held files are quarantined with a reason starting "held:", load_job.TableLoad.run) and rows."""
    from dwctl.render.job_config import queries
    from dwctl.render.text import sql_ident, sql_string
    from dwctl.spec import landed_layout as layout

    quarantine = f"{sql_ident(spec.warehouse.staging_schema)}.{sql_ident(layout.QUARANTINE_TABLE)}"
    analytics = sql_ident(spec.warehouse.analytics_schema)
    names = [t.name for t in spec.tables]
    counts = [" UNION ALL ".join(f"SELECT {sql_string(n)}, COUNT(*) FROM {analytics}.{sql_ident(n)}"
                                 for n in names[i:i + ROW_COUNT_BATCH]) for i in range(0, len(names), ROW_COUNT_BATCH)]
    return {"freshness": queries(spec)["freshness"],
            "quarantine": f'SELECT "table_name", SUM(CASE WHEN "reason" LIKE \'held:%\' THEN 1 ELSE 0 END), COUNT(*) '
                          f'FROM {quarantine} GROUP BY "table_name" ORDER BY "table_name"',
            "rows": counts}


def units_of(spec) -> dict[str, str]:
    """Each load unit (a table, or a partition) -> its spec table."""
    return {**{t.name: t.name for t in spec.tables}, **{p: t.name for t in spec.tables for p in t.part_names}}


def read_warehouse(warehouse, spec) -> list[dict]:
    """Per spec table: newest merged change (a partitioned table: its partitions' newest), held and
    quarantined files, rows. Raises load_job.JobError when the warehouse cannot answer."""
    q = warehouse_queries(spec)
    units = units_of(spec)
    tables = {t.name: {"table": t.name, "newest_change_at": None, "held": 0, "quarantined": 0, "rows": None}
              for t in spec.tables}
    for unit, at in warehouse.query(q["freshness"]):
        row = tables.get(units.get(unit))
        if row is not None and at and (row["newest_change_at"] is None or at > row["newest_change_at"]):
            row["newest_change_at"] = at
    for unit, held, total in warehouse.query(q["quarantine"]):
        row = tables.get(units.get(unit))
        if row is not None:
            row["held"] += int(held or 0)
            row["quarantined"] += int(total or 0) - int(held or 0)
    for statement in q["rows"]:
        for name, count in warehouse.query(statement):
            tables[name]["rows"] = int(count)
    return list(tables.values())


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def age_seconds(commit_time: str | None, now: dt.datetime) -> float | None:
    """Seconds from a DMS timestamp column value (UTC, see load_job.commit_seconds) to now."""
    if not commit_time:
        return None
    from dwctl.warehouse.load_job import commit_seconds

    return max(0.0, now.timestamp() - commit_seconds(commit_time))


# --- judging ------------------------------------------------------------------------------------------
def assess(facts: Facts, *, latency_limit: float, freshness_minutes: int, own_freshness: dict[str, int],
           holder: dict[str, str], names: dict) -> list[Finding]:
    """Findings in screen order. `holder`: table -> its DMS task; `names`: workgroup and secret for hints."""
    env = facts.env
    found = []
    if facts.instance.get("status") not in ("available", None):
        found.append(Finding("action", f"the DMS replication instance {facts.instance['id']} is "
                             f"{facts.instance['status']}",
                             "wait while it is modifying or upgrading; otherwise read its events (`aws dms "
                             "describe-events --source-type replication-instance`)"))
    stopped = set()
    for task in facts.tasks:
        status = task["status"]
        resume = (f"`aws dms start-replication-task --replication-task-arn {task['arn']} "
                  "--start-replication-task-type resume-processing`")
        if status == "failed":
            stopped.add(task["name"])
            found.append(Finding("action", f"DMS task {task['name']} failed: {task['failure'] or 'no message'}",
                                 f"read its log (CloudWatch group dms-tasks-{facts.instance.get('id')}), fix the "
                                 f"cause, then resume it: {resume}"))
        elif status in ("stopped", "ready"):
            stopped.add(task["name"])
            why = f" ({task['stop_reason']})" if task.get("stop_reason") else ""
            found.append(Finding("action", f"DMS task {task['name']} is {status}{why}: no change is replicated",
                                 f"resume it: {resume}" if status == "stopped" else
                                 f"start it: `aws dms start-replication-task --replication-task-arn {task['arn']} "
                                 "--start-replication-task-type start-replication`"))
        elif status in TRANSITIONAL:
            found.append(Finding("note", f"DMS task {task['name']} is {status}"))
        elif status != RUNNING_TASK:
            stopped.add(task["name"])
            found.append(Finding("action", f"DMS task {task['name']} is {status}",
                                 "check it in the DMS console; status shows it again once it runs"))
        if status == RUNNING_TASK:
            for side, hint in (("source", "the source delivers changes slowly (a long transaction, a busy source) "
                                "or the instance is too small (its CPU and memory alarms)"),
                               ("target", "DMS writes to S3 slowly: check the instance's CPU, memory and "
                                "free storage")):
                value = task[f"latency_{side}"]
                if value is not None and value > latency_limit:
                    found.append(Finding("action", f"DMS task {task['name']}'s CDC latency at the {side} is "
                                         f"{duration(value)}, over the alarm's {duration(latency_limit)}", hint))
        for stat in task["table_statistics"]:
            if stat["state"] == "Table error":
                table = names.get("by_source", {}).get((stat["schema"], stat["table"]), stat["table"])
                found.append(Finding("action", f"DMS reports {stat['schema']}.{stat['table']} in error "
                                     f"(task {task['name']})",
                                     f"read the task log for why, fix it, then `dwctl reload {table} --env {env}`"))
    runs = facts.job.get("runs", [])
    done = [r for r in runs if r["state"] not in ("STARTING", "RUNNING", "STOPPING", "WAITING")]
    if not runs:
        found.append(Finding("note", f"the load job {facts.job.get('name')} has not run yet (it runs on its "
                             f"schedule; now: `dwctl run --env {env} --follow`)"))
    elif done and done[0]["state"] in FAILED_RUNS:
        found.append(Finding("action", f"the load job's last run {done[0]['id']} ended {done[0]['state']}: "
                             f"{(done[0]['error'] or 'no message').strip()}",
                             f"fix the cause named above (the run's error log has the failing statement), then "
                             f"`dwctl run --env {env} --follow`"))
    if facts.warehouse_error:
        found.append(Finding("action", f"the warehouse did not answer: {facts.warehouse_error}",
                             "if the load job never ran, run it (`dwctl run --env "
                             f"{env} --follow`); otherwise check the workgroup and your access to the admin secret"))
    quarantine = (f"`dwctl sql quarantine --workgroup {names.get('workgroup')} --secret-arn "
                  f"{names.get('secret_arn')}` lists them with Redshift's reason; after the fix, "
                  f"`dwctl run --env {env} --retry-quarantined`")
    for row in facts.tables:
        name = row["table"]
        limit = own_freshness.get(name, freshness_minutes) * 60
        age = row.get("age_seconds")
        if age is not None and age > limit:
            task = holder.get(name)
            why = f"its DMS task {task} is not running (above)" if task in stopped else \
                "check its DMS table state above and the job's last runs"
            found.append(Finding("action", f"table {name} is stale: its newest change is {duration(age)} old, "
                                 f"over {duration(limit)}",
                                 f"{why}; to resync it from the source: `dwctl reload {name} --env {env}`"))
        if row["held"]:
            found.append(Finding("action", f"table {name}: {row['held']} file(s) held: they carry columns the spec "
                                 "lacks", "`dwctl import` (or add the columns), `dwctl render`, deploy: held files "
                                 "load on the next run"))
        if row["quarantined"]:
            found.append(Finding("action", f"table {name}: {row['quarantined']} file(s) quarantined", quarantine))
    oldest = facts.queue.get("oldest_seconds")
    if oldest is not None and oldest > freshness_minutes * 60:
        found.append(Finding("action", f"the queue {facts.queue['name']} is backing up: {facts.queue['waiting']} "
                             f"file event(s) waiting, the oldest {duration(oldest)} old",
                             "the load job is not draining it: see its last runs above; "
                             f"`dwctl run --env {env} --follow` runs it now"))
    return found


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d"


