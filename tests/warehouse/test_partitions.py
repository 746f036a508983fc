"""A partitioned Postgres table equals the source whatever DMS delivers for each partition (issue 11),
through `dwctl sql verify`, with test_exactly_once's lives, deliveries and oracle.

Each partition is a source table to DMS: the rendered rules select it and land it in its own folder
(tests/support/dms_files.DmsTask reads them), with its own full load, its own reload (DMS reloads
tables one by one) and its own CDC files. The primary key (id, region) holds the partition key, as
Postgres requires, so the two partitions share ids: a row moved from one partition to the other is a
delete of (id, 'a') and an insert of (id, 'b'). Hypothesis draws a life and a delivery per partition
and interleaves the two deliveries' runs anyhow; after the last run the one analytics table must
equal a plain replay of both partitions, and its history the one the same files give delivered in
order, partition after partition.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dwctl.cli import cli
from dwctl.render.engine import render, table_view
from dwctl.spec import landed_layout as layout
from dwctl.spec.read import parse_spec
from tests.support.dms_files import DmsTask, mapping_rules, spec_text_with_tables, write
from tests.warehouse.test_exactly_once import (
    Delivery,
    canonical_runs,
    deliveries,
    expected_state,
    life,
    one_file_per_change,
)

TABLE = """
  - schema: app
    name: pay
    partitions: [pay_a, Pay_B]
    columns:
      - {name: id, type: bigint, nullable: false}
      - {name: region, type: "varchar(2)", nullable: false}
      - {name: note, type: varchar(12)}
      - {name: amount, type: "numeric(10,2)"}
    primary_key: [id, region]
    history: true
"""
SPEC_TEXT = spec_text_with_tables(TABLE)
SPEC = parse_spec(SPEC_TEXT, "pay.yaml")
VIEW = table_view(SPEC, SPEC.table("pay"))
REGION = {"pay_a": "a", "Pay_B": "b"}  # the partition key: list partitions FOR VALUES IN ('a') / ('b')
SEQ_OFFSET = {"pay_a": 0, "Pay_B": 3}  # one task: change sequences are unique across its tables


def landed_folder(source: str) -> str:
    """Where the rendered DMS rules land this partition (schema/table after renames)."""
    landed = DmsTask(mapping_rules(render(SPEC, "pay.yaml"))).land("app", source, ["id", "region", "note", "amount"])
    assert landed is not None, f"no rule selects app.{source}"
    return f"{SPEC.landing.prefix}/{landed[0]}"


FOLDERS = {source: landed_folder(source) for source in REGION}


def partition_files(source: str, files: list[tuple[str, list[dict]]]) -> list[tuple[str, str, list[dict]]]:
    """A partition's files as (folder, name, rows), each row in that partition."""
    seq = layout.CHANGE_SEQ_COLUMN

    def move(r: dict) -> dict:
        shifted = f"{int(r[seq]) + SEQ_OFFSET[source]:035d}" if r[seq] else ""
        return {**r, "region": REGION[source], seq: shifted}

    return [(FOLDERS[source], name, [move(r) for r in rows]) for name, rows in files]


def verify(root: Path, *extra: str):
    result = CliRunner().invoke(cli, ["sql", "verify", "-c", str(root / "pay.yaml"), "--data", str(root / "bucket"),
                                      "--database", str(root / "wh.duckdb"), *extra])
    assert result.exit_code == 0, result.output
    return result


