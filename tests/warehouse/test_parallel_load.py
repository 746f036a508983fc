"""A table loaded by a parallel full load equals the source whatever DMS delivers (issue 14), through
`dwctl sql verify`, with test_exactly_once's lives, deliveries and oracle.

The spec's `parallel_load` renders a table-settings rule (iac/dms.tf); the DMS emulator
(tests/support/dms_files.py) reads that rule and lands the full load the way the DMS User Guide
documents for S3 (CHAP_Target.S3, parallel load): one folder per named segment, each numbered from
LOAD00000001, or SEGMENTn_LOAD files when the rule names no segments. Segments start one after
another in any order (MaxFullLoadSubTasks below the segment count), so their transfer times differ
and say nothing about their names; a segment may be empty in one load and not in the next.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dwctl.render.engine import render
from dwctl.spec import landed_layout as layout
from dwctl.spec.read import parse_spec
from tests.support.dms_files import (
    change,
    load_file_name,
    mapping_rules,
    parallel_load_rule,
    parallel_load_streams,
    spec_text_with_tables,
)
from tests.warehouse.test_exactly_once import (
    TABLE,
    Delivery,
    canonical_runs,
    canonical_starts,
    deliver,
    deliveries,
    expected_state,
    life,
    notes,
    row,
)

PARALLEL_TEXT = spec_text_with_tables(TABLE + "    parallel_load: {type: ranges, columns: [id], boundaries: [[1], [3]]}\n")
RULE = parallel_load_rule(mapping_rules(render(parse_spec(PARALLEL_TEXT, "acct.yaml"), "acct.yaml")), "app", "acct")
FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def later(ts: str, seconds: float) -> str:
    return (datetime.strptime(ts, FORMAT) + timedelta(seconds=seconds)).strftime(FORMAT)


class ParallelDelivery(Delivery):
    """A Delivery whose full loads (the first and a reload) DMS writes segment by segment."""

    renames = False  # each segment's files are numbered from 1 in its own folder

    def __init__(self, life_, draw=None, segment_names: bool = True, starts: list[int] | None = None):
        self.segment_names, self.starts = segment_names, starts
        super().__init__(life_, draw)

    def load_files(self, state: dict, ts: str, draw) -> list[tuple[str, list[dict]]]:
        rows = [change("I", ts, None, **row(k, v)) for k, v in sorted(state.items())]
        streams = parallel_load_streams(RULE, rows, segment_names=self.segment_names)
        starts = self.starts or (draw(st.permutations(range(len(streams)))) if draw else range(len(streams)))
        files = []
        for start, (folder, segment, part) in zip(starts, streams):
            parts = draw(st.integers(1, 2)) if draw and len(part) > 1 else 1
            for n in range(parts):
                # a segment's files in transfer order; segments started one after another, in any order
                stamped = [{**r, layout.TIMESTAMP_COLUMN: later(ts, start / 10 + n / 50)} for r in part[n::parts]]
                if stamped:
                    files.append((load_file_name(n + 1, folder, segment), stamped))
        return files


def test_the_emulator_lands_the_rendered_rules_segments_in_their_folders():
    assert RULE["segment-names"] == ["segment01", "segment02", "segment03"]
    d = ParallelDelivery(life({0: "a", 1: "b", 3: "c", 4: "d"}, []))
    assert [(name, [r["id"] for r in rows]) for name, rows in d.initial_load] == [
        ("segment01/LOAD00000001.parquet", [0]), ("segment02/LOAD00000001.parquet", [1]),
        ("segment03/LOAD00000001.parquet", [3, 4])], "ids below 1, below 3, the rest"
    d = ParallelDelivery(life({0: "a", 4: "d"}, []), segment_names=False)
    assert [name for name, _ in d.initial_load] == ["SEGMENT1_LOAD00000001.parquet", "SEGMENT3_LOAD00000001.parquet"]


def streams(files: list[tuple[str, list]]) -> set[str]:
    return {name.rsplit(layout.FULL_LOAD_PREFIX, 1)[0] for name, _ in files}


@st.composite
def parallel_deliveries(draw):
    named = draw(st.booleans())  # SEGMENTn_ files too: a rule without segment-names (a task made by hand)
    life_, d, runs, starts = draw(deliveries(make=lambda life_, draw_: ParallelDelivery(life_, draw_, segment_names=named)))
    if d.reload_at is not None and streams(d.reload) - streams(d.initial_load) and starts is None:
        # A reload with a segment the first load had no file in (a segment empty then), read without DMS's
        # table statistics: the job can tell that segment's file from a late one of the first load only
        # once a CDC file was merged after the first load. With them (as the job reads them in AWS) any
        # such reload is drawn.
        first = min(i for i, run in enumerate(runs) if any(f in run for f in d.reload))
        assume(any(f in run for run in runs[:first] for f in d.before))
    return life_, d, runs, starts


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                  HealthCheck.filter_too_much])
@given(parallel_deliveries())
def test_any_delivery_of_a_parallel_load_gives_the_source_and_the_same_history(case):
    """Drawn too (issue 22, item 2): reloads with a segment that was empty in the first load, whose file
    lands before the others, in any run (told by DMS's table statistics)."""
    (initial, events, _), d, runs, starts = case
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        state, history = deliver(Path(a), runs, PARALLEL_TEXT, starts=starts)
        assert state == expected_state(initial, events)
        assert (state, history) == deliver(Path(b), canonical_runs(d), PARALLEL_TEXT,
                                           starts=canonical_starts(d, starts is not None))


# --- named regressions -------------------------------------------------------------------------------
def generations(root: Path) -> int:
    con = duckdb.connect(str(root / "wh.duckdb"))
    try:
        return con.execute("SELECT COUNT(*) FROM staging._dwctl_generations WHERE table_name = 'acct'").fetchone()[0]
    finally:
        con.close()


def test_segments_of_one_full_load_over_several_runs_in_any_order_are_one_load(tmp_path):
    """The last segment's file lands first, then the first segment's (an earlier name, an earlier
    transfer time), then the middle one: no reload, nothing swept."""
    d = ParallelDelivery(life({0: "a", 1: "b", 2: "c", 3: "d"}, [(2, "U", "c2")]), starts=[2, 0, 1])
    first, middle, last = d.initial_load
    state, _ = deliver(tmp_path, [[last], [first], [middle], d.before], PARALLEL_TEXT)
    assert notes(state) == {0: "a", 1: "b", 2: "c2", 3: "d"}
    assert generations(tmp_path) == 1


def test_hex_numbered_segment_files_in_any_order_are_one_load(tmp_path):
    """SEGMENT1_LOAD00000009 .. 0000000B: the numbering is hexadecimal; files delivered backwards."""
    d = ParallelDelivery(life({0: "a", 1: "b", 2: "c"}, []), segment_names=False)
    files = [(f"SEGMENT2_LOAD{n:08X}.parquet", [r]) for n, r in zip(range(9, 12), d.initial_load[1][1])] + \
        d.initial_load[:1]
    state, _ = deliver(tmp_path, [[f] for f in reversed(files)], PARALLEL_TEXT)
    assert notes(state) == {0: "a", 1: "b", 2: "c"}
    assert generations(tmp_path) == 1


def test_a_segment_empty_in_the_first_load_lands_first_in_the_reload_and_is_part_of_it(tmp_path):
    """The first load has no row in segment01; the reload has one there (inserted while the table was
    suspended), transferred before the rewritten segment03 file, and merged in an earlier run: it is
    the reload's, so the reload's sweep keeps it, and a key deleted while suspended goes."""
    life_ = life({1: "a", 3: "c"}, [(3, "U", "c2"), (0, "I", "new"), (1, "D", None), (3, "U", "c3")],
                 reload_at=3, uncaptured=2)
    d = ParallelDelivery(life_, starts=[0, 1, 2])
    assert [name for name, _ in d.initial_load] == ["segment02/LOAD00000001.parquet", "segment03/LOAD00000001.parquet"]
    assert [name for name, _ in d.reload] == ["segment01/LOAD00000001.parquet", "segment03/LOAD00000001.parquet"]
    (tmp_path / "late").mkdir()
    (tmp_path / "in_order").mkdir()
    state, history = deliver(tmp_path / "late", [d.initial_load + d.before, d.reload[:1], d.reload[1:], d.after],
                             PARALLEL_TEXT)
    assert notes(state) == {0: "new", 3: "c3"}
    assert generations(tmp_path / "late") == 2
    assert (state, history) == deliver(tmp_path / "in_order", canonical_runs(d), PARALLEL_TEXT)


def test_a_quiet_tables_reload_with_a_new_segment_landing_first_is_lost_by_names_alone(tmp_path):
    """No change since the first load, then a reload whose new segment01 file (a key inserted while
    suspended) lands alone, transferred before the rewritten files: no name tells it from a late file
    of the first load, so it is merged as one and the reload's sweep drops its key (without DMS's table
    statistics, which the job reads in AWS: test_reloads shows them telling it).
    In order, or once any CDC file was merged, the same files give the source."""
    life_ = life({1: "a", 3: "c"}, [(0, "I", "new"), (3, "U", "c3")], reload_at=1, uncaptured=1)
    d = ParallelDelivery(life_, starts=[0, 1, 2])
    assert d.before == [] and streams(d.reload) - streams(d.initial_load) == {"segment01/"}
    (tmp_path / "late").mkdir()
    (tmp_path / "in_order").mkdir()
    state, _ = deliver(tmp_path / "late", [d.initial_load, d.reload[:1], d.reload[1:], d.after], PARALLEL_TEXT)
    assert notes(state) == {1: "a", 3: "c3"}, "names alone: key 0 is swept"
    state, _ = deliver(tmp_path / "in_order", [d.initial_load, d.reload, d.after], PARALLEL_TEXT)
    assert notes(state) == {0: "new", 1: "a", 3: "c3"}


# --- MySQL partitions: one folder per source partition -------------------------------------------------
PARTITIONS_TEXT = spec_text_with_tables(TABLE + "    parallel_load: {type: partitions-auto}\n", engine="mysql")
PARTITIONS_RULE = parallel_load_rule(
    mapping_rules(render(parse_spec(PARTITIONS_TEXT, "acct.yaml"), "acct.yaml")), "app", "acct")


class PartitionDelivery(ParallelDelivery):
    """partitions-auto on a MySQL table partitioned by id: p_low (id < 2) and p_high."""

    def load_files(self, state: dict, ts: str, draw) -> list[tuple[str, list[dict]]]:
        rows = [change("I", ts, None, **row(k, v)) for k, v in sorted(state.items())]
        streams = parallel_load_streams(PARTITIONS_RULE, rows, lambda r: "p_low" if r["id"] < 2 else "p_high")
        return [(load_file_name(1, folder), [{**r, layout.TIMESTAMP_COLUMN: later(ts, n / 10)} for r in part])
                for n, (folder, _, part) in enumerate(streams)]


def test_a_mysql_partitions_load_lands_a_folder_per_partition_and_one_partitions_late_file_is_no_reload(tmp_path):
    assert PARTITIONS_RULE == {"type": "partitions-auto"}
    life_ = life({0: "a", 1: "b", 3: "c"}, [(1, "U", "b2"), (3, "D", None), (4, "I", "d")], reload_at=2, uncaptured=1)
    d = PartitionDelivery(life_)
    assert [name for name, _ in d.initial_load] == ["p_high/LOAD00000001.parquet", "p_low/LOAD00000001.parquet"]
    (tmp_path / "late").mkdir()
    (tmp_path / "in_order").mkdir()
    # the first load's partitions in two runs, the reload's in two runs, the other way round
    state, history = deliver(tmp_path / "late", [d.initial_load[1:], d.initial_load[:1] + d.before, d.reload[1:],
                                                 d.reload[:1], d.after], PARTITIONS_TEXT)
    assert notes(state) == {0: "a", 1: "b2", 4: "d"}, "key 3 was deleted while the table was suspended"
    assert generations(tmp_path / "late") == 2
    assert (state, history) == deliver(tmp_path / "in_order", canonical_runs(d), PARTITIONS_TEXT)
