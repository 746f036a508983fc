"""Reloads and stops that used to end quietly wrong (issue 22 items 1, 2, 4 and 5; issue 21 item 10).

Each case ends equal to a plain replay of the source, or stopped loudly, naming the table and the fix,
run after run, and equal to the source once the fix is applied. Through the CLI users run
(`dwctl sql verify --database`, one DuckDB file kept between runs as the warehouse is), with DMS's
table statistics given as the job reads them in AWS (`--table-statistics`, the JSON of `aws dms
describe-table-statistics`), or through the job's own code with botocore's Stubber at the DMS API
boundary (the Stubber checks each request and response against the real API model). Nothing else is
mocked: real Parquet files, the rendered SQL, DuckDB with Redshift's rules.
"""

from __future__ import annotations

import datetime
import functools
import json
from pathlib import Path

import boto3
import duckdb
import pytest
from botocore.stub import Stubber

from dwctl.warehouse import load_job
from dwctl.warehouse.verifier import DuckDBWarehouse, LocalLanding, Transpiler
from tests.support.dms_files import change, table_statistics
from tests.warehouse.test_exactly_once import (
    FOLDER,
    SPEC,
    SPEC_TEXT,
    Delivery,
    canonical_runs,
    deliver,
    expected_state,
    land,
    life,
    notes,
    one_file_per_change,
    row,
    stamp,
    verify,
)
from tests.warehouse.test_parallel_load import PARALLEL_TEXT, ParallelDelivery, generations, streams

TASK = "arn:aws:dms:eu-west-1:123456789012:task:SHOPPRODFULLLOADANDCDC"
REDSHIFT_DATA_MODEL = Path(load_job.__file__).parent / "botocore_data" / "redshift-data" / "2019-12-20" / "service-2.json"


def database(root: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(root / "wh.duckdb"))


def loaded_keys(root: Path) -> set[str]:
    con = database(root)
    try:
        return {r[0].rsplit("/", 1)[1] for r in con.execute("SELECT s3_key FROM staging._dwctl_load_log").fetchall()}
    finally:
        con.close()


# --- the Data API's 40 statements per batch (issue 21 item 10, issue 22 "How to prove it") ----------------
def test_the_data_api_takes_at_most_40_statements_a_batch():
    """Redshift Data API reference, BatchExecuteStatement: Sqls, at most 40 items; in botocore's model
    SqlList max 40, in the model the job ships and in the installed botocore's."""
    import botocore.session

    shipped = json.loads(REDSHIFT_DATA_MODEL.read_text(encoding="utf-8"))
    assert shipped["shapes"]["BatchExecuteStatementInput"]["members"]["Sqls"]["shape"] == "SqlList"
    assert shipped["shapes"]["SqlList"]["max"] == load_job.MAX_BATCH == 40
    model = botocore.session.get_session().get_service_model("redshift-data")
    assert model.operation_model("BatchExecuteStatement").input_shape.members["Sqls"].metadata["max"] == 40


def test_the_verifier_refuses_a_batch_the_data_api_would_refuse(tmp_path):
    """`dwctl sql verify` runs the job's batches as the Data API would: one of 41 statements fails
    (it used to pass in DuckDB while the job, in AWS, quarantined the reload it carried)."""
    con = duckdb.connect()
    warehouse = DuckDBWarehouse(con, Transpiler(con, LocalLanding(tmp_path, "")))
    warehouse.batch(["CREATE TABLE t (x INTEGER)"] + ["INSERT INTO t VALUES (1)"] * 39, "forty")
    with pytest.raises(load_job.JobError, match="41 statements, the Data API takes 40 per batch"):
        warehouse.batch(["INSERT INTO t VALUES (2)"] * 41, "forty-one")
    assert con.execute("SELECT COUNT(*), SUM(x) FROM t").fetchone() == (39, 39), "nothing of the refused batch ran"


# --- issue 22 item 1: a reload of a history table whose files have several layouts -----------------------
OLD_LAYOUTS = ([c for c in ("Op", "dms_commit_ts", "id", "note", "dms_change_seq")],  # before amount was added
               ["Op", "dms_commit_ts", "id", "amount", "note", "dms_change_seq"])  # another column order