def deliver(root: Path, runs: list[list[tuple[str, str, list[dict]]]]):
    """Land each run's files, `dwctl sql verify` after each and once more, and export analytics and history."""
    (root / "pay.yaml").write_text(SPEC_TEXT, encoding="utf-8")
    (root / "bucket" / SPEC.landing.prefix).mkdir(parents=True, exist_ok=True)
    for files in runs:
        for folder, name, rows in files:
            write(root / "bucket" / folder / name, VIEW, rows)
        verify(root)
    verify(root, "--export", str(root / "out"), "--format", "parquet")
    state = {(r["id"], r["region"]): {"note": r["note"], "amount": r["amount"]}
             for r in pq.read_table(root / "out" / "pay.parquet").to_pylist()}
    history = sorted(((r["id"], r["region"], r["note"], r["amount"], r["valid_from"], r["valid_to"], r["is_current"],
                       r["dwctl_op"]) for r in pq.read_table(root / "out" / "pay_history.parquet").to_pylist()),
                     key=lambda v: tuple((x is None, str(x)) for x in v))
    return state, history


def expected(lives: dict) -> dict:
    """Both partitions replayed: {(id, region): values}."""
    return {(k, REGION[source]): v for source, (initial, events, _) in lives.items()
            for k, v in expected_state(initial, events).items()}


class PartitionDelivery(Delivery):
    """A partition's files: in the spec's layout, the reload under the first load's names (this test reads
    no DMS statistics; test_reloads and test_exactly_once draw the other cases)."""

    renames = False
    layouts = False


@st.composite
def interleaved(draw):
    """A life and a delivery per partition, their runs interleaved: each run of the job lands some
    partitions' next run of files (each partition's own order is DMS's, as in test_exactly_once)."""
    cases = {source: draw(deliveries(make=PartitionDelivery, statistics=False)) for source in REGION}
    queues = {source: [partition_files(source, run) for run in runs] for source, (_, _, runs, _) in cases.items()}
    runs = []
    while any(queues.values()):
        ready = [s for s in REGION if queues[s]]
        chosen = draw(st.sets(st.sampled_from(ready), min_size=1))
        runs.append([f for s in ready if s in chosen for f in queues[s].pop(0)])
    return {s: case[0] for s, case in cases.items()}, {s: case[1] for s, case in cases.items()}, runs


def in_order(deliveries_: dict) -> list[list]:
    """Every file once, in the order DMS wrote it, one partition after the other."""
    return [partition_files(source, run) for source, d in deliveries_.items() for run in canonical_runs(d)]


def test_the_rules_land_each_partition_in_its_own_folder():
    assert FOLDERS == {"pay_a": "raw/app/pay_a", "Pay_B": "raw/app/pay_b"}
    assert [u.name for u in VIEW.units] == ["pay_a", "pay_b"] and {u.analytics_name for u in VIEW.units} == {"pay"}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                  HealthCheck.filter_too_much])
@given(interleaved())
def test_any_delivery_of_each_partition_gives_the_source_and_the_same_history(case):
    lives, deliveries_, runs = case
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        state, history = deliver(Path(a), runs)
        assert state == expected(lives)
        assert (state, history) == deliver(Path(b), in_order(deliveries_))


# --- named regressions -------------------------------------------------------------------------------
def test_a_reload_of_one_partition_replaces_only_its_rows(tmp_path):
    """Partition a is reloaded (a row deleted while its task was suspended, never captured): its
    sweep removes that row; partition b's rows, loaded before and never reloaded, all stay."""
    a = one_file_per_change(life({1: "a1", 2: "a2"}, [(1, "U", "x"), (2, "D", None), (3, "I", "a3")],
                                 reload_at=2, uncaptured=1))
    b = one_file_per_change(life({1: "b1", 2: "b2"}, [(2, "U", "b2x")]))
    runs = [partition_files("pay_a", a.initial_load + a.before) + partition_files("Pay_B", b.initial_load),
            partition_files("pay_a", a.reload), partition_files("pay_a", a.after) + partition_files("Pay_B", b.before)]
    state, _ = deliver(tmp_path, runs)
    assert {k: v["note"] for k, v in state.items()} == {(1, "a"): "x", (3, "a"): "a3", (1, "b"): "b1", (2, "b"): "b2x"}


