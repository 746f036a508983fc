"""The freshness metric, through the load job's own run(): each table's newest merged change is kept in the
warehouse in the merge's transaction, and every run publishes its age (NewestChangeAge) for every table that
has one, so a table that stops changing keeps being published with a growing age.

The warehouse is DuckDB through the verifier's transpiler (the rendered SQL itself); the landed files are
DMS-shaped Parquet in a folder. CloudWatch is the one AWS boundary: a real boto3 client answered by
botocore's Stubber, which checks each PutMetricData request against the API model; the request's data
is captured from the client's own event hook to check the values.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from pathlib import Path

import boto3
import duckdb
import pytest
from botocore.stub import ANY, Stubber

from dwctl.render.engine import render, table_view
from dwctl.spec.read import load_spec
from dwctl.warehouse import load_job
from dwctl.warehouse.verifier import (
    JOB_CONFIG,
    VERIFY_BUCKET,
    VERIFY_ROLE,
    DuckDBWarehouse,
    LocalLanding,
    Transpiler,
    VerifyStorage,
)
from tests.conftest import EXAMPLE
from tests.support.dms_files import change, cdc_name, table_dir, write

NAMESPACE = "dwctl/shop-prod"


def stamp(seconds_ago: float) -> str:
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds_ago)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")


class Metrics:
    """A stubbed CloudWatch client; `sent` holds each PutMetricData's MetricData as the client built it."""

    def __init__(self, calls: int, error: str | None = None):
        self.client = boto3.client("cloudwatch", region_name="eu-west-1", aws_access_key_id="testing",
                                   aws_secret_access_key="testing")
        self.stub = Stubber(self.client)
        self.sent: list[list[dict]] = []
        self.client.meta.events.register("provide-client-params.cloudwatch.PutMetricData",
                                         lambda params, **kw: self.sent.append(params["MetricData"]))
        for _ in range(calls):
            if error:
                self.stub.add_client_error("put_metric_data", "AccessDenied", error)
            else:
                self.stub.add_response("put_metric_data", {}, {"Namespace": NAMESPACE, "MetricData": ANY})

    def values(self) -> dict[str | None, float]:
        """Table (None: the pipeline's figure) -> age published in the last run."""
        return {(d["Dimensions"][0]["Value"] if d.get("Dimensions") else None): d["Value"] for d in self.sent[-1]}