def test_a_history_tables_reload_with_files_of_several_layouts_goes_through(tmp_path):
    """The first load landed in three files of three layouts, changes followed, then a reload rewrote
    LOAD00000001 (its other files stay, merged: the reload stages them again in its batch). That batch
    was 48 statements (two merge passes and two layouts' worth), over the Data API's 40: quarantined
    in AWS. Now the layouts are staged first and the batch is a fixed size: the reload goes through,
    sweeps the key deleted while the table was suspended, and the history is the in-order one's."""
    life_ = life({1: "a", 2: "b", 3: "c", 4: None, 5: None},
                 [(1, "U", "a2"), (3, "U", "c2"), (2, "D", None), (6, "I", "f")], reload_at=3, uncaptured=1)
    d = one_file_per_change(life_)
    rows = [r for _, part in d.initial_load for r in part]
    d.initial_load = [("LOAD00000001.parquet", rows[0:2]), ("LOAD00000002.parquet", rows[2:3], OLD_LAYOUTS[1]),
                      ("LOAD00000003.parquet", rows[3:5], OLD_LAYOUTS[0])]  # keys 4 and 5 have no amount
    d.before = [(*f, OLD_LAYOUTS[n % 2]) for n, f in enumerate(d.before)]
    snapshot = [r for _, part in d.reload for r in part]
    d.reload = [("LOAD00000001.parquet", snapshot)]
    state, history = deliver(tmp_path / "late", [d.initial_load, d.before, d.reload + d.after])
    assert notes(state) == {1: "a2", 3: "c2", 4: None, 5: None, 6: "f"}, "key 2, deleted while suspended, is swept"
    assert state == expected_state(life_[0], life_[1])
    assert (state, history) == deliver(tmp_path / "in_order", [d.initial_load + d.before, d.reload + d.after])


def test_a_quarantined_reload_stops_its_table_run_after_run_until_it_loads(tmp_path):
    """The reload's file cannot be loaded (here: unreadable). Before, the next run merged the changes
    after it and succeeded quietly, with the row deleted at the source still in analytics. Now every run
    fails naming the table, the later files wait (in the quarantine: nothing is lost), retrying does not
    hide it, and once the reload's file is right the table equals the source."""
    life_ = life({1: "a", 2: "b"}, [(1, "U", "a2"), (2, "D", None), (3, "I", "c")], reload_at=2, uncaptured=1)
    d = one_file_per_change(life_)
    deliver(tmp_path, [d.initial_load + d.before])
    bad = tmp_path / "bucket" / FOLDER / d.reload[0][0]
    bad.write_bytes(b"not a Parquet file")  # the reload's LOAD00000001, rewritten
    first = verify(tmp_path, ok=False)
    assert first.exit_code != 0 and "acct: raw/app/acct/LOAD00000001.parquet quarantined" in first.output
    land(tmp_path, d.after)
    for extra in ((), ("--retry-quarantined",), ()):
        again = verify(tmp_path, *extra, ok=False)
        assert again.exit_code != 0 and "acct: " in again.output, "a loud stop stays loud"
        assert "dwctl sql quarantine" in again.output or "wait behind" in again.output
    assert 2 in notes(table_rows(tmp_path)), "nothing merged past the quarantined reload"
    land(tmp_path, d.reload)  # DMS reloads again, or the file is put right
    verify(tmp_path)
    verify(tmp_path)
    assert table_rows(tmp_path) == expected_state(life_[0], life_[1])


def table_rows(root: Path) -> dict:
    con = database(root)
    try:
        return {k: {"note": n, "amount": a} for k, n, a in con.execute("SELECT id, note, amount FROM analytics.acct").fetchall()}
    finally:
        con.close()


# --- issue 22 item 2: a parallel full load reloaded with a segment that was empty ------------------------
def parallel_reload(tmp_path: Path):
    """No change since the first load, then a reload whose new segment01 file (a key inserted while the
    table was suspended) lands alone, transferred before the rewritten segment03 file."""
    life_ = life({1: "a", 3: "c"}, [(0, "I", "new"), (3, "U", "c3")], reload_at=1, uncaptured=1)
    d = ParallelDelivery(life_, starts=[0, 1, 2])
    assert d.before == [] and streams(d.reload) - streams(d.initial_load) == {"segment01/"}
    return life_, d, [d.initial_load, d.reload[:1], d.reload[1:], d.after]


