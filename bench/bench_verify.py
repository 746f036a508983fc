"""Verifier benchmark: a 10,000,000-row first full load, then 100,000 changes, of `orders` through the verifier.

Goal (issue 24): the first full load, which takes the merge's fast path (loaded straight from staging: no
ranking, no work rows), within 1.5x of the floor, as the median of the ratios of 3 pairs. The floor is
`INSERT INTO <the analytics table> SELECT ... FROM read_parquet(the same LOAD files)` on a fresh DuckDB
connection with the same settings. Apples to apples: the floor's table is the verifier's own
analytics.orders, its DDL read back from DuckDB's catalog, and the bench asserts it carries the PRIMARY
KEY, which DuckDB enforces with an index in both loads (Redshift enforces none: Database Developer Guide,
t_Defining_constraints, "Uniqueness, primary key, and foreign key constraints are informational only").
The machine is shared: each pair is a full load and a floor run one after the other, the order
alternating between pairs; the load average around each pair and each pair's CPU ratio (the whole
process, DuckDB's threads included; steadier than wall time when other jobs compete) are printed, and
the result is PASS or FAIL on the median wall ratio. The CDC batch must stay set-based: its statements
are counted (a fixed number, whatever the rows). With --profile, the median pair's full load statement by
statement (wall and CPU), and the time outside statements (listing and ETags, transpiling, the job's Python).
Run: `python bench/bench_verify.py [--rows N] [--changes N] [--memory-limit 8GB] [--repeat N] [--profile]`.

Measured 2026-12-06 (2 cores shared with five other sessions' tests and benches: load average 6-12;
--repeat 3 --profile; "before" is the same bench on the main branch's verifier, run right after):
  10M rows: pairs 2.10x, 2.53x, 2.26x: median 2.26x, CPU median 2.48x (load 7.7-8.2): FAIL.
    Before: 2.65x, 2.33x, 2.55x: median 2.55x, CPU median 2.40x (load 6.3-8.0). An earlier run of this
    branch: median 2.86x, CPU 2.54x (load 5.8 -> 11.8). Wall ratios move by 0.5x from run to run at this
    load; the CPU ratios (2.2-2.6x) are what the work costs.
  2M rows: median 2.19x, CPU 2.06x (load 7.1-9.0); before 2.65x, CPU 2.13x (load 8.7-9.0).
  What changed: transpiled DML is shared by every verifier in the process (verifier._SHARED, keyed by a
  digest of the catalog's columns), so a new verifier no longer spends ~0.3 s transpiling the merge
  again: time outside statements 0.74 s (before 1.04 s) at 10M. A fixed cost: it cannot move the ratio much.
  Where the 10M full load goes (median pair, CPU s; the floor 3.17 s, of which ~2.0 s is DuckDB's key index:
  the same insert without the key took 1.0 s CPU, 4.5 s vs 12.0 s wall):
    2.27  the fast path's decision: COUNT(DISTINCT key) over the 10M staged keys, one hash aggregate
    2.10  the analytics insert from staging (with the key index's local part)
    1.82  COPY into staging (the verifier's stand-in: read_parquet into the staging table)
    1.02  COMMIT (the key index merged into the table's)
    0.44  the three generation statements (each reads the staged timestamps once)
    0.11  the freshness statement
  So the floor of any merge through staging is COPY + the duplicate-key check + the insert: (1.82 + 2.27 +
  3.12) / 3.17 = 2.3x in CPU; on the quiet machine of 2026-12-02 (below) (0.91 + 0.63 + 3.00) / 2.82 =
  1.61x in wall time with nothing else at all. 1.5x is out of reach without dropping one of the three:
  - COPY into staging: Redshift's COPY from Parquet maps columns by position and needs as many in the table
    as in the file (copy-usage_notes-copy-from-columnar); DMS lands Op, the commit timestamp and the change
    sequence beside the source columns, so it cannot load the analytics table itself.
  - The duplicate-key check: a LOAD file delivered twice or a full load DMS restarted stages a key twice,
    and the fast path would then insert it twice; the staging table has no key, Redshift would enforce none
    (t_Defining_constraints), and its planner assumes a declared key is unique ("a SELECT DISTINCT query
    might return duplicate rows if the primary key is not unique"), so the check must be a set-based query.
    Tried: GROUP BY key HAVING COUNT(*) > 1, SELECT DISTINCT in a subquery: the same hash aggregate, the same
    cost in DuckDB (1.4-2.0 s CPU at 10M, within noise). A sort-based check (LAG over ORDER BY key) is ~35%
    cheaper in DuckDB, but a window without PARTITION BY "must be run serially on a single slice" in
    Redshift (c_Window_functions). APPROXIMATE COUNT(DISTINCT) is ~2% off (r_COUNT): no proof of uniqueness.
  - DuckDB's key index, which both loads pay: replacing it by a set-based check after each merge (GROUP BY
    key HAVING COUNT(*) > 1 over the table) costs the same at 10M (2.0-2.2 s CPU against the index's
    ~2.0 s) and, the floor's table being the same, would take the same cost out of the floor: the ratio
    would grow. With no check on either side (Redshift's semantics) the floor is ~1.0 s CPU and the same
    merge would be ~5x it: the comparison as measured, key index in both, is the one that flatters the merge.

Measured 2026-12-02, second session (2 cores, load average 0.6-0.9; the previous bench, best of 3):
  10M rows: best 5.04 s vs floor 2.82 s = 1.78x; pairs 2.21x, 1.72x, 1.78x (median 1.78x); CPU 1.96-2.69x.
  The fast path then stopped writing a key-version row per loaded row (a key with an analytics row and no
  version row is at the first full load's version, 03_merge_<table>.sql; 0.5-1.3 s of the 10M load); the
  best load: analytics insert 1.77 s, its primary-key commit 1.23 s, COPY into staging 0.91 s, the
  fast-path decision 0.63 s, the generation statements 0.13 s.
  CDC: 100,000 changes against 10M rows, 0.93 s, 47 statements (the same count at any size: set-based).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dwctl.render.engine import table_view  # noqa: E402
from dwctl.spec import landed_layout as layout  # noqa: E402
from dwctl.spec.read import load_spec  # noqa: E402
from dwctl.warehouse.verifier import Verifier  # noqa: E402

FILES_PER_LOAD = 8
CDC_FILES = 10


def batch(ids: np.ndarray, ops: np.ndarray, ts: list[str] | str, seq: np.ndarray | None, status: np.ndarray) -> pa.Table:
    """Rows in the landed orders layout (Op, dms_commit_ts, columns, dms_change_seq)."""
    n = len(ids)
    when = pa.array(np.full(n, np.datetime64("2024-01-01T00:00:00", "us")), pa.timestamp("us", tz="UTC"))
    columns = {
        layout.OP_COLUMN: pa.array(ops, pa.string()),
        layout.TIMESTAMP_COLUMN: pa.repeat(pa.scalar(ts, pa.string()), n) if isinstance(ts, str) else pa.array(ts, pa.string()),
        "order_id": pa.array(ids, pa.int64()),
        "customer_id": pa.array(ids % 50_000, pa.int64()),
        "status": pa.array(status, pa.string()),
        "total_amount": pa.array(ids % 100_000, pa.int32()).cast(pa.decimal128(14, 2)),
        "currency": pa.array(np.full(n, "EUR"), pa.string()),
        "placed_at": when,
        "updated_at": when,
        layout.CHANGE_SEQ_COLUMN: pa.repeat(pa.scalar("", pa.string()), n) if seq is None
        else pa.array([f"{s:035d}" for s in seq], pa.string()),
    }
    return pa.table(columns)


def write_landing(root: Path, prefix: str, rows: int, changes: int, rng) -> tuple[Path, int]:
    """LOAD files with `rows` orders; CDC files with `changes` changes (70% U, 20% I, 10% D). Returns CDC dir, final count."""
    folder = root / prefix
    folder.mkdir(parents=True)
    ids = np.arange(1, rows + 1)
    for i, part in enumerate(np.array_split(ids, FILES_PER_LOAD), 1):
        pq.write_table(batch(part, np.full(len(part), "I"), "2024-01-01 00:00:00.000000", None,
                             np.full(len(part), "new")), folder / f"LOAD{i:08d}.parquet")
    kind = rng.choice(["U", "I", "D"], size=changes, p=[0.7, 0.2, 0.1])
    keys = np.where(kind == "I", rows + 1 + np.arange(changes), rng.integers(1, rows + 1, size=changes))
    seconds = np.sort(rng.integers(0, 3600, size=changes))  # many changes share a commit second: ties
    stamps = [f"2024-01-01 12:{s // 60:02d}:{s % 60:02d}.000000" for s in seconds]
    seq = np.arange(1, changes + 1) * 3
    for i, part in enumerate(np.array_split(np.arange(changes), CDC_FILES)):
        pq.write_table(batch(keys[part], kind[part], [stamps[j] for j in part], seq[part],
                             np.full(len(part), "changed")), folder / f"20240101-12{i:02d}00000.parquet")
    # the replayed count: keys never changed keep their full-load row; a changed key ends as its last change
    last = {}
    for k, op in zip(keys.tolist(), kind.tolist()):
        last[k] = op
    return folder, rows - sum(1 for k in last if k <= rows) + sum(1 for op in last.values() if op != "D")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def connect(memory_limit: str):
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    return con


def plain_insert(ddl: str, files: list[Path], columns: list[str], memory_limit: str) -> float:
    """The floor: the analytics table's own DDL, then one INSERT ... SELECT of the LOAD files."""
    con = connect(memory_limit)
    con.execute("CREATE SCHEMA analytics")
    con.execute(ddl)
    listing = "[" + ", ".join(f"'{p}'" for p in files) + "]"
    names = ", ".join(f'"{c}"' for c in columns)
    start = time.perf_counter()
    con.execute(f"INSERT INTO analytics.orders ({names}) SELECT {names} FROM read_parquet({listing})")
    seconds = time.perf_counter() - start
    assert con.execute("SELECT COUNT(*) FROM analytics.orders").fetchone()[0] > 0
    con.close()
    return seconds


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Counted:
    """The verifier's connection, counting the statements executed (set-based: a fixed number per batch)
    and timing each one (wall and process CPU seconds)."""

    def __init__(self, con):
        self.con, self.statements, self.timed = con, 0, []

    def execute(self, sql, *args):
        self.statements += 1
        start, cpu = time.perf_counter(), cpu_seconds()
        result = self.con.execute(sql, *args)
        self.timed.append((time.perf_counter() - start, cpu_seconds() - cpu, " ".join(sql.split())))
        return result

    def __getattr__(self, name):
        return getattr(self.con, name)


