"""Verifier benchmark: a 1,000,000-row full load, then 100,000 changes, of `orders` through `dwctl sql verify`.

The merge is the rendered, set-based SQL (one DELETE ... USING and one ranked INSERT per run),
so time grows with rows, not with round trips. Reports wall time per run and peak memory
(resident set of the whole process: DuckDB's native memory included). Run:
`python bench/bench_verify.py [--rows N] [--changes N]`.
"""

from __future__ import annotations

import argparse
import resource
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

FILES_PER_LOAD = 4
CDC_FILES = 10


def batch(ids: np.ndarray, ops: np.ndarray, ts: list[str] | str, seq: np.ndarray | None, status: np.ndarray) -> pa.Table:
    """Rows in the landed orders layout (Op, dms_commit_ts, columns, dms_change_seq)."""
    n = len(ids)
    when = pa.array(np.full(n, np.datetime64("2024-01-01T00:00:00", "us")), pa.timestamp("us", tz="UTC"))
    columns = {
        layout.OP_COLUMN: pa.array(ops, pa.string()),
        layout.TIMESTAMP_COLUMN: pa.array([ts] * n if isinstance(ts, str) else ts, pa.string()),
        "order_id": pa.array(ids, pa.int64()),
        "customer_id": pa.array(ids % 50_000, pa.int64()),
        "status": pa.array(status, pa.string()),
        "total_amount": pa.array(ids % 100_000, pa.int32()).cast(pa.decimal128(14, 2)),
        "currency": pa.array(np.full(n, "EUR"), pa.string()),
        "placed_at": when,
        "updated_at": when,
        layout.CHANGE_SEQ_COLUMN: pa.array([""] * n if seq is None else [f"{s:035d}" for s in seq], pa.string()),
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
    final = set(range(1, rows + 1))
    for k, op in zip(keys.tolist(), kind.tolist()):
        (final.discard if op == "D" else final.add)(k)
    return folder, len(final)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=100_000)
    args = parser.parse_args()
    spec = load_spec(ROOT / "config" / "pipeline.yaml")
    orders = table_view(spec, spec.table("orders"))
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bucket"
        start = time.perf_counter()
        folder, expected = write_landing(root, orders.s3_prefix, args.rows, args.changes, rng)
        print(f"wrote {args.rows:,} full-load rows and {args.changes:,} changes in {time.perf_counter() - start:.1f} s")
        cdc = sorted(folder.glob("2024*.parquet"))
        hidden = Path(tmp) / "later"
        hidden.mkdir()
        for path in cdc:
            path.rename(hidden / path.name)
        verifier = Verifier(spec, duckdb.connect(), Path(tmp))
        start = time.perf_counter()
        verifier.run(root)
        full = time.perf_counter() - start
        for path in cdc:
            (hidden / path.name).rename(path)
        start = time.perf_counter()
        verifier.run(root)
        change = time.perf_counter() - start
        count = verifier.con.execute('SELECT COUNT(*) FROM "analytics"."orders"').fetchone()[0]
        assert count == expected, (count, expected)
        print(f"full load run ({args.rows:,} rows): {full:.2f} s")
        print(f"CDC run ({args.changes:,} changes in {CDC_FILES} files): {change:.2f} s")
        print(f"analytics.orders: {count:,} rows (matches the replayed source)")
        print(f"peak memory (process RSS): {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