def test_a_reloads_file_in_a_segment_empty_before_is_the_reloads_by_dmss_statistics(tmp_path):
    """Its file used to be merged as a late file of the first load and swept by the reload: lost
    silently (test_parallel_load shows that this is what names alone give). DMS's statistics say the
    reload began before it was transferred: it starts the reload's generation at once."""
    life_, d, runs = parallel_reload(tmp_path)
    starts = [d.initial_start] + [d.reload_start] * 3
    state, history = deliver(tmp_path / "late", runs, PARALLEL_TEXT, starts=starts)
    assert notes(state) == {0: "new", 1: "a", 3: "c3"}
    assert state == expected_state(life_[0], life_[1]) and generations(tmp_path / "late") == 2
    assert (state, history) == deliver(tmp_path / "in_order", canonical_runs(d), PARALLEL_TEXT,
                                       starts=[d.initial_start, d.reload_start])


# --- issue 22 item 4: a reload written under new, higher LOAD names --------------------------------------
def higher_named_reload():
    """A reload DMS names LOAD00000002.. after the first load's LOAD00000001: key 2 was deleted while
    the table was suspended, so only the reload's absence of it says it is gone."""
    life_ = life({1: "a", 2: "b", 3: "c"}, [(1, "U", "a2"), (2, "D", None), (3, "U", "c2")], reload_at=2, uncaptured=1)
    d = one_file_per_change(life_)
    rows = [r for _, part in d.reload for r in part]
    d.reload = [("LOAD00000002.parquet", rows[:1]), ("LOAD00000003.parquet", rows[1:])]
    return life_, d


def test_a_reload_under_new_higher_names_without_statistics_is_the_limit_names_give(tmp_path):
    """What the files' names alone give: more of the first load. The verifier without DMS's table
    statistics (README: limits); the job in AWS always reads them (next tests)."""
    life_, d = higher_named_reload()
    state, _ = deliver(tmp_path, [d.initial_load + d.before, d.reload + d.after])
    assert 2 in state, "taken for more files of the first load: the row deleted at the source stays"


def test_a_reload_under_new_higher_names_is_told_by_dmss_statistics(tmp_path):
    life_, d = higher_named_reload()
    starts = [d.initial_start, d.reload_start]
    state, history = deliver(tmp_path / "a", [d.initial_load + d.before, d.reload + d.after], starts=starts)
    assert state == expected_state(life_[0], life_[1]) and 2 not in state
    # its second file first, in a run of its own: still the reload's, and the same history
    late, _ = deliver(tmp_path / "b", [d.initial_load + d.before, d.reload[1:], d.reload[:1] + d.after],
                      starts=[d.initial_start, d.reload_start, d.reload_start])
    assert late == state