def test_a_row_moved_to_the_other_partition_arrives_in_either_order(tmp_path):
    """UPDATE ... SET region = 'b' at the source: a delete in partition a and an insert in b. The
    insert's file is merged first, in an earlier run: both rows' fates are their own."""
    a = one_file_per_change(life({7: "moving"}, [(7, "D", None)]))
    b = one_file_per_change(life({}, [(7, "I", "moving")]))
    runs = [partition_files("Pay_B", b.before), partition_files("pay_a", a.initial_load),
            partition_files("pay_a", a.before)]
    state, history = deliver(tmp_path, runs)
    assert {k: v["note"] for k, v in state.items()} == {(7, "b"): "moving"}
    assert [(h[0], h[1], h[6]) for h in history] == [(7, "a", False), (7, "b", True)]


def test_partitions_load_one_after_another_with_their_own_load_state(tmp_path):
    """The job's config: each partition is a table of its own (folder, staging, load log) whose
    target is the spec table; only the first lists the analytics tables (one migration)."""
    from dwctl.warehouse.load_job import Config

    files = render(SPEC, "pay.yaml")
    config = Config.from_json(files["iac/glue_scripts/load_job_config.json"])
    assert config.tables == {"pay_a": "raw/app/pay_a/", "pay_b": "raw/app/pay_b/"}
    assert config.target == {"pay_a": "pay", "pay_b": "pay"}
    assert config.units({"pay"}) == ["pay_a", "pay_b"] and config.units({"pay_b"}) == ["pay_b"]
    analytics = {name: [p["name"] for p in parts if p["schema"] == "analytics"] for name, parts in config.parts.items()}
    assert analytics == {"pay_a": ["pay", "pay_history"], "pay_b": []}
    assert "sql/03_merge_pay_a.sql" in files and "sql/03_merge_pay.sql" not in files


def test_the_partitions_of_one_table_never_merge_at_the_same_time(monkeypatch):
    """Two transactions writing one Redshift table at once: one fails with a serializable isolation
    violation. The job runs tables concurrently, but a table's partitions one after another. Only
    TableLoad (one table's merge against Redshift) is replaced, by one that records when it ran."""
    import threading
    import time

    from dwctl.warehouse import load_job

    spec = parse_spec(spec_text_with_tables(TABLE + """
  - schema: app
    name: other
    columns: [{name: id, type: bigint, nullable: false}]
    primary_key: [id]
"""), "pay.yaml")
    config = load_job.Config.from_json(render(spec, "pay.yaml")["iac/glue_scripts/load_job_config.json"])
    spans, lock = {}, threading.Lock()

    class Recorded:
        def __init__(self, storage, warehouse, config, args, table, run_id, log, *what_else):
            self.table, self.quarantined = table, []

        def run(self, files):
            start = time.monotonic()
            time.sleep(0.3)
            with lock:
                spans[self.table] = (start, time.monotonic())
            return files

    class Warehouse:
        def query(self, sql, **params):
            # the DDL is current: no create, no migration; nothing keeps a table incomplete
            return [[config.ddl_hash]] if sql == config.queries["ddl_applied"] else []

    class Discovery:
        deleted = {}

        def new_objects(self, tables):
            return {t: [load_job.Landed(config.tables[t] + "LOAD00000001.parquet", 1, "e")] for t in tables}

        def done(self, files):
            pass

    monkeypatch.setattr(load_job, "TableLoad", Recorded)
    merged = load_job.run({"concurrency": "8"}, None, Warehouse(), config, Discovery(), log=lambda _: None)
    assert merged == {"pay_a": 1, "pay_b": 1, "other": 1}
    (a0, a1), (b0, b1), (o0, o1) = spans["pay_a"], spans["pay_b"], spans["other"]
    assert a1 <= b0 or b1 <= a0, "pay_a and pay_b overlapped"
    assert o0 < max(a1, b1) and min(a0, b0) < o1, "other tables still run beside them"
    assert load_job.run({"tables": "pay", "concurrency": "1"}, None, Warehouse(), config, Discovery(),
                        log=lambda _: None) == {"pay_a": 1, "pay_b": 1}
