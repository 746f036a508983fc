"""`dwctl smoke --env ENV`: right after `dwctl apply`, prove the deployed stack end to end, touching no data.

Everything it needs comes from the environment's Terraform outputs (`dwctl output`), so nothing
is typed. Each step is reported pass or fail, a failure with the one fix to apply:

1. DMS: test-connection of the source and target endpoints from the replication instance.
2. The load job, run once with `--mode smoke` (dwctl/warehouse/load_job.py, smoke): every call the
   job makes, as its role (list, footer read, manifest written and deleted, queue receive that
   deletes nothing, Data API as its own user, COPY of the canary), then every table's DDL, COPY and
   merge passes in scratch schemas it drops; its rows come back through <scratch>/report.json.
3. Lake Formation: `check-grants` (no IAM_ALLOWED_PRINCIPALS permission on the catalog).
4. DMS: each replication task's status.

AWS calls use the caller's credentials (boto3's usual chain); the job's own checks run as the job.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from dwctl.cli_options import env_option, format_option, json_on_failure, output_option, spec_option

POLL = 10.0  # seconds between two status reads
TERMINAL = {"SUCCEEDED", "FAILED", "TIMEOUT", "ERROR", "STOPPED", "EXPIRED"}  # Glue API, JobRunState
OUTPUTS = ("dms_replication_instance_arn", "dms_source_endpoint_arn", "dms_target_endpoint_arn",
           "dms_replication_task_arns", "dms_security_group_id", "dms_log_group_name", "loader_job_name")
FIX = {
    "source": "Let the replication instance reach the source: allow its security group ({dms_security_group_id}) "
              "on the source's port in the source's security group, check the secret's user and password and the "
              "TLS mode (source_ssl_mode); `dwctl doctor --dsn ...` checks the source itself.",
    "target": "DMS cannot use the landing bucket: check the DMS S3 target role (iam.tf), the landing bucket policy "
              "(s3.tf) and the KMS key policy (kms.tf) against the message above.",
    "job": "The smoke run did not report: read its error log (Glue console, the run {run}) for the failure; "
           "`dwctl smoke` again once fixed.",
    "busy": "A run of the load job is in progress (the job runs one at a time): run `dwctl smoke` again when it ends.",
    "start": "Start it: `aws dms start-replication-task --replication-task-arn {arn} --start-replication-task-type "
             "start-replication` (the stack starts it when start_replication_task is true).",
    "failed": "Read the task's log (log group {dms_log_group_name}), fix the cause (`dwctl doctor --dsn ...` for "
              "the source), then resume it: `aws dms start-replication-task --replication-task-arn {arn} "
              "--start-replication-task-type resume-processing`.",
}
sleep = time.sleep  # the tests make waiting instant


def clients(region: str) -> dict:
    """The AWS clients of the checks (the one AWS boundary of this command)."""
    import boto3

    from dwctl.deploy import check_grants

    return {"dms": boto3.client("dms", region_name=region), "glue": boto3.client("glue", region_name=region),
            "s3": boto3.client("s3", region_name=region), "lakeformation": check_grants.client_for(region)}


def new_smoke_id() -> str:
    import secrets

    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def _error(exc: Exception) -> str:
    return " ".join(str(exc).split())


# --- 1. DMS endpoints ---------------------------------------------------------------------------
def test_connection(dms, instance: str, endpoint: str, timeout: float):
    """(True, "") once DMS says the endpoint connects, else (False, why). TestConnection starts the test;
    DescribeConnections, filtered on the endpoint and the instance, reports its Status: testing,
    successful or failed, with LastFailureMessage (AWS DMS API Reference, API_TestConnection,
    API_DescribeConnections)."""
    from botocore.exceptions import ClientError

    try:
        dms.test_connection(ReplicationInstanceArn=instance, EndpointArn=endpoint)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "InvalidResourceStateFault":  # else: a test is running
            return False, _error(exc)
    filters = [{"Name": "endpoint-arn", "Values": [endpoint]}, {"Name": "replication-instance-arn", "Values": [instance]}]
    waited = 0.0
    while True:
        found = dms.describe_connections(Filters=filters).get("Connections", [])
        status = found[0].get("Status", "testing") if found else "testing"
        if status == "successful":
            return True, ""
        if status not in ("testing",):
            return False, f"{status}: {found[0].get('LastFailureMessage') or 'DMS gave no message'}"
        if waited >= timeout:
            return False, f"still testing after {int(waited)} s"
        sleep(POLL)
        waited += POLL


def endpoint_checks(dms, outputs: dict, timeout: float, progress) -> list:
    from dwctl.report import Check

    rows = []
    for label in ("source", "target"):
        progress(f"testing the DMS {label} endpoint from the replication instance ...")
        ok, why = test_connection(dms, outputs["dms_replication_instance_arn"], outputs[f"dms_{label}_endpoint_arn"],
                                  timeout)
        rows.append(Check(f"dms {label} endpoint", "pass" if ok else "fail",
                          "test-connection successful" if ok else why, FIX[label].format(**outputs)))
    return rows


# --- 2. the load job's smoke run -------------------------------------------------------------------
def start_job(glue, job: str, smoke_id: str, timeout: float, tables: str = "") -> str | None:
    """The run id, or None when another run kept the job busy all along. Run Arguments override the
    job's DefaultArguments of the same name, the others stay ("job NonOverridableArguments will
    override job run Arguments, which will override job DefaultArguments", Glue Developer Guide,
    aws-glue-programming-etl-glue-arguments.html); the job runs one at a time (MaxConcurrentRuns 1:
    ConcurrentRunsExceededException, Glue API, StartJobRun)."""
    waited = 0.0
    while True:
        try:
            arguments = {"--mode": "smoke", "--smoke_id": smoke_id, **({"--tables": tables} if tables else {})}
            return glue.start_job_run(JobName=job, Arguments=arguments)["JobRunId"]
        except glue.exceptions.ConcurrentRunsExceededException:
            if waited >= timeout:
                return None
            sleep(POLL)
            waited += POLL


def wait_for_run(glue, job: str, run_id: str, timeout: float) -> dict:
    waited = 0.0
    while True:
        found = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
        if found.get("JobRunState") in TERMINAL or waited >= timeout:
            return found
        sleep(POLL)
        waited += POLL


def read_report(glue, s3, job: str, smoke_id: str) -> list[dict]:
    """The rows the run left in <scratch>/report.json (then deleted: the run's last scratch file)."""
    from dwctl.spec.landed_layout import SMOKE_DIR

    defaults = glue.get_job(JobName=job)["Job"].get("DefaultArguments", {})
    bucket = defaults["--landing_bucket"]
    key = f"{defaults['--manifest_prefix'].strip('/')}/{SMOKE_DIR}/{smoke_id}/report.json"
    rows = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8"))["checks"]
    s3.delete_object(Bucket=bucket, Key=key)
    return rows


def job_checks(glue, s3, outputs: dict, smoke_id: str, run_id: str | None, timeout: float, progress) -> list:
    from dwctl.report import Check

    job = outputs["loader_job_name"]
    if run_id is None:
        return [Check("load job smoke run", "fail", f"{job} stayed busy with another run", FIX["busy"])]
    progress(f"waiting for the smoke run {run_id} of {job} ...")
    run = wait_for_run(glue, job, run_id, timeout)
    state = run.get("JobRunState", "?")
    head = f"run {run_id}: {state}" + (f" after {run['ExecutionTime']} s" if run.get("ExecutionTime") else "")
    if state not in TERMINAL:
        return [Check("load job smoke run", "fail", f"{head}, still running after {int(timeout)} s",
                      FIX["job"].format(run=run_id))]
    try:
        reported = read_report(glue, s3, job, smoke_id)
    except Exception as exc:  # the run died before its report, or the caller may not read it: say so
        if state == "SUCCEEDED":  # the run succeeds only when every check passed
            return [Check("load job smoke run", "pass", f"{head}; every check passed (its report was not "
                          f"readable here: {_error(exc)[:200]})")]
        message = run.get("ErrorMessage") or "no error message"
        return [Check("load job smoke run", "fail", f"{head}: {message}", FIX["job"].format(run=run_id))]
    rows = [Check("load job smoke run", "pass" if state == "SUCCEEDED" else "fail", head)]  # the fixes: its checks
    rows += [Check(f"job: {r['check']}", r["status"], r["detail"], r.get("fix")) for r in reported]
    return rows


# --- 3. Lake Formation, 4. DMS tasks ------------------------------------------------------------------
def grant_check(client, merged):
    from dwctl.deploy import check_grants
    from dwctl.report import Check

    try:
        found = check_grants.findings(merged, client)
    except Exception as exc:  # botocore's ClientError, or no credentials: the check could not run
        return Check("lake formation grants", "fail", _error(exc), "Run it with Lake Formation admin rights "
                     "(lakeformation:ListPermissions), or `dwctl check-grants` as an LF admin.")
    if found:
        return Check("lake formation grants", "fail", "; ".join(found), check_grants.REVOKE)
    return Check("lake formation grants", "pass", f"no {check_grants.IAM_ALLOWED} permission on "
                 f"{merged.catalog.database} or its {len(merged.tables)} tables")


def task_checks(dms, outputs: dict) -> list:
    """Each task's Status (AWS DMS API Reference, API_ReplicationTask): running is the only healthy one."""
    from dwctl.report import Check

    arns = outputs["dms_replication_task_arns"]
    found = dms.describe_replication_tasks(Filters=[{"Name": "replication-task-arn", "Values": sorted(arns.values())}],
                                           WithoutSettings=True).get("ReplicationTasks", [])
    by_arn = {t["ReplicationTaskArn"]: t for t in found}
    rows = []
    for name, arn in sorted(arns.items()):
        task = by_arn.get(arn, {})
        status = task.get("Status", "missing")
        detail = status + "".join(f"; {task[k]}" for k in ("StopReason", "LastFailureMessage") if task.get(k))
        if status == "running":
            rows.append(Check(f"dms task {name}", "pass", detail))
        elif status in ("starting", "modifying", "testing"):
            rows.append(Check(f"dms task {name}", "warn", f"{detail}: run `dwctl smoke` again in a few minutes"))
        else:
            fix = FIX["failed" if status == "failed" else "start"].format(arn=arn, **outputs)
            rows.append(Check(f"dms task {name}", "fail", detail, fix))
    return rows


# --- the command ----------------------------------------------------------------------------------
CALLER = "Check that your AWS credentials and region reach this account (`aws sts get-caller-identity`) and may {what}."


def guarded(name: str, what: str, step):
    """step()'s rows, or one failing row when an AWS call of the caller failed (no traceback)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from dwctl.report import Check

    try:
        return step()
    except (BotoCoreError, ClientError) as exc:
        return [Check(name, "fail", _error(exc), CALLER.format(what=what))]


def run_checks(outputs: dict, merged, aws: dict, timeout: float, progress, tables: str = "") -> tuple[list, str]:
    """Every step, in order; the job runs while DMS tests its endpoints. Returns (rows, smoke id)."""
    from dwctl.report import Check

    smoke_id = new_smoke_id()
    job, glue_rights = outputs["loader_job_name"], "start Glue job runs, read them and read and delete the run's report"
    progress(f"starting the load job {job} with --mode smoke ({smoke_id}) ...")
    started = guarded("load job smoke run", glue_rights, lambda: [start_job(aws["glue"], job, smoke_id, timeout, tables)])
    rows = guarded("dms endpoints", "test DMS connections", lambda: endpoint_checks(aws["dms"], outputs, timeout, progress))
    if isinstance(started[0], Check):  # StartJobRun itself failed: its row
        rows += started
    else:
        rows += guarded("load job smoke run", glue_rights,
                        lambda: job_checks(aws["glue"], aws["s3"], outputs, smoke_id, started[0], timeout, progress))
    rows.append(grant_check(aws["lakeformation"], merged))
    rows += guarded("dms tasks", "describe DMS tasks", lambda: task_checks(aws["dms"], outputs))
    return rows, smoke_id


def stack_outputs(stack, tf) -> dict:
    from dwctl.deploy import actions as deploy
    from dwctl.errors import NotReady

    outputs = {k: v.get("value") for k, v in json.loads(deploy.output(stack, tf, as_json=True) or "{}").items()}
    missing = [name for name in OUTPUTS if outputs.get(name) in (None, "", {})]
    if missing:
        raise NotReady(f"{stack.env.name} has no Terraform output {', '.join(missing)}: run `dwctl apply --env "
                       f"{stack.env.name}` first (smoke tests a deployed stack).")
    return outputs


@click.command("smoke")
@spec_option
@output_option
@env_option("Environment to prove (its Terraform outputs name everything)")
@click.option("--terraform-bin", metavar="PATH",
              help="Terraform/OpenTofu binary [default: $DWCTL_TERRAFORM, then terraform, then tofu on PATH].")
@click.option("--timeout", type=click.IntRange(min=1), default=30, show_default=True, metavar="MINUTES",
              help="Give up waiting for a step (a connection test, the job's run) after this long.")
@click.option("--tables", metavar="A,B", default="",
              help="The warehouse step for these tables only (a large spec, a few at a time) [default: all].")
@format_option()
def smoke_command(spec_path: Path, output_root: Path, env_name: str | None, terraform_bin: str | None,
                  timeout: int, tables: str, fmt: str) -> None:
    """After apply: prove the deployed stack end to end (DMS, the load job, Redshift, grants), touching no data.

    Exit 0 when every step passes, 1 when one fails (each failure with its fix), 2 on a usage error.
    """
    from dwctl.deploy.commands import _setup
    from dwctl.deploy.terraform import Interrupted
    from dwctl.errors import UsageError
    from dwctl.render.environments import env_spec
    from dwctl.report import to_json, to_text
    from dwctl.spec.read import load_spec

    machine = fmt == "json"
    with json_on_failure(machine):
        spec = load_spec(spec_path)
        stack, tf = _setup(spec_path, output_root, env_name, terraform_bin, machine=machine, spec=spec)
        outputs = stack_outputs(stack, tf)
        merged = env_spec(spec, stack.env.name)
        unknown = sorted({t for t in tables.split(",") if t} - {t.name for t in merged.tables})
        if unknown:
            raise UsageError(f"--tables: {', '.join(unknown)} not in the spec's tables")
        progress = lambda text: click.echo(f"dwctl: {text}", err=True)  # noqa: E731
        try:
            rows, smoke_id = run_checks(outputs, merged, clients(merged.region), timeout * 60.0, progress, tables)
        except KeyboardInterrupt:
            raise Interrupted("interrupted: a smoke run of the load job already started goes on and cleans up "
                              "after itself (its scratch schemas and files).") from None
    if machine:
        click.echo(to_json(rows, env=stack.env.name, smoke_id=smoke_id))
    else:  # click.echo drops the colour off a terminal, with --no-color and NO_COLOR
        colors = {"pass": "green", "warn": "yellow", "fail": "red"}
        paint = lambda text, status: click.style(text, fg=colors[status], bold=status == "fail" or None)  # noqa: E731
        click.echo(to_text(rows, totals=f"smoke {stack.env.name}", paint=paint))
    sys.exit(1 if any(r.status == "fail" for r in rows) else 0)
