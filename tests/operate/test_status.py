"""`dwctl status` on the example stack: healthy, and each unhealthy state with its exit code and action line.

AWS (DMS, CloudWatch, Glue, the Redshift Data API, SQS) is the one boundary, answered by botocore's
Stubber on real boto3 clients (tests/operate/stack.py): every request is checked against the API model,
and the Stubber fails the test on any call not expected, in order, with exactly these parameters.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from dwctl.cli import cli
from dwctl.operate import aws as operate_aws
from dwctl.operate import status
from tests.conftest import EXAMPLE
from tests.operate.stack import NOW, TASK_ARN, Aws, expect_status, write_outputs

ANSI = "\x1b["


@pytest.fixture
def aws(monkeypatch):
    stubbed = Aws()
    monkeypatch.setattr(operate_aws, "client", stubbed.client)
    monkeypatch.setattr(status, "now_utc", lambda: NOW)
    with stubbed:
        yield stubbed
        stubbed.done()


def status_of(tmp_path, *args, color=False, **outputs):
    path = write_outputs(tmp_path, **outputs)
    return CliRunner().invoke(cli, ["status", "-c", str(EXAMPLE), "--outputs", str(path), *args], color=color)


def actions(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith(("needs action:", "  -> "))]


def test_a_healthy_stack_exits_0_and_shows_every_part(aws, tmp_path, example_spec):
    expect_status(aws, example_spec)
    result = status_of(tmp_path)
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("prod: status at 2024-05-01 12:00:00 UTC")
    assert "DMS instance shop-prod-dms: available" in out
    assert "full-load-and-cdc  running  4s                  11s" in out
    assert "public.orders       Table completed  2024-04-29T12:00:00Z  5m    1,000" in out
    assert "jr_2  SUCCEEDED  2024-05-01T11:46:00Z  62s" in out
    assert "orders       6m         2024-05-01 11:54:00.123456  0     0            1,002" in out
    assert "Queue shop-prod-landed: 3 waiting, 0 in flight, oldest 45s" in out
    assert out.rstrip().endswith("healthy: nothing needs action") and ANSI not in out
    print(out)  # the screen the README's day-two section describes


def test_colour_only_on_a_terminal(aws, tmp_path, example_spec):
    expect_status(aws, example_spec, task="stopped", stop_reason="Stop Reason USER_REQUEST")
    result = status_of(tmp_path, color=True)
    assert result.exit_code == 1 and ANSI in result.output


@pytest.mark.parametrize("state, expected", [
    (dict(task="stopped", stop_reason="Stop Reason USER_REQUEST"),
     ["needs action: DMS task full-load-and-cdc is stopped (Stop Reason USER_REQUEST): no change is replicated",
      f"  -> resume it: `aws dms start-replication-task --replication-task-arn {TASK_ARN} "
      "--start-replication-task-type resume-processing`"]),
    (dict(task="failed", failure="Last Error Task 'x' was suspended after 9 successive recovery failures"),
     ["needs action: DMS task full-load-and-cdc failed: Last Error Task 'x' was suspended after 9 successive "
      "recovery failures",
      "  -> read its log (CloudWatch group dms-tasks-shop-prod-dms), fix the cause, then resume it: `aws dms "
      f"start-replication-task --replication-task-arn {TASK_ARN} --start-replication-task-type resume-processing`"]),
    (dict(latency=(3.0, 1800.0)),
     ["needs action: DMS task full-load-and-cdc's CDC latency at the target is 30m, over the alarm's 15m",
      "  -> DMS writes to S3 slowly: check the instance's CPU, memory and free storage"]),
    (dict(runs=[{"Id": "jr_9", "JobRunState": "FAILED", "StartedOn": NOW - dt.timedelta(minutes=10),
                 "ExecutionTime": 40, "ErrorMessage": "JobError: 1 problem(s); the other files and tables were loaded"}]),
     ["needs action: the load job's last run jr_9 ended FAILED: JobError: 1 problem(s); the other files and tables "
      "were loaded",
      "  -> fix the cause named above (the run's error log has the failing statement), then `dwctl run --env prod "
      "--follow`"]),
    (dict(newest={"orders": "2024-05-01 09:30:00.000000"}),
     ["needs action: table orders is stale: its newest change is 2h30m old, over 60m",
      "  -> check its DMS table state above and the job's last runs; to resync it from the source: "
      "`dwctl reload orders --env prod`"]),
    (dict(quarantine=[("orders", 0, 2)]),
     ["needs action: table orders: 2 file(s) quarantined",
      "  -> `dwctl sql quarantine --workgroup shop-prod --secret-arn arn:aws:secretsmanager:eu-west-1:123456789012:"
      "secret:redshift!shop-prod-admin-AbCdEf` lists them with Redshift's reason; after the fix, `dwctl run --env "
      "prod --retry-quarantined`"]),
    (dict(quarantine=[("customers", 1, 1)]),
     ["needs action: table customers: 1 file(s) held: they carry columns the spec lacks",
      "  -> `dwctl import` (or add the columns), `dwctl render`, deploy: held files load on the next run"]),
    (dict(queue_age=5400.0, waiting=812),
     ["needs action: the queue shop-prod-landed is backing up: 812 file event(s) waiting, the oldest 90m old",
      "  -> the load job is not draining it: see its last runs above; `dwctl run --env prod --follow` runs it now"]),
    (dict(table_state="Table error"),
     ["needs action: DMS reports public.customers in error (task full-load-and-cdc)",
      "  -> read the task log for why, fix it, then `dwctl reload customers --env prod`"]),
])
def test_each_unhealthy_state_exits_1_with_its_action(aws, tmp_path, example_spec, state, expected):
    expect_status(aws, example_spec, **state)
    result = status_of(tmp_path)
    assert result.exit_code == 1, result.output
    assert actions(result)[:2] == expected, result.output


def test_a_stale_table_behind_a_stopped_task_points_at_the_task(aws, tmp_path, example_spec):
    expect_status(aws, example_spec, task="stopped", newest={"orders": "2024-04-30 12:00:00.000000"})
    found = actions(status_of(tmp_path))
    assert "needs action: table orders is stale: its newest change is 24h00m old, over 60m" in found
    assert any("its DMS task full-load-and-cdc is not running (above)" in line for line in found)


def test_a_table_with_its_own_threshold_is_judged_by_it(aws, tmp_path, example_spec):
    """The thresholds come from the stack's own outputs, as its alarms use them."""
    expect_status(aws, example_spec, newest={"products": "2024-05-01 09:00:00.000000"})
    result = status_of(tmp_path, alarm_thresholds={"cdc_latency_seconds": 900, "freshness_minutes": 60,
                                                   "table_freshness_minutes": {"products": 1440}})
    assert result.exit_code == 0, result.output