GOAL = 1.5  # issue 24: the first full load within 1.5x of the floor, median of the pairs' ratios


def full_load(spec, tmp: str, root: Path, loads: list[Path], hidden: Path, memory_limit: str):
    """One first full load through a new verifier (the stack's first run, DDL only, then the LOAD files).
    Returns (wall s, CPU s, statement timings, the verifier's connection, its verifier, the DDL run's s)."""
    con = Counted(connect(memory_limit))
    verifier = Verifier(spec, con, Path(tmp))
    for path in loads:
        path.rename(hidden / path.name)
    start = time.perf_counter()
    verifier.run(root)  # the stack's first run: DDL, nothing landed yet
    ddl_run = time.perf_counter() - start
    for path in loads:
        (hidden / path.name).rename(path)
    con.timed = []
    start, cpu = time.perf_counter(), cpu_seconds()
    verifier.run(root)
    wall, used = time.perf_counter() - start, cpu_seconds() - cpu
    return wall, used, list(con.timed), con, verifier, ddl_run


def analytics_ddl(con) -> str:
    """The verifier's own analytics.orders, as DuckDB holds it: the floor's table is the same one."""
    ddl = con.execute("SELECT sql FROM duckdb_tables() WHERE schema_name = 'analytics' "
                      "AND table_name = 'orders'").fetchone()[0]
    # apples to apples: DuckDB enforces this key (an index over it, built by both loads); Redshift would not
    assert "PRIMARY KEY" in ddl, ddl
    return ddl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--memory-limit", default="8GB", help="DuckDB memory_limit of each connection")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of a full load and a floor, interleaved")
    parser.add_argument("--profile", action="store_true", help="the median pair's full load, statement by statement")
    args = parser.parse_args()
    spec = load_spec(ROOT / "config" / "pipeline.yaml")
    orders = table_view(spec, spec.table("orders"))
    names = [c.name for c in orders.columns]
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bucket"
        start = time.perf_counter()
        folder, expected = write_landing(root, orders.s3_prefix, args.rows, args.changes, rng)
        print(f"wrote {args.rows:,} full-load rows and {args.changes:,} changes in {time.perf_counter() - start:.1f} s")
        loads = sorted(folder.glob("LOAD*.parquet"))
        cdc = sorted(folder.glob("2024*.parquet"))
        hidden = Path(tmp) / "later"
        hidden.mkdir()
        for path in cdc:
            path.rename(hidden / path.name)
        pairs = []  # (full wall, full CPU, floor wall, floor CPU, load average before, after, timings, DDL run)
        ddl, verifier, con = None, None, None
        for n in range(args.repeat):  # interleaved, the order alternating: other jobs share the machine
            before = os.getloadavg()[0]
            if n % 2 and ddl is not None:
                cpu = cpu_seconds()
                floor = plain_insert(ddl, loads, names, args.memory_limit)
                floor_cpu = cpu_seconds() - cpu
            if con is not None:
                con.con.close()
            wall, used, timed, con, verifier, ddl_run = full_load(spec, tmp, root, loads, hidden, args.memory_limit)
            loaded = con.con.execute('SELECT COUNT(*) FROM "analytics"."orders"').fetchone()[0]
            keys = con.con.execute('SELECT COUNT(*) FROM "staging"."orders__dwctl_keys"').fetchone()[0]
            assert (loaded, keys) == (args.rows, 0), "the fast path: every row, no key version row (implied)"
            ddl = analytics_ddl(con.con)
            if not n % 2:
                cpu = cpu_seconds()
                floor = plain_insert(ddl, loads, names, args.memory_limit)
                floor_cpu = cpu_seconds() - cpu
            pairs.append((wall, used, floor, floor_cpu, before, os.getloadavg()[0], timed, ddl_run))
        without_key = ddl.replace(", PRIMARY KEY(order_id)", "")
        assert "PRIMARY KEY" not in without_key, ddl
        unkeyed = plain_insert(without_key, loads, names, args.memory_limit)  # for scale only
        for path in cdc:
            (hidden / path.name).rename(path)
        con.statements = 0
        start = time.perf_counter()
        verifier.run(root)
        change = time.perf_counter() - start
        count = con.con.execute('SELECT COUNT(*) FROM "analytics"."orders"').fetchone()[0]
        assert count == expected, (count, expected)
        ratios = [wall / floor for wall, _, floor, *_ in pairs]
        cpu_ratios = [used / floor_cpu for _, used, _, floor_cpu, *_ in pairs]
        median = statistics.median(ratios)
        print(f"first run (DDL, no files yet): {', '.join(f'{p[7]:.2f}' for p in pairs)} s")
        print(f"first full load ({args.rows:,} rows, fast path; listing, COPY checks, COPY and merge) against the "
              f"floor (INSERT ... SELECT of the {len(loads)} LOAD files into the same analytics table, its primary "
              f"key enforced by DuckDB in both), {len(pairs)} pairs, interleaved:")
        for n, (wall, used, floor, floor_cpu, was, now, *_) in enumerate(pairs, 1):
            print(f"  pair {n}: full load {wall:.2f} s / floor {floor:.2f} s = {wall / floor:.2f}x; CPU {used:.2f} s / "
                  f"{floor_cpu:.2f} s = {used / floor_cpu:.2f}x; load average {was:.1f} -> {now:.1f}")
        print(f"  median {median:.2f}x (range {min(ratios):.2f}-{max(ratios):.2f}x); CPU median "
              f"{statistics.median(cpu_ratios):.2f}x")
        print(f"  goal (issue 24): median <= {GOAL}x: {'PASS' if median <= GOAL else 'FAIL'}")
        print(f"  for scale: the floor without DuckDB's key index (Redshift does not enforce PRIMARY KEY): "
              f"{unkeyed:.2f} s; with it, median {statistics.median(p[2] for p in pairs):.2f} s")
        if args.profile:
            wall, _, _, _, _, _, timed, _ = sorted(pairs, key=lambda p: p[0] / p[2])[len(pairs) // 2]
            groups: dict[str, list[float]] = {}
            for spent, used, sql in timed:
                group = groups.setdefault(sql[:110], [0, 0.0, 0.0])
                group[0] += 1
                group[1] += spent
                group[2] += used
            inside = sum(spent for spent, _, _ in timed)
            print(f"  the median pair's full load, {wall:.2f} s: statements {inside:.2f} s, outside them (listing "
                  f"and ETags, transpiling, the job's Python) {wall - inside:.2f} s; costliest (count, wall s, CPU s):")
            for sql, (count_, spent, used) in sorted(groups.items(), key=lambda g: -g[1][1])[:10]:
                print(f"    {count_:3d} {spent:6.2f} {used:6.2f}  {sql}")
        print(f"CDC run ({args.changes:,} changes in {CDC_FILES} files against {args.rows:,} rows): {change:.2f} s, "
              f"{con.statements} statements executed (set-based: the count does not grow with the rows)")
        print(f"analytics.orders: {count:,} rows (matches the replayed source)")
        print(f"peak memory (process RSS): {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