class Job:
    """The example spec's warehouse in DuckDB and its landing folder; each run() is the job's run()."""

    def __init__(self, tmp_path: Path, spec_text: str | None = None):
        path = tmp_path / "pipeline.yaml"
        path.write_text(spec_text or EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
        self.spec = load_spec(path)
        self.config = load_job.Config.from_json(render(self.spec, "pipeline.yaml")[JOB_CONFIG])
        self.root, self.work = tmp_path / "bucket", tmp_path / "work"
        (self.root / self.spec.landing.prefix).mkdir(parents=True)
        self.con = duckdb.connect()
        self.runs = 0

    def land(self, table: str, name: str, rows: list[dict]):
        view = table_view(self.spec, self.spec.table(table))
        write(table_dir(self.root, view) / name, view, rows)

    def run(self, metrics: Metrics | None):
        self.runs += 1
        landing = LocalLanding.at(self.root, self.spec.landing.prefix, {"public"})
        storage = VerifyStorage(landing, self.work / str(self.runs))
        warehouse = DuckDBWarehouse(self.con, Transpiler(self.con, landing))
        args = {"landing_bucket": VERIFY_BUCKET, "manifest_prefix": "_dwctl_manifests", "copy_role_arn": VERIFY_ROLE,
                "JOB_RUN_ID": f"run{self.runs}", "concurrency": "1", "metric_namespace": NAMESPACE}
        with (metrics.stub if metrics else _nothing()):
            merged = load_job.run(args, storage, warehouse, self.config,
                                  load_job.ListingDiscovery(storage, warehouse, self.config), log=lambda _: None,
                                  metrics=metrics.client if metrics else None)
        if metrics:
            metrics.stub.assert_no_pending_responses()
        return merged

    def kept(self) -> list[tuple]:
        return self.con.execute('SELECT "table_name", "newest_change_at" FROM "staging"."_dwctl_freshness" '
                                "ORDER BY 1, 2").fetchall()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


WHEN = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def order(order_id: int, op: str, at: str, seq: int | None):
    return change(op, at, seq, order_id=order_id, customer_id=1, status="new", total_amount=Decimal("1.00"),
                  currency="EUR", placed_at=WHEN, updated_at=WHEN)


def customer(at: str):
    return change("I", at, None, customer_id=1, email="a@example.com", marketing_opt_in=False, created_at=WHEN,
                  updated_at=WHEN)


def test_each_run_publishes_the_age_of_each_tables_newest_merged_change(tmp_path):
    job = Job(tmp_path)
    full_load_at, newest = stamp(3600), stamp(600)
    job.land("orders", "LOAD00000001.parquet", [order(1, "I", full_load_at, None), order(2, "I", full_load_at, None)])
    job.land("orders", cdc_name(1), [order(1, "U", stamp(900), 5), order(3, "I", newest, 6)])
    job.land("customers", "LOAD00000001.parquet", [customer(stamp(7200))])
    metrics = Metrics(calls=1)
    assert job.run(metrics)["orders"] == 2
    ages = metrics.values()
    assert set(ages) == {"orders", "customers", None}  # products, order_items: nothing merged, nothing published
    assert 600 <= ages["orders"] < 660 and 7200 <= ages["customers"] < 7260
    assert ages[None] == ages["customers"]  # the pipeline's figure: the stalest table
    assert {d["Unit"] for d in metrics.sent[0]} == {"Seconds"}
    assert {d["MetricName"] for d in metrics.sent[0]} == {"NewestChangeAge"}
    assert [row[0] for row in job.kept()] == ["customers", "orders"]  # one row each: older ones pruned

    time.sleep(1.1)  # the table stalls: nothing lands, and the next run still publishes it, older
    later = Metrics(calls=1)
    assert job.run(later) == {t: 0 for t in job.config.tables}
    assert later.values()["orders"] >= ages["orders"] + 1


def test_a_table_with_its_own_alarm_is_left_out_of_the_pipelines_figure(tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8").replace("    name: customers\n",
                                                       "    name: customers\n    freshness_minutes: 1440\n", 1)
    job = Job(tmp_path, text)
    assert job.config.freshness_own_alarm == {"customers"}
    job.land("orders", cdc_name(1), [order(3, "I", stamp(600), 6)])
    job.land("customers", "LOAD00000001.parquet", [customer(stamp(7200))])
    metrics = Metrics(calls=1)
    job.run(metrics)
    ages = metrics.values()
    assert 7200 <= ages["customers"] and ages[None] == ages["orders"] < 700


def test_a_batch_keeps_its_freshness_in_the_merges_transaction(tmp_path):
    """Older changes arriving late do not make a table look fresher, nor move its newest change back."""
    job = Job(tmp_path)
    newest = stamp(300)
    job.land("orders", cdc_name(2), [order(3, "I", newest, 9)])
    job.run(None)  # no metrics client: the local verifier's case, nothing published
    job.land("orders", cdc_name(1), [order(2, "I", stamp(5000), 4)])
    metrics = Metrics(calls=1)
    job.run(metrics)
    assert 300 <= metrics.values()["orders"] < 360
    assert job.kept() == [("orders", newest)]


def test_a_metric_that_cannot_be_published_fails_the_run_after_loading(tmp_path):
    job = Job(tmp_path)
    job.land("orders", cdc_name(1), [order(3, "I", stamp(60), 6)])
    metrics = Metrics(calls=1, error="User is not authorized to perform: cloudwatch:PutMetricData")
    with pytest.raises(load_job.JobError, match="freshness metric not published: .*cloudwatch:PutMetricData"):
        job.run(metrics)
    assert job.kept()[0][0] == "orders"  # the load itself went through


def test_more_than_twenty_tables_go_twenty_per_call(tmp_path):
    """PutMetricData takes "no more than 20 metrics per call" in the botocore Glue's Python shell has (1.24.21)."""

    class Warehouse:
        def query(self, sql):
            return [[f"t{i:02d}", "2024-01-01 00:00:00.000000"] for i in range(25)]

        def execute(self, sql):
            pass

    class Config:
        queries = {"freshness": "f", "prune_freshness": "p"}
        target = {f"t{i:02d}": f"t{i:02d}" for i in range(25)}
        freshness_own_alarm = set()

    metrics = Metrics(calls=2)
    with metrics.stub:
        assert load_job.publish_freshness(metrics.client, Warehouse(), Config(), {"metric_namespace": NAMESPACE},
                                          log=lambda _: None) == []
    assert [len(call) for call in metrics.sent] == [20, 6]


def test_commit_timestamps_are_read_as_utc():
    assert load_job.commit_seconds("1970-01-01 00:01:40.250000") == 100.25
    assert load_job.commit_seconds("2024-05-01 12:00:00") == dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc).timestamp()


@pytest.mark.parametrize("merge_statements, kept", [(36, True), (37, False)])
def test_a_batch_at_the_data_apis_limit_merges_without_its_freshness(tmp_path, merge_statements, kept):
    """A batch is one BatchExecuteStatement of at most 40 statements (load_job.MAX_BATCH): the freshness
    statement goes in only when it fits (the LOCK, COPY of the CDC files, the file list, then the merge); without it
    the table's freshness reads older for one batch, never newer, and the merge itself is never refused."""
    job = Job(tmp_path)
    config = job.config
    config.merge_sql = dict(config.merge_sql, orders="\n".join(f"SELECT {i};" for i in range(merge_statements)))
    sent = []

    class Warehouse:
        def batch(self, statements, name):
            sent.append(statements)

    class Storage:
        def put(self, key, body, content_type):
            return f"s3://bucket/{key}"

    loader = load_job.TableLoad(Storage(), Warehouse(), config, {"manifest_prefix": "m", "landing_bucket": "b",
                                                                 "copy_role_arn": VERIFY_ROLE}, "orders", "r")
    loader.merge([load_job.Landed("raw/public/orders/20240101-120000000.parquet", 10, "e")])
    (statements,) = sent
    assert len(statements) == 3 + merge_statements + kept <= load_job.MAX_BATCH
    assert statements[0] == config.queries["lock_bookkeeping"]
    assert (config.record_freshness["orders"] in statements) is kept
    if kept:
        assert statements.index(config.record_freshness["orders"]) == 3  # after the LOCK and COPYs, before the merge