def test_a_warehouse_without_bookkeeping_says_to_run_the_job(aws, tmp_path, example_spec):
    expect_status(aws, example_spec, warehouse_error='ERROR: relation "staging._dwctl_freshness" does not exist')
    result = status_of(tmp_path)
    assert result.exit_code == 1
    assert 'needs action: the warehouse did not answer: ' in result.output
    assert "if the load job never ran, run it (`dwctl run --env prod --follow`)" in result.output


def test_a_table_never_merged_is_no_action(aws, tmp_path, example_spec):
    """An empty source table lands nothing (DMS makes no folder for it): not stale, just none merged."""
    expect_status(aws, example_spec, newest={"order_items": None})
    result = status_of(tmp_path)
    assert result.exit_code == 0, result.output
    assert "order_items  none merged" in result.output


def test_json_is_one_document_with_the_actions(aws, tmp_path, example_spec):
    expect_status(aws, example_spec, quarantine=[("orders", 0, 1)])
    result = status_of(tmp_path, "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["env"] == "prod"
    assert [a["what"] for a in doc["actions"]] == ["table orders: 1 file(s) quarantined"]
    assert {t["table"]: t["quarantined"] for t in doc["tables"]}["orders"] == 1
    assert doc["dms"]["tasks"][0]["latency_target"] == 11.0 and doc["queue"]["waiting"] == 3


def test_watch_shows_it_again_until_interrupted(aws, tmp_path, example_spec, monkeypatch):
    expect_status(aws, example_spec)
    expect_status(aws, example_spec, task="stopped")
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(status.time, "sleep", sleep)
    result = status_of(tmp_path, "--watch", "--interval", "10")
    assert sleeps == [10, 10] and result.output.count("prod: status at") == 2
    assert result.exit_code == 1  # the last screen's


def test_a_missing_output_names_it_and_the_fix(aws, tmp_path, example_spec):
    """A stack applied from an older render lacks the queue outputs: status says which and how to add it."""
    path = write_outputs(tmp_path)
    doc = json.loads(path.read_text())
    del doc["loader_queue_url"]
    path.write_text(json.dumps(doc))
    expect_status(aws, example_spec, queue=False)
    result = CliRunner().invoke(cli, ["status", "-c", str(EXAMPLE), "--outputs", str(path)])
    assert result.exit_code == 1
    assert "the prod stack has no output 'loader_queue_url'" in result.output and "dwctl apply --env prod" in result.output


def test_outputs_that_are_not_terraform_output_json_are_a_usage_error(tmp_path):
    bad = tmp_path / "outputs.json"
    bad.write_text('{"loader_job_name": "x"}')
    result = CliRunner().invoke(cli, ["status", "-c", str(EXAMPLE), "--outputs", str(bad)])
    assert result.exit_code == 2 and "not `terraform output -json` output" in result.output


OUTPUT_STANDIN = '''#!{python}
import json, os, sys
if sys.argv[1:2] == ["version"]:
    print(json.dumps({{"terraform_version": "1.11.4"}}))
elif sys.argv[1:2] == ["output"] and "-json" in sys.argv and os.environ.get("TF_WORKSPACE") == "prod":
    print(open({outputs!r}).read())
else:
    sys.exit(9)
'''


def test_without_outputs_it_reads_them_with_terraform_as_dwctl_output_does(aws, tmp_path, example_spec, monkeypatch):
    """Terraform is a stand-in at the process boundary: `output -json` in the environment's workspace."""
    import shutil
    import sys

    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "config" / "pipeline.yaml")
    assert CliRunner().invoke(cli, ["render"]).exit_code == 0
    tf = tmp_path / "bin" / "terraform"
    tf.parent.mkdir()
    tf.write_text(OUTPUT_STANDIN.format(python=sys.executable, outputs=str(write_outputs(tmp_path))))
    tf.chmod(0o755)
    not_initialised = CliRunner().invoke(cli, ["status", "--terraform-bin", str(tf)])
    assert not_initialised.exit_code == 1 and "dwctl init --env prod" in not_initialised.output
    state = tmp_path / "iac" / ".dwctl" / "prod"
    state.mkdir(parents=True, exist_ok=True)
    (state / "init.json").write_text(json.dumps({"env": "prod", "workspace": "prod", "backend_file": None,
                                                 "backend_sha256": None}))
    expect_status(aws, example_spec)
    result = CliRunner().invoke(cli, ["status", "--terraform-bin", str(tf)])
    assert result.exit_code == 0, result.output
    assert "healthy: nothing needs action" in result.output


def test_watch_and_json_do_not_mix(tmp_path):
    result = status_of(tmp_path, "--watch", "--format", "json")
    assert result.exit_code == 2 and "give one of them" in result.output