def stubbed_dms(pages: list[dict]):
    """A real boto3 DMS client whose DescribeTableStatistics answers `pages` in turn (Stubber: each
    request's parameters and each response are checked against the dms model)."""
    dms = boto3.client("dms", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    stub = Stubber(dms)
    for n, page in enumerate(pages):
        expected = {"ReplicationTaskArn": TASK, "MaxRecords": 500, **({"Marker": f"m{n}"} if n else {})}
        stub.add_response("describe_table_statistics",
                          {"ReplicationTaskArn": TASK, **page, **({"Marker": f"m{n + 1}"} if n + 1 < len(pages) else {})},
                          expected)
    return dms, stub


def statistics_page(start: str | None, *others) -> dict:
    """A DescribeTableStatistics page as botocore parses it: FullLoadStartTime a timezone-aware datetime."""
    entries = []
    for schema, table, when in (("app", "acct", start), *others):
        entry = {"SchemaName": schema, "TableName": table, "TableState": "Table completed", "FullLoadReloaded": True}
        if when is not None:
            entry["FullLoadStartTime"] = datetime.datetime.strptime(when, "%Y-%m-%d %H:%M:%S.%f").replace(
                tzinfo=datetime.timezone(datetime.timedelta(hours=2))) + datetime.timedelta(hours=2)
        entries.append(entry)
    return {"TableStatistics": entries}


def test_the_job_reads_dmss_statistics_through_the_dms_api_and_tells_the_reload(tmp_path):
    """The job's run() with its own dms_statistics on a boto3 DMS client (Stubber at the API boundary:
    two pages of DescribeTableStatistics, Marker-paged): the reload under new names is a reload."""
    from dwctl.warehouse.verifier import Verifier

    life_, d = higher_named_reload()
    (tmp_path / "bucket" / FOLDER).mkdir(parents=True)
    verifier = Verifier(SPEC, duckdb.connect(str(tmp_path / "wh.duckdb")), tmp_path / "work")
    for files, start in ((d.initial_load + d.before, d.initial_start), (d.reload + d.after, d.reload_start)):
        land(tmp_path, files)
        # a time zone two hours east of UTC, as botocore may give it: the job compares in UTC
        dms, stub = stubbed_dms([statistics_page(None, ("app", "other", start)), statistics_page(start)])
        with stub:
            verifier.run(tmp_path / "bucket", statistics=functools.partial(load_job.dms_statistics, dms, [TASK],
                                                                            verifier.config))
            stub.assert_no_pending_responses()
    state = {k: {"note": n, "amount": a} for k, n, a in verifier.con.execute(
        "SELECT id, note, amount FROM analytics.acct").fetchall()}
    assert state == expected_state(life_[0], life_[1])


def test_dmss_statistics_are_matched_by_either_name_in_utc_and_a_failure_stops_the_run():
    config = load_job.Config.from_json(json.dumps(json.loads(_config_text())))
    page = statistics_page("2024-01-01 12:00:02.500000", ("APP", "ACCT", "2024-01-01 11:00:00.000000"),
                           ("app", "unknown", "2024-01-02 00:00:00.000000"))
    assert load_job.table_load_starts([page], config) == {"acct": "2024-01-01 12:00:02.500000"}, \
        "the latest start of the entries naming the table (any case); other tables ignored"
    assert load_job.table_load_starts([statistics_page(None)], config) == {}, "before its full load: no start"
    dms = boto3.client("dms", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    with Stubber(dms) as stub:
        stub.add_client_error("describe_table_statistics", "AccessDeniedFault", "not authorized",
                              expected_params={"ReplicationTaskArn": TASK, "MaxRecords": 500})
        with pytest.raises(load_job.JobError, match=r"DescribeTableStatistics of .* failed, so nothing was loaded[\s\S]*"
                                                    r"dms:DescribeTableStatistics"):
            load_job.dms_statistics(dms, [TASK], config)


@functools.lru_cache(maxsize=1)
def _config_text() -> str:
    from dwctl.render.engine import render

    return render(SPEC, "acct.yaml")["iac/glue_scripts/load_job_config.json"]


def test_the_statistics_file_of_sql_verify_is_checked(tmp_path):
    from click.testing import CliRunner

    from dwctl.cli import cli

    (tmp_path / "acct.yaml").write_text(SPEC_TEXT, encoding="utf-8")
    (tmp_path / "bucket" / FOLDER).mkdir(parents=True)
    bad = tmp_path / "stats.json"
    bad.write_text(json.dumps({"TableStatistics": [{"SchemaName": "app", "TableName": "acct",
                                                    "FullLoadStartTime": "yesterday"}]}), encoding="utf-8")
    result = CliRunner().invoke(cli, ["sql", "verify", "-c", str(tmp_path / "acct.yaml"), "--data",
                                      str(tmp_path / "bucket"), "--table-statistics", str(bad)])
    assert result.exit_code != 0 and "TableStatistics[0].FullLoadStartTime" in result.output
    assert "Traceback" not in result.output


def test_the_job_is_given_every_task_and_may_read_their_statistics_only(rendered):
    import hcl2

    tree = hcl2.loads(rendered["iac/loader_job.tf"])
    job = next(b["aws_glue_job"]["loader"] for b in tree["resource"] if "aws_glue_job" in b)
    tasks = "[for task in aws_dms_replication_task.this : task.replication_task_arn]"
    assert job["default_arguments"][0]["--dms_task_arns"].replace(" ", "") == ('${join(",",' + tasks + ")}").replace(" ", "")
    policy = next(b["aws_iam_policy_document"]["loader"] for b in tree["data"]
                  if "loader" in b.get("aws_iam_policy_document", {}))
    statement = next(s for s in policy["statement"] if s.get("sid") == ["ReadTableStatistics"])
    assert statement["actions"] == [["dms:DescribeTableStatistics"]]
    assert str(statement["resources"][0]).replace(" ", "") == ("${" + tasks + "}").replace(" ", "")
    assert not [s for s in policy["statement"] if s is not statement and any(a.startswith("dms:") for a in s["actions"][0])]


# --- issue 22 item 5: MySQL TRUNCATE, then the documented fix -------------------------------------------
def truncated(tmp_path: Path, reload_names: list[str], starts: list | None):
    """Changes merged, then TRUNCATE at the source (DMS deletes the table's files), a change after it,
    then the documented fix: reload the table in DMS, and a change after that. The runs before the
    reload must fail, naming the table and the fix; the reload's and every later one must not, and the
    table must equal the source."""
    def cdc(second, op, key, note):
        return (f"20240101-1200{second:02d}000.parquet", [change(op, stamp(second), second * 7, **row(key, {"note": note, "amount": None}))])

    (tmp_path / "acct.yaml").write_text(SPEC_TEXT, encoding="utf-8")
    (tmp_path / "bucket" / FOLDER).mkdir(parents=True)
    first_load = [change("I", "2024-01-01 11:00:00.000000", None, **row(k, {"note": n, "amount": None})) for k, n in ((1, "a"), (2, "b"))]
    land(tmp_path, [("LOAD00000001.parquet", first_load), cdc(1, "U", 1, "a2"), cdc(2, "I", 3, "c")])
    verify(tmp_path, start=starts and starts[0])
    for landed in (tmp_path / "bucket" / FOLDER).iterdir():  # TRUNCATE: HandleSourceTableTruncated
        landed.unlink()
    for files in ([], [cdc(3, "I", 4, "d")]):  # the truncate seen; then a change after it lands
        land(tmp_path, files)
        stopped = verify(tmp_path, ok=False, start=starts and starts[0])
        assert stopped.exit_code != 0 and "acct: 3 merged file(s) were deleted from the bucket" in stopped.output
        assert "reload the table in DMS" in stopped.output
    snapshot = [change("I", stamp(4), None, **row(4, {"note": "d", "amount": None}))]
    land(tmp_path, [(name, snapshot) for name in reload_names] + [cdc(5, "U", 4, "d2")])
    for _ in range(3):
        verify(tmp_path, start=starts and starts[1])
    assert table_rows(tmp_path) == {4: {"note": "d2", "amount": None}}


def test_a_truncate_stops_the_table_and_the_documented_reload_clears_the_stop(tmp_path):
    """Before, the reload put the table right and every later run still failed ("N merged file(s) were
    deleted"), forever: the fix never cleared the stop."""
    truncated(tmp_path, ["LOAD00000001.parquet"], None)


def test_a_truncate_then_a_reload_under_new_names_clears_the_stop_by_dmss_statistics(tmp_path):
    truncated(tmp_path, ["LOAD00000002.parquet"], ["2024-01-01 11:00:00.000000", stamp(3.5)])


def test_a_deletion_recorded_once_stays_a_stop_in_later_runs(tmp_path):
    """Queue discovery reports a deleted file once (its "Object Deleted" event, test_load_job): the job
    records it in the warehouse (here, the row it writes), so the runs after it fail too, with a file
    list that shows nothing gone, until a reload is merged."""
    life_ = life({1: "a"}, [(1, "U", "a2")])
    d = one_file_per_change(life_)
    deliver(tmp_path, [d.initial_load + d.before])
    con = database(tmp_path)
    con.execute("INSERT INTO staging._dwctl_deleted VALUES ('acct', 'raw/app/acct/LOAD00000001.parquet', 1, now())")
    con.close()
    for _ in range(2):
        stopped = verify(tmp_path, ok=False)
        assert stopped.exit_code != 0 and "acct: 1 merged file(s) were deleted" in stopped.output
    land(tmp_path, [("LOAD00000001.parquet", [change("I", stamp(5), None, **row(1, {"note": "a2", "amount": None}))])])
    verify(tmp_path)
    verify(tmp_path)
    assert "LOAD00000001.parquet" in loaded_keys(tmp_path)


def test_statistics_of_a_reload_whose_files_have_not_landed_change_nothing_before_they_do(tmp_path):
    """A run reads the statistics of a reload that has begun, but none of its files has landed: the
    changes merged then are the first load's; the reload's files start its generation when they land."""
    life_, d = higher_named_reload()
    state, _ = deliver(tmp_path, [d.initial_load, d.before, d.reload + d.after],
                       starts=[d.initial_start, d.reload_start, d.reload_start])
    assert state == expected_state(life_[0], life_[1]) and generations(tmp_path) == 2


def test_delivery_names_a_higher_reload_after_the_first_loads_files():
    d = Delivery(life({1: "a", 2: "b"}, [(1, "U", "a2")], reload_at=1))
    assert [f[0] for f in d.initial_load] == ["LOAD00000001.parquet"] and d.reload_start == stamp(1.5)
